//! The broker under test: its data directory, the fixture topics and
//! batches, and snapshots of what it stores.

use super::{FIXTURE_TOPICS, NODE_ID, SEED, T0};
use bytes::Bytes;
use ringtail_engine::broker::metadata::ClusterMetadata;
use ringtail_engine::broker::topics::CreateTopic;
use ringtail_engine::broker::{Acks, Broker, BrokerConfig, BrokerEndpoint, TopicState};
use ringtail_engine::clock::ManualClock;
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::io::{AnyDisk, StdDisk};
use ringtail_engine::log::records::BatchBuilder;
use ringtail_engine::log::{LogConfig, TopicPartition};
use ringtail_server::disk_space::DiskGuard;
use ringtail_server::handlers::Context;
use ringtail_server::limits::Limits;
use ringtail_server::metered_disk::{MeteredDisk, ServerBroker};
use ringtail_server::metrics::Metrics;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) struct Fixture {
    dir: PathBuf,
    broker: Arc<ServerBroker>,
    pub(super) ctx: Context,
    pub(super) auto_create: bool,
    pub(super) fix_crc: bool,
    /// Kept so that the handlers never see a shutdown.
    _shutdown: ringtail_engine::watch::Sender<bool>,
}

/// This thread's data directory: the same path every run, so that messages
/// that name it are the same too.
fn run_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static THREADS: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static DIR: PathBuf = {
            let shm = Path::new("/dev/shm");
            let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
            let n = THREADS.fetch_add(1, Ordering::Relaxed);
            base.join(format!("ringtail-fuzz-kafka-request-{}-{n}", std::process::id()))
        };
    }
    DIR.with(Clone::clone)
}

impl Fixture {
    pub(super) async fn open(auto_create: bool) -> Fixture {
        let dir = run_dir();
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing {}: {e}", dir.display()),
        }
        std::fs::create_dir_all(&dir).expect("create the data directory");
        let metrics = Metrics::new("std");
        let disk = MeteredDisk::new(AnyDisk::Std(StdDisk::new()), metrics.clone());
        let config = BrokerConfig {
            node_id: NODE_ID,
            advertised: BrokerEndpoint { node_id: NODE_ID, host: "localhost".into(), port: 9092 },
            default_partitions: 1,
            default_replication_factor: None,
            auto_create_topics: auto_create,
            topic_defaults: LogConfig::default(),
            group: ringtail_engine::group::GroupConfig::default(),
            log_cache_bytes: 1 << 20,
            quorum: false,
            replication: ringtail_engine::replica::ReplicationConfig::default(),
            // The fixture topics roll 1 KiB segments; the floor stays in force at that.
            topic_limits: ringtail_engine::broker::TopicLimits {
                segment_bytes_min: 1024,
                ..ringtail_engine::broker::TopicLimits::default()
            },
            cleaner: Default::default(),
        };
        let (broker, _) = Broker::open(
            Arc::new(disk),
            dir.clone(),
            config,
            Arc::new(ManualClock::new(T0)),
            Arc::new(SeededEntropy::new(SEED)),
        )
        .await
        .expect("open the broker");
        for (name, partitions, configs) in FIXTURE_TOPICS {
            let configs = configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let request = CreateTopic {
                name: name.into(),
                partitions: Some(partitions),
                replication_factor: None,
                configs,
            };
            broker.create_topic(request, false).await.expect("create a fixture topic");
        }
        let partition = broker.leader_partition("t", 0).expect("t-0");
        for i in 0..3 {
            partition.produce(fixture_batch(i), Acks::All).await.expect("fixture produce");
        }
        let broker = Arc::new(broker);
        let (shutdown_tx, shutdown) = ringtail_engine::watch::channel(false);
        let ctx = Context {
            broker: broker.clone(),
            disk_guard: Arc::new(DiskGuard::disabled()),
            fetch_sessions: Default::default(),
            metrics,
            limits: Limits::default(),
            shutdown,
            observer: None,
            authorizer: None,
            quotas: Default::default(),
        };
        Fixture { dir, broker, ctx, auto_create, fix_crc: false, _shutdown: shutdown_tx }
    }

    pub(super) async fn snapshot(&self) -> Snapshot {
        let mut files = BTreeMap::new();
        read_tree(&self.dir, &self.dir, &mut files);
        let persisted = ClusterMetadata::load(&StdDisk::new(), &self.dir).await.expect("metadata file loads");
        let partitions = self
            .broker
            .hosted_partitions()
            .into_iter()
            .map(|p| {
                let offsets = (p.log.log_start_offset(), p.log.log_end_offset(), p.high_watermark());
                (p.tp.clone(), offsets)
            })
            .collect();
        Snapshot { files, topics: self.broker.topics(), persisted, partitions }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A batch of the fixture's `t-0`: 1-2 records 1 s apart.
fn fixture_batch(i: i64) -> Bytes {
    let mut b = BatchBuilder::new(0, T0 - 10_000 + i * 1000);
    for r in 0..=i % 2 {
        let value = Bytes::from(format!("value-{i}-{r}"));
        b.push(Some(Bytes::from(format!("key-{i}"))), Some(value), T0 - 10_000 + i * 1000 + r * 10);
    }
    b.build()
}

fn read_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("list the data directory")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            out.insert(name, None);
            read_tree(root, &path, out);
        } else {
            out.insert(name, Some(std::fs::read(&path).expect("read a data file")));
        }
    }
}

/// What is stored, before and after a request.
pub(super) struct Snapshot {
    /// Every file (contents) and directory (`None`) under the data
    /// directory, by relative path.
    pub(super) files: BTreeMap<String, Option<Vec<u8>>>,
    pub(super) topics: BTreeMap<String, TopicState>,
    pub(super) persisted: Option<ClusterMetadata>,
    /// Hosted partitions: (log start, log end, high watermark).
    pub(super) partitions: BTreeMap<TopicPartition, (u64, u64, u64)>,
}
