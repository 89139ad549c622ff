//! Writes the seed corpora: `cargo run --example gen_seeds` (from fuzz/).
//!
//! - record_batch: batches built with `BatchBuilder` (empty, keys, values,
//!   headers, nulls), an opaque batch, two in a row, torn, bad CRC,
//!   compressed, control, and the kafka-protocol documentation batch.
//! - segment_bytes: segments written by the engine itself on a `MemDisk`
//!   (3 batches; two segments with their index files), then torn, zero-
//!   padded, bit-flipped, overlapping and index-damaged variants.
//! - log_recovery: `arbitrary` decodes bytes, so seeds are found by search:
//!   pseudo-random inputs whose scenarios show each feature (crash kinds,
//!   flips, faults, retention, truncation, group commit, the manager).
//!
//! Deterministic: the same files every run. Seeds are named `seed-*`; the
//! fuzzer's own additions (hash names) are left alone.

use bytes::Bytes;
use ringtail_engine::clock::ManualClock;
use ringtail_engine::io::{Disk, MemDisk};
use ringtail_engine::log::records::{BatchBuilder, Record};
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{Log, LogConfig};
use ringtail_fuzz::exec::block_on;
use ringtail_fuzz::gen::opaque_batch;
use ringtail_fuzz::log_recovery::{CrashKind, FlushChoice, Op, Scenario};
use ringtail_fuzz::segment_bytes::{Input, SegmentFiles};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn out_dir(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(target: &str, name: &str, data: &[u8]) {
    std::fs::write(out_dir(target).join(format!("seed-{name}")), data).unwrap();
}

fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn record_batch_seeds() {
    let t = "record_batch";
    write(t, "empty", &BatchBuilder::new(0, 1_700_000_000_000).build());
    let mut b = BatchBuilder::new(5, 1_700_000_000_000);
    b.push(Some(Bytes::from_static(b"key")), Some(Bytes::from_static(b"value")), 1_700_000_000_007);
    let one = b.build();
    write(t, "one-record", &one);
    let mut b = BatchBuilder::new(0, 1_000);
    b.producer_id = 42;
    b.producer_epoch = 1;
    b.base_sequence = 7;
    b.push(None, Some(Bytes::from_static(b"v1")), 1_000).push(Some(Bytes::from_static(b"k")), None, 990);
    b.push_record(Record {
        offset_delta: 2,
        timestamp_delta: 5,
        key: Some(Bytes::from_static(b"")),
        value: Some(Bytes::from_static(b"with headers")),
        headers: vec![("h1".into(), Some(Bytes::from_static(b"x"))), ("h2".into(), None)],
    });
    let three = b.build();
    write(t, "headers-nulls", &three);
    write(t, "opaque", &opaque_batch(2, 9, 1_000, 24));
    write(t, "two-batches", &[&one[..], &three[..]].concat());
    write(t, "torn", &three[..three.len() - 5]);
    let mut bad = three.to_vec();
    bad[70] ^= 0x10;
    write(t, "bad-crc", &bad);
    let mut compressed = one.to_vec();
    compressed[22] |= 4; // zstd
    fix_crc(&mut compressed);
    write(t, "compressed", &compressed);
    let mut control = BatchBuilder::new(0, 0);
    control.attributes = 0x30; // transactional control batch
    control.push(Some(Bytes::from_static(&[0, 0, 0, 1])), Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])), 0);
    write(t, "control", &control.build());
    // The batch in kafka-protocol's records.rs docs (record attributes 1).
    const DOC: [u8; 79] = [
        0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x43, 0x0, 0x0, 0x0, 0x0, 0x2, 0x73, 0x6d,
        0x29, 0x7b, 0x0, 0x0, 0x0, 0x0, 0x0, 0x3, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x1, 0x0,
        0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
        0x0, 0x1, 0x22, 0x1, 0xd0, 0xf, 0x2, 0xa, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0xa, 0x77, 0x6f, 0x72, 0x6c,
        0x64, 0x0,
    ];
    write(t, "kafka-protocol-doc", &DOC);
}

/// Segments as the engine writes them: `first` batches, a roll, then
/// `second` batches, closed cleanly (index files written).
fn engine_segments(first: u64, second: u64) -> Vec<SegmentFiles> {
    let disk = Arc::new(MemDisk::new());
    let dir = PathBuf::from("/g/t-0");
    let config = LogConfig { index_interval_bytes: 1, ..LogConfig::default() };
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    block_on(async {
        let (log, _) =
            Log::open(disk.clone(), dir.clone(), config, clock, LogCheckpoint::default()).await.unwrap();
        for i in 0..first + second {
            if i == first {
                log.roll().await.unwrap();
            }
            log.append(opaque_batch(1 + i as u32 % 3, i, 1_700_000_000_000 + i as i64, 16), 1).await.unwrap();
        }
        log.close().await.unwrap();
        let mut segments = Vec::new();
        for name in disk.list(&dir).await.unwrap() {
            let Some(stem) = name.strip_suffix(".log") else { continue };
            let base: u64 = stem.parse().unwrap();
            let read = |suffix: &str| disk.contents(&dir.join(format!("{stem}{suffix}"))).unwrap_or_default();
            segments.push(SegmentFiles {
                base,
                log: read(".log"),
                indexes: Some((read(".index"), read(".timeindex"))),
            });
        }
        segments
    })
}

fn segment_bytes_seeds() {
    let t = "segment_bytes";
    let single = engine_segments(3, 0).remove(0);
    let plain = |log: Vec<u8>, rp: u64| Input {
        index_interval_bytes: 4096,
        recovery_point: rp,
        a: SegmentFiles { base: 0, log, indexes: None },
        b: None,
    };
    write(t, "three-batches", &plain(single.log.clone(), 0).encode());
    let log = &single.log;
    write(t, "torn-last", &plain(log[..log.len() - 7].to_vec(), 0).encode());
    write(t, "torn-header", &plain(log[..log.len() - 100].to_vec(), 0).encode());
    write(t, "zero-tail", &plain([&log[..], &[0u8; 300][..]].concat(), 0).encode());
    let mut flipped = log.clone();
    flipped[90] ^= 0x04; // inside the first batch's CRC-covered bytes
    write(t, "flip-first", &plain(flipped, 0).encode());
    let mut offset_gap = log.clone();
    let second_at = 61 + 16;
    offset_gap[second_at + 7] ^= 0x08; // the second batch's base offset
    write(t, "offset-gap", &plain(offset_gap, 0).encode());

    let two = engine_segments(3, 2);
    let (a, b) = (two[0].clone(), two[1].clone());
    let sealed = |a: SegmentFiles, b: SegmentFiles, rp: u64| Input {
        index_interval_bytes: 1,
        recovery_point: rp,
        a,
        b: Some(b),
    };
    write(t, "two-sealed", &sealed(a.clone(), b.clone(), 255).encode());
    write(t, "two-scanned", &sealed(a.clone(), b.clone(), 0).encode());
    let mut torn_b = b.clone();
    torn_b.log.truncate(b.log.len() - 3);
    write(t, "two-torn-active", &sealed(a.clone(), torn_b, 255).encode());
    let mut damaged_a = a.clone();
    damaged_a.log[100] ^= 0x80;
    write(t, "two-damaged-sealed", &sealed(damaged_a.clone(), b.clone(), 255).encode());
    write(t, "two-damaged-scanned", &sealed(damaged_a, b.clone(), 0).encode());
    let mut bad_index = a.clone();
    if let Some((index, _)) = &mut bad_index.indexes {
        if index.len() >= 8 {
            index[7] ^= 0x01; // an entry's position, off by one
        }
    }
    // A known bug (index-trusted): kept in regressions/segment_bytes/ as
    // bad-index-entry-hides-intact-batch, not written as a seed.
    let _ = sealed(bad_index, b.clone(), 255);
    // Overlapping segments (B starts inside A) reproduce a known bug: the
    // input lives in regressions/segment_bytes/overlap-keeps-empty-segment.
    let mut no_index = a;
    no_index.indexes = None;
    write(t, "two-sealed-no-index", &sealed(no_index, b, 255).encode());
}

/// Feature tests for search-found log_recovery seeds.
/// A seed's name and the test its scenario must pass.
type Feature = (&'static str, fn(&Scenario) -> bool);

fn features() -> Vec<Feature> {
    fn has(s: &Scenario, f: impl Fn(&Op) -> bool) -> bool {
        s.ops.iter().take(64).any(f)
    }
    fn appends(s: &Scenario) -> usize {
        s.ops.iter().take(64).filter(|o| matches!(o, Op::Append { .. })).count()
    }
    vec![
        ("always-drop", |s| {
            matches!(s.config.flush, FlushChoice::Always)
                && s.crash.kind == CrashKind::DropUnsynced
                && appends(s) >= 4
        }),
        ("never-tear", |s| {
            matches!(s.config.flush, FlushChoice::Never) && s.crash.kind == CrashKind::Tear && appends(s) >= 4
        }),
        ("interval-keep", |s| {
            matches!(s.config.flush, FlushChoice::Interval(_))
                && s.crash.kind == CrashKind::KeepAll
                && appends(s) >= 3
        }),
        ("roll-retention", |s| {
            has(s, |o| matches!(o, Op::Roll)) && has(s, |o| matches!(o, Op::Retention)) && appends(s) >= 3
        }),
        ("truncate-delete", |s| {
            has(s, |o| matches!(o, Op::Truncate { .. }))
                && has(s, |o| matches!(o, Op::DeleteRecordsBefore { .. }))
                && appends(s) >= 3
        }),
        ("flips", |s| !s.crash.flips().is_empty() && appends(s) >= 4),
        ("mid-crash-flips", |s| {
            has(s, |o| matches!(o, Op::Crash(c) if !c.flips().is_empty())) && appends(s) >= 3
        }),
        ("manager-reopen", |s| s.via_manager && has(s, |o| matches!(o, Op::Reopen)) && appends(s) >= 3),
        ("failed-sync", |s| has(s, |o| matches!(o, Op::FailNextSyncs { .. })) && appends(s) >= 3),
        ("disk-full", |s| has(s, |o| matches!(o, Op::DiskFull { .. })) && appends(s) >= 3),
        ("group-commit", |s| {
            s.sync_yields % 3 > 0 && has(s, |o| matches!(o, Op::Concurrent { .. })) && appends(s) >= 2
        }),
    ]
}

fn log_recovery_seeds() {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u8
    };
    for (name, wanted) in features() {
        let mut found = false;
        for _ in 0..200_000 {
            let len = 60 + usize::from(next()) / 2 + usize::from(next()) / 2;
            let data: Vec<u8> = (0..len).map(|_| next()).collect();
            let Some(s) = Scenario::decode(&data) else { continue };
            if s.ops.len() > 40 || !wanted(&s) {
                continue;
            }
            let passes = std::panic::catch_unwind(|| ringtail_fuzz::log_recovery::run(&data)).is_ok();
            if !passes {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/gen_seeds");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(format!("failing-{name}")), &data).unwrap();
                eprintln!("log_recovery seed candidate {name} fails: kept in artifacts/gen_seeds/");
                continue;
            }
            write("log_recovery", name, &data);
            found = true;
            break;
        }
        if !found {
            eprintln!("no log_recovery seed found for {name}");
        }
    }
}

fn main() {
    record_batch_seeds();
    segment_bytes_seeds();
    log_recovery_seeds();
    for t in ["log_recovery", "segment_bytes", "record_batch"] {
        eprintln!("{t}: {} files", std::fs::read_dir(out_dir(t)).unwrap().count());
    }
}
