//! A compacted topic beside the workload, on some seeds: a producer
//! rewrites a few keys with acks=all (half of them only a few times, early,
//! so that their latest values end up where the cleaner works), the broker's cleaner compacts the
//! topic (every few hundred milliseconds, in small segments) while the
//! faults strike, and after healing the verifier checks invariant C:
//! - every record read back is one the producer sent, under its key;
//! - the latest acknowledged value of every key is still there: the record
//!   at its acknowledged offset, or a later record of the same key (a write
//!   that was sent but not acknowledged may have superseded it).
//!
//! The topic stays out of the generic checker: its offsets have gaps by
//! design, and what was read may later be cleaned away. Under flush=interval
//! or never, in a run where a power loss or a failed fsync may have lost
//! acknowledged records, and where beyond-budget faults may refuse the log,
//! only the first part is checked.

use crate::kafka::Client;
use crate::ops::{Request, Response};
use crate::rng::Rng;
use crate::world::World;
use bytes::Bytes;
use ringtail_engine::log::batch::BatchScanner;
use ringtail_engine::log::records::{decode_records, BatchBuilder};
use ringtail_engine::log::FlushPolicy;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const TOPIC: &str = "compacted";

/// What the compacted topic's producer did.
#[derive(Default)]
pub struct Compacted {
    created: bool,
    /// Every value sent, with its key (values are unique).
    sent: BTreeMap<String, String>,
    /// Each key's acknowledged record with the highest offset.
    latest_acked: BTreeMap<String, (u64, String)>,
}

/// The topic's configs: small segments and a low dirty ratio, so that the
/// cleaner runs many passes in a seed's few simulated seconds.
fn configs() -> Vec<(String, String)> {
    [("cleanup.policy", "compact"), ("segment.bytes", "1024"), ("min.cleanable.dirty.ratio", "0.1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub async fn producer(world: Arc<World>, keys: u64) {
    let mut client = crate::workload::client(&world, "compacted").await;
    let mut rng = Rng::fork(world.cfg.seed, "compacted-producer");
    let create = Request::CreateTopic { name: TOPIC.into(), partitions: 1, configs: configs() };
    while !world.stopping() {
        world.counters.op("create_topic");
        match client.call(create.clone()).await {
            Some(Response::Created)
            | Some(Response::Error { code: crate::workload::TOPIC_ALREADY_EXISTS, .. }) => {
                world.compacted().created = true;
                break;
            }
            _ => madsim::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // The lower half of the keys stop after a few writes each, so their
    // latest values age into the cleaned part of the log, where a cleaner
    // that dropped one would be seen; the upper half go on to the end.
    let cold = keys / 2;
    let quota = |k: u64| 3 + (k * 7) % 20;
    let mut writes = vec![0u64; keys as usize];
    let mut seq = 0u64;
    while !world.stopping() {
        let mut k = rng.below(keys);
        if k < cold && writes[k as usize] >= quota(k) {
            k = cold + rng.below(keys - cold);
        }
        writes[k as usize] += 1;
        let key = format!("k{k}");
        let value = format!("{key}={seq}");
        seq += 1;
        world.compacted().sent.insert(value.clone(), key.clone());
        let now = world.now_ms();
        let mut batch = BatchBuilder::new(0, now);
        batch.push(Some(Bytes::from(key.clone())), Some(Bytes::from(value.clone())), now);
        let request =
            Request::Produce { topic: TOPIC.into(), partition: 0, acks: -1, records: batch.build() };
        world.counters.op("produce_compacted");
        if let Some(Response::Produced { base_offset, .. }) = client.call(request).await {
            let mut state = world.compacted();
            let latest = state.latest_acked.entry(key).or_insert((base_offset, value.clone()));
            if base_offset >= latest.0 {
                *latest = (base_offset, value);
            }
        }
        madsim::time::sleep(Duration::from_millis(rng.range(2, 30))).await;
    }
}

/// Every record of the topic from its log start to its high watermark:
/// `(offset, key, value)`. Reads go on from the end of the last batch, not
/// of the last record: a fetch of a compacted log may hold only the empty
/// batches that stand for removed records.
async fn read_all(world: &World, client: &mut Client) -> Result<Vec<(u64, String, String)>, String> {
    world.counters.op("list_offsets");
    let request = Request::ListOffsets { topic: TOPIC.into(), partition: 0, timestamp: -2 };
    let start = match client.call(request).await {
        Some(Response::Offset { offset }) => u64::try_from(offset).unwrap_or(0),
        _ => return Err(format!("{TOPIC}: no log start offset")),
    };
    let mut records = Vec::new();
    let mut offset = start;
    loop {
        world.counters.op("fetch");
        let request =
            Request::Fetch { topic: TOPIC.into(), partition: 0, offset: offset as i64, max_bytes: 1 << 20 };
        let (bytes, high_watermark) = match client.call(request).await {
            Some(Response::Fetched { records, high_watermark, .. }) => (records, high_watermark),
            Some(Response::Error { code, message, .. }) => {
                return Err(format!("{TOPIC}: fetch at {offset}: {code}: {message}"))
            }
            _ => return Err(format!("{TOPIC}: fetch at {offset} failed")),
        };
        let mut next = offset;
        for item in BatchScanner::new(&bytes) {
            let Ok((at, header)) = item else { break };
            let batch = &bytes[at..at + header.size_bytes()];
            let (header, decoded) =
                decode_records(batch).map_err(|e| format!("{TOPIC}: undecodable: {e}"))?;
            for r in decoded {
                let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
                let (key, value) = (text(&r.key).unwrap_or_default(), text(&r.value).unwrap_or_default());
                records.push((r.offset(&header) as u64, key, value));
            }
            next = header.next_offset();
        }
        if next >= high_watermark {
            return Ok(records);
        }
        if next <= offset {
            return Err(format!(
                "{TOPIC}: a fetch at {offset} made no progress (high watermark {high_watermark})"
            ));
        }
        offset = next;
    }
}

/// Whether something in this run could lose acknowledged records that were
/// not yet fsynced (flush=interval or never): a power loss that dropped or
/// tore unsynced writes, or a failed fsync (which drops the dirty pages).
fn lossy(world: &World) -> bool {
    let d = world.disk.counts();
    d.crash_drop_unsynced + d.crash_random + d.eio_sync > 0
}

/// Invariant C (see the module comment), once the broker serves again.
/// `Err` for what may pass on a later try (the topic not served yet); a
/// violation is reported to the checker.
pub async fn verify(world: &World, client: &mut Client) -> Result<(), String> {
    if !world.compacted().created {
        return Ok(());
    }
    let strict =
        !world.cfg.classes.beyond_budget() && (world.cfg.flush == FlushPolicy::Always || !lossy(world));
    let records = match read_all(world, client).await {
        Ok(records) => records,
        Err(why) if strict => return Err(why),
        Err(_) => return Ok(()),
    };
    let state = world.compacted();
    let mut checker = world.checker();
    for (offset, key, value) in &records {
        if state.sent.get(value) != Some(key) {
            let detail = format!("{TOPIC}: offset {offset} holds {key}={value:?}, which was never sent");
            checker.report(crate::checker::Invariant::CompactedLatestKept, detail);
            return Ok(());
        }
    }
    if strict {
        for (key, (offset, value)) in &state.latest_acked {
            if !records.iter().any(|(o, k, _)| k == key && o >= offset) {
                let detail = format!(
                    "{TOPIC}: the latest acknowledged value of {key} ({value} at offset {offset}) is gone, \
                     and no later record of {key} replaced it"
                );
                checker.report(crate::checker::Invariant::CompactedLatestKept, detail);
                return Ok(());
            }
        }
    }
    checker.note(
        None,
        None,
        format!("{TOPIC}: {} records read back for {} keys", records.len(), state.latest_acked.len()),
    );
    Ok(())
}
