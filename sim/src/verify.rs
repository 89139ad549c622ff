//! The liveness phase's verifier: after healing, every partition must be
//! served (a produce with acks=all succeeds, a fetch reads the whole log)
//! and every acknowledged record readable, within a bound of simulated time.

use crate::checker::LogRead;
use crate::kafka::Client;
use crate::ops::{Request, Response};
use crate::rng::Rng;
use crate::workload::{self, VERIFIER_PRODUCER};
use crate::world::{sim_elapsed_ms, World};
use ringtail_engine::error::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

/// Bytes per verifier fetch.
const FETCH_BYTES: u32 = 1 << 20;
/// Pause between verification rounds.
const ROUND_GAP_MS: u64 = 200;

/// Verifies until everything converged (`Ok`) or `bound_ms` passed (`Err`
/// with what did not).
pub async fn converge(world: Arc<World>, bound_ms: u64, round: u32) -> Result<u64, String> {
    let start = sim_elapsed_ms();
    let rng = Rng::fork(world.cfg.seed, &format!("verifier-{round}"));
    let mut client = world.quiet_kafka_client(&format!("verifier-{round}"), Duration::from_secs(2));
    let mut rng = rng;
    let mut seq = u64::from(round) << 32;
    loop {
        let outcome = verify_once(&world, &mut client, &mut rng, &mut seq).await;
        let waited = sim_elapsed_ms() - start;
        match outcome {
            Ok(()) => return Ok(waited),
            Err(_) if world.failed() => return Ok(waited),
            Err(why) if waited >= bound_ms => {
                return refused_safely(&world).map(|()| waited).ok_or_else(|| explain(&world, why));
            }
            Err(_) => madsim::time::sleep(Duration::from_millis(ROUND_GAP_MS)).await,
        }
    }
}

/// What did not converge, and why the broker is down if it is.
fn explain(world: &World, why: String) -> String {
    let serving = world.broker_serving.load(std::sync::atomic::Ordering::SeqCst);
    match world.last_open_error.lock().unwrap_or_else(|e| e.into_inner()).clone() {
        Some(open) if !serving => format!("{why}; the broker refuses to open: {open}"),
        _ => why,
    }
}

/// Beyond the fault budget a broker may refuse to start (damage it
/// detected and will not serve around): that is stopping safely.
fn refused_safely(world: &World) -> Option<()> {
    let refusing = !world.broker_serving.load(std::sync::atomic::Ordering::SeqCst);
    let why = world.last_open_error.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
    let damaged = !world.checker().taints_empty();
    if refusing && damaged {
        world.checker().note(
            None,
            None,
            format!("broker refuses to start after beyond-budget damage: {why}"),
        );
        world.checker().count_refused();
        return Some(());
    }
    None
}

async fn verify_once(world: &World, client: &mut Client, rng: &mut Rng, seq: &mut u64) -> Result<(), String> {
    for plan in &world.cfg.verified_topics() {
        // Every planned topic must be servable: one the admin had not
        // managed to create before the workload stopped is created now.
        if !workload::create_topic(world, client, rng, plan).await {
            return Err(format!("topic {} cannot be created", plan.name));
        }
        for p in 0..plan.partitions as i32 {
            let tp = (plan.name.clone(), p);
            let (batch, records) = workload::make_batch(world, rng, VERIFIER_PRODUCER, seq, 1);
            world.checker().produce_sent(&tp, &records, -1, false);
            let request = Request::Produce { topic: tp.0.clone(), partition: p, acks: -1, records: batch };
            world.counters.op("produce");
            let probe_ok = match client.call(request).await {
                Some(Response::Produced { base_offset, log_start_offset }) => {
                    let epoch = client.last_epochs();
                    world.checker().produce_acked(
                        &tp,
                        &[records[0].0],
                        -1,
                        base_offset,
                        log_start_offset,
                        epoch,
                    );
                    true
                }
                _ => false,
            };
            let read = read_all(world, client, &tp).await?;
            world.checker().converged(&tp, &read, probe_ok)?;
        }
    }
    crate::compacted::verify(world, client).await
}

/// Fetches a partition from its log start to its high watermark.
pub(crate) async fn read_all(
    world: &World,
    client: &mut Client,
    tp: &(String, i32),
) -> Result<LogRead, String> {
    let Some(start) = workload::list_offset(world, client, VERIFIER_PRODUCER, tp, -2).await else {
        if let Some(reason) = offline(world, client, tp).await {
            // A partition the broker took offline (its log was damaged where
            // recovery may not cut): refused loudly, which the checker
            // accepts only beyond the fault budget.
            return Ok(LogRead { log_start: 0, end: 0, batches: Vec::new(), error: Some((0, reason)) });
        }
        return Err(format!("{}-{}: no log start offset", tp.0, tp.1));
    };
    let mut read = LogRead { log_start: start, end: start, batches: Vec::new(), error: None };
    let mut offset = start;
    loop {
        world.counters.op("fetch");
        let request = Request::Fetch {
            topic: tp.0.clone(),
            partition: tp.1,
            offset: offset as i64,
            max_bytes: FETCH_BYTES,
        };
        match client.call(request).await {
            Some(Response::Fetched { records, high_watermark, .. }) => {
                read.end = high_watermark;
                let decoded = crate::checker::decode_batches(std::slice::from_ref(&records))
                    .map_err(|e| format!("{}-{}: undecodable fetch: {e}", tp.0, tp.1))?;
                let last = decoded.last().map(|(o, _)| *o);
                read.batches.push(records);
                match last {
                    Some(last) if last < offset => {
                        let detail = format!("a fetch at {offset} returned records only up to {last}");
                        read.error = Some((offset, detail));
                        return Ok(read);
                    }
                    Some(last) if last + 1 < high_watermark => offset = last + 1,
                    _ => return Ok(read),
                }
            }
            Some(Response::Error { code, message, .. }) => {
                read.error = Some((offset, format!("{code}: {message}")));
                return Ok(read);
            }
            Some(other) => panic!("a fetch was answered with {other:?}"),
            None => return Err(format!("{}-{}: fetch at {offset} timed out", tp.0, tp.1)),
        }
    }
}

/// Why the broker refuses `tp` as offline, if it does: the broker answers
/// KAFKA_STORAGE_ERROR, or its Metadata shows the partition without a
/// leader (LEADER_NOT_AVAILABLE, which the client answers itself), which a
/// single broker does only for a partition it took offline.
async fn offline(world: &World, client: &mut Client, tp: &(String, i32)) -> Option<String> {
    world.counters.op("list_offsets");
    let request = Request::ListOffsets { topic: tp.0.clone(), partition: tp.1, timestamp: -2 };
    match client.call(request).await? {
        Response::Error { code, message, .. } if OFFLINE.contains(&code) => {
            Some(format!("offline: {message}"))
        }
        _ => None,
    }
}

const OFFLINE: [i16; 2] = [ErrorCode::KafkaStorageError as i16, ErrorCode::LeaderNotAvailable as i16];
