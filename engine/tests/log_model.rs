//! Model test: random sequences of append, read, roll, retention,
//! delete-records, truncate, flush, reopen and crash against a plain
//! in-memory model of the log.
//!
//! After a crash the log must equal a prefix of the model that holds at least
//! everything the model knows was made durable (every acknowledged append
//! under flush=always; under flush=never, everything before the last flush,
//! roll or clean close). Cases: `PROPTEST_CASES` (default 1000).

mod common;

use bytes::Bytes;
use common::{batch, batches, runtime};
use proptest::prelude::*;
use ringtail_engine::clock::{Clock, ManualClock};
use ringtail_engine::io::mem::CrashMode;
use ringtail_engine::io::{Disk, MemDisk, StdDisk, UringDisk};
use ringtail_engine::log::batch::{set_base_offset, set_partition_leader_epoch};
use ringtail_engine::log::{FlushPolicy, Log, LogCache, LogConfig, LogManager, ReadError, TopicPartition};
use std::path::PathBuf;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;
/// Two 64 KiB write buffers, so that a run reads both from the cache and, once the cache
/// evicted what it wrote first, from the disk; and small batches are served
/// both as slices of one chunk and gathered from several.
const CACHE_BYTES: usize = 128 * 1024;
const SLICE_BYTES_MIN: usize = 300;

#[derive(Clone, Debug)]
enum Op {
    Append { records: u32, payload: usize },
    Concurrent { count: usize, payload: usize },
    Read { at: f64, max_bytes: usize },
    Roll,
    Tick { ms: i64 },
    Retention,
    DeleteRecords { at: f64 },
    Truncate { at: f64 },
    Flush,
    Reopen,
    Crash { mode: u8, seed: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u32..5, 8usize..400).prop_map(|(records, payload)| Op::Append { records, payload }),
        2 => (2usize..8, 8usize..200).prop_map(|(count, payload)| Op::Concurrent { count, payload }),
        4 => (0.0f64..1.1, 1usize..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => Just(Op::Roll),
        2 => (0i64..5000).prop_map(|ms| Op::Tick { ms }),
        1 => Just(Op::Retention),
        1 => (0.0f64..1.0).prop_map(|at| Op::DeleteRecords { at }),
        1 => (0.0f64..1.0).prop_map(|at| Op::Truncate { at }),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        2 => (0u8..3, any::<u64>()).prop_map(|(mode, seed)| Op::Crash { mode, seed }),
    ]
}

fn config() -> impl Strategy<Value = LogConfig> {
    (
        300u64..3000,
        prop::option::of(1000i64..20_000),
        prop::option::of(500u64..5000),
        prop::bool::ANY,
        50u64..1000,
    )
        .prop_map(|(segment_bytes, retention_ms, retention_bytes, always, interval)| LogConfig {
            segment_bytes,
            retention_ms,
            retention_bytes,
            index_interval_bytes: interval,
            flush: if always { FlushPolicy::Always } else { FlushPolicy::Never },
            ..LogConfig::default()
        })
}

/// The log as the model sees it: batches as they must read back.
#[derive(Default)]
struct Model {
    batches: Vec<(u64, u64, Bytes)>, // (base offset, next offset, bytes)
    log_start: u64,
    /// The log end offset.
    next: u64,
    /// Offsets below this are durable: no crash may lose them.
    durable: u64,
    next_id: u64,
}

impl Model {
    fn end(&self) -> u64 {
        self.next
    }

    fn offset_at(&self, at: f64) -> u64 {
        let (start, end) = (self.log_start, self.end());
        start + ((end - start) as f64 * at) as u64
    }

    fn push(&mut self, base: u64, mut bytes: Vec<u8>) {
        set_base_offset(&mut bytes, base);
        set_partition_leader_epoch(&mut bytes, 7);
        let count = u32::from_be_bytes(bytes[57..61].try_into().unwrap()) as u64;
        self.batches.push((base, base + count, Bytes::from(bytes)));
        self.next = base + count;
    }

    /// Drops every batch with offsets at or past `offset` (whole batches).
    fn truncate(&mut self, offset: u64) {
        if let Some(first_gone) = self.batches.iter().find(|b| b.1 > offset) {
            self.next = first_gone.0;
        }
        self.batches.retain(|b| b.1 <= offset);
        self.log_start = self.log_start.min(self.next);
        self.durable = self.durable.min(self.end());
    }
}

/// What a crash does to the disk: power loss on the in-memory disk; on a real
/// file system a killed process, which loses nothing the kernel accepted.
type Crasher = Box<dyn Fn(u8, u64)>;

struct Harness<D: Disk> {
    disk: Arc<D>,
    root: PathBuf,
    clock: Arc<ManualClock>,
    config: LogConfig,
    manager: Option<LogManager<D>>,
    tp: TopicPartition,
}

impl<D: Disk> Harness<D> {
    async fn open(&mut self) -> Arc<Log<D>> {
        self.manager = None;
        let config = self.config;
        let cache = LogCache::with_slice_bytes_min(CACHE_BYTES, SLICE_BYTES_MIN);
        // One sealed segment's file open at most: reads of the others open
        // theirs, while retention and truncation delete segments.
        cache.open_files().set_capacity(1);
        let (m, _) =
            LogManager::open(self.disk.clone(), self.root.clone(), self.clock.clone(), cache, move |_| {
                config
            })
            .await
            .expect("open");
        let log = m.get_or_create(&self.tp, self.config).await.unwrap();
        self.manager = Some(m);
        log
    }

    fn manager(&self) -> &LogManager<D> {
        self.manager.as_ref().unwrap()
    }
}

async fn check_read<D: Disk>(log: &Log<D>, model: &Model, offset: u64, max_bytes: usize) {
    let result = log.read(offset, max_bytes, None).await;
    if offset < model.log_start || offset > model.end() {
        assert!(matches!(result, Err(ReadError::OffsetOutOfRange { .. })), "read {offset}: {result:?}");
        return;
    }
    let got = result.expect("read in range");
    assert_eq!((got.log_start_offset, got.log_end_offset), (model.log_start, model.end()));
    let got = batches(&got.records);
    let from = model.batches.iter().position(|b| b.1 > offset);
    match from {
        None => assert!(got.is_empty(), "read {offset} at the end returned batches"),
        Some(i) => {
            assert!(!got.is_empty(), "read {offset} below the end returned nothing");
            let total: usize = got.iter().map(|(_, b)| b.len()).sum();
            assert!(got.len() == 1 || total <= max_bytes, "read exceeded max bytes");
            for (k, (_, b)) in got.iter().enumerate() {
                assert_eq!(b, &model.batches[i + k].2, "read {offset}: batch {k} differs");
            }
        }
    }
}

/// The log must hold exactly the model's batches.
async fn check_all<D: Disk>(log: &Log<D>, model: &Model) {
    assert_eq!(log.log_start_offset(), model.log_start);
    assert_eq!(log.log_end_offset(), model.end());
    let mut offset = model.log_start;
    while offset < model.end() {
        check_read(log, model, offset, 1 << 20).await;
        let r = log.read(offset, 1 << 20, None).await.unwrap();
        offset = batches(&r.records).last().unwrap().0.next_offset();
    }
}

async fn run<D: Disk>(disk: Arc<D>, root: PathBuf, crash: Crasher, config: LogConfig, ops: Vec<Op>) {
    let always = config.flush == FlushPolicy::Always;
    let mut h = Harness {
        disk,
        root,
        clock: Arc::new(ManualClock::new(T0)),
        config,
        manager: None,
        tp: TopicPartition::new("m", 0),
    };
    let mut log = h.open().await;
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append { records, payload } => {
                let b = batch(records, model.next_id, h.clock.now_ms(), payload);
                model.next_id += 1;
                let info = log.append(b.clone(), 7).await.expect("append");
                assert_eq!(info.base_offset, model.end());
                model.push(info.base_offset, b.to_vec());
                if always {
                    model.durable = model.end();
                }
            }
            Op::Concurrent { count, payload } => {
                let mut tasks = Vec::new();
                for _ in 0..count {
                    let b = batch(1, model.next_id, h.clock.now_ms(), payload);
                    model.next_id += 1;
                    let log = log.clone();
                    tasks.push(tokio::spawn(
                        async move { (log.append(b.clone(), 7).await.expect("append"), b) },
                    ));
                }
                let mut done = Vec::new();
                for t in tasks {
                    done.push(t.await.unwrap());
                }
                done.sort_by_key(|(info, _)| info.base_offset);
                for (info, b) in done {
                    assert_eq!(info.base_offset, model.end());
                    model.push(info.base_offset, b.to_vec());
                }
                if always {
                    model.durable = model.end();
                }
            }
            Op::Read { at, max_bytes } => {
                let offset = if at > 1.0 { model.end() + 1 } else { model.offset_at(at) };
                check_read(&log, &model, offset, max_bytes).await;
            }
            Op::Roll => {
                log.roll().await.unwrap();
                model.durable = model.end();
            }
            Op::Tick { ms } => h.clock.advance_ms(ms),
            Op::Retention => {
                let outcome = log.apply_retention().await.unwrap();
                assert!(outcome.log_start_offset >= model.log_start);
                assert!(outcome.log_start_offset <= model.end());
                model.log_start = outcome.log_start_offset;
                model.batches.retain(|b| b.1 > model.log_start);
                assert_eq!(log.segment_base_offsets().last(), log.segment_base_offsets().last());
            }
            Op::DeleteRecords { at } => {
                let offset = model.offset_at(at);
                h.manager().delete_records_before(&h.tp, offset).await.unwrap();
                model.log_start = model.log_start.max(offset);
                model.batches.retain(|b| b.1 > model.log_start);
            }
            Op::Truncate { at } => {
                let offset = model.offset_at(at);
                h.manager().truncate_to(&h.tp, offset).await.unwrap();
                model.truncate(offset);
            }
            Op::Flush => {
                log.flush().await.unwrap();
                model.durable = model.end();
            }
            Op::Reopen => {
                h.manager().close().await.unwrap();
                model.durable = model.end();
                log = h.open().await;
            }
            Op::Crash { mode, seed } => {
                assert!(log.flushed_offset() >= model.durable, "log claims less durability than it owes");
                drop(h.manager.take());
                crash(mode, seed);
                drop(log);
                log = h.open().await;
                let end = log.log_end_offset();
                assert!(end >= model.durable, "crash lost durable data: end {end} < {}", model.durable);
                // Whatever survived must be a prefix of what was written.
                model.truncate(end);
                if model.batches.is_empty() {
                    // The model forgets batches below the log start.
                    model.next = model.next.min(end);
                }
                assert_eq!(model.end(), end, "recovered a batch boundary the model lacks");
                model.log_start = model.log_start.min(end);
                assert_eq!(log.log_start_offset(), model.log_start);
                model.durable = model.end();
                check_all(&log, &model).await;
            }
        }
    }
    check_all(&log, &model).await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000),
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(
            "tests/log_model.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_matches_model(config in config(), ops in prop::collection::vec(op(), 1..60)) {
        let disk = Arc::new(MemDisk::new());
        disk.set_sync_yields(2);
        let crash_disk = disk.clone();
        let crash: Crasher = Box::new(move |mode, seed| power_loss(&crash_disk, mode, seed));
        runtime().block_on(run(disk, PathBuf::from("/data"), crash, config, ops));
    }
}

fn power_loss(disk: &MemDisk, mode: u8, seed: u64) {
    let mut state = seed;
    let mut rng = move || {
        // splitmix64: a seeded, dependency-free choice stream.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    disk.crash(match mode {
        0 => CrashMode::DropUnsynced,
        1 => CrashMode::KeepAll,
        _ => CrashMode::Random(&mut rng),
    });
}

/// The same model on real files through the std and io_uring backends, where
/// a crash is a killed process (fewer cases: real I/O is slower).
fn on_real_files<D: Disk>(disk: D, config: LogConfig, ops: Vec<Op>) {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = tmp.path().join("data");
    runtime().block_on(run(Arc::new(disk), root, Box::new(|_, _| {}), config, ops));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse::<u32>().ok()).map_or(64, |c| c.div_ceil(10)),
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(
            "tests/log_model.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn std_backend_matches_model(config in config(), ops in prop::collection::vec(op(), 1..40)) {
        on_real_files(StdDisk::new(), config, ops);
    }

    #[test]
    fn uring_backend_matches_model(config in config(), ops in prop::collection::vec(op(), 1..40)) {
        on_real_files(UringDisk::new().expect("io_uring is available on the test host"), config, ops);
    }
}
