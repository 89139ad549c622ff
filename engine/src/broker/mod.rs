//! The broker: one node's view of topics and partitions, behind typed
//! requests and responses. Generic over its Disk; the server puts it behind
//! TCP and the Kafka wire protocol, the simulator behind a simulated network.
//!
//! - `cluster`: a broker of a cluster, following the controller quorum's
//!   image and sending its changes there.
//! - `log_errors`: the Kafka error code each log failure answers with.
//! - `groups`: the consumer-group coordinator (`group`'s state machine,
//!   persisted in `__consumer_offsets`); `group_compaction` keeps those
//!   logs to their live records.
//! - `metadata`: topics, assignments, leaders, configs; persisted.
//! - `partition`: a replica this broker hosts: its log, high watermark,
//!   producer state; produce and fetch.
//! - `producers`: idempotent-producer sequence tracking.
//! - `topics`: create, delete, auto-create, describe configs.
//! - `create_partitions`: growing a topic; `topic_configs`: changing its
//!   configs while it runs (AlterConfigs, IncrementalAlterConfigs).
//! - `elect_leaders`: leader elections an operator asks for (ElectLeaders).
//! - `credentials`: users' SCRAM credentials (AlterUserScramCredentials,
//!   DescribeUserScramCredentials).
//! - `acls`: Kafka's ACLs (CreateAcls, DescribeAcls, DeleteAcls) and the
//!   decisions made against them.
//! - `quotas`: client quotas per user (AlterClientQuotas,
//!   DescribeClientQuotas).
//! - `upkeep`: what the owner runs on timers: ISR change requests,
//!   retention and flushes, the cleaner, reopening failed logs.
//!
//! The broker does no waiting on timers: long polls and request timeouts are
//! the caller's, through `Partition::high_watermark_watch` and its own clock.

pub mod acls;
mod cluster;
mod create_partitions;
pub mod credentials;
pub mod delete_records;
mod elect_leaders;
mod group_compaction;
mod group_persist;
pub mod groups;
mod log_errors;
pub mod metadata;
pub mod metadata_journal;
pub mod partition;
pub mod producers;
pub mod quotas;
mod reopen_backoff;
pub mod replication;
mod security_changes;
pub mod topic_configs;
pub mod topics;
mod upkeep;

// The codes live in the leaf `crate::error`; re-exported here, where the
// server, client and simulator have always found them.
pub use crate::controller::plan::{ElectionType, PartitionElection, Wanted};
pub use crate::controller::IsrChange;
pub use crate::error::{BrokerError, ErrorCode};
pub use cluster::{ControllerLink, FollowError, LinkFuture};
pub use metadata::{ClusterMetadata, PartitionAssignment, TopicState};
pub use metadata_journal::MetadataChange;
use metadata_journal::MetadataJournal;
pub use partition::{Acks, FetchOutcome, Partition, ProduceOutcome};

use crate::clock::Clock;
use crate::entropy::Entropy;
use crate::group::{Coordinator, GroupConfig};
use crate::io::Disk;
use crate::log::cleaner::CleanerSettings;
use crate::log::open_files::OPEN_SEGMENT_FILES_MAX;
use crate::log::{
    CacheStats, LogCache, LogConfig, LogManager, OpenError, RecoveryProgress, RecoveryReport, TopicPartition,
};
use crate::replica::ReplicationConfig;
use cluster::ClusterView;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Where clients reach a broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub advertised: BrokerEndpoint,
    pub default_partitions: u32,
    /// `None`: min(3, live brokers).
    pub default_replication_factor: Option<i16>,
    pub auto_create_topics: bool,
    /// Broker-wide topic defaults (`[topic-defaults]`); topics override.
    pub topic_defaults: LogConfig,
    /// The consumer-group coordinator's settings.
    pub group: GroupConfig,
    /// Memory for recently written log bytes, shared by all partitions
    /// (`LogCache`); reads of older data go to the disk.
    pub log_cache_bytes: usize,
    /// The metadata comes from a controller quorum (`cluster`), not from
    /// this broker alone.
    pub quorum: bool,
    /// `replica.lag.time.max.ms` and the like.
    pub replication: ReplicationConfig,
    /// Bounds on what clients may ask of topics.
    pub topic_limits: TopicLimits,
    /// How compacted topics' logs are cleaned (`clean_logs`).
    pub cleaner: CleanerSettings,
}

/// Bounds on what clients may make the broker hold through topics: each
/// partition costs at least an open file, and each segment another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicLimits {
    /// Partitions (of all topics, as this broker's metadata knows them)
    /// that CreateTopics, CreatePartitions and auto-creation may bring the
    /// total to; beyond it they get POLICY_VIOLATION.
    pub partitions_max: u32,
    /// Smallest `segment.bytes` a topic may set (Kafka 4.0's floor, 1 MiB).
    pub segment_bytes_min: u64,
    /// Smallest `segment.ms` a topic may set.
    pub segment_ms_min: i64,
    /// Sealed segment files held open at once, broker-wide (`OpenFiles`);
    /// the others are opened when read.
    pub open_segment_files_max: usize,
}

impl Default for TopicLimits {
    fn default() -> Self {
        TopicLimits {
            partitions_max: 10_000,
            segment_bytes_min: 1 << 20,
            segment_ms_min: 1_000,
            open_segment_files_max: OPEN_SEGMENT_FILES_MAX,
        }
    }
}

impl TopicLimits {
    /// No bounds on topics: for tests and the simulator, which roll tiny
    /// segments. (Open files keep the default bound, which costs nothing.)
    pub fn none() -> TopicLimits {
        TopicLimits {
            partitions_max: u32::MAX,
            segment_bytes_min: 0,
            segment_ms_min: 0,
            open_segment_files_max: OPEN_SEGMENT_FILES_MAX,
        }
    }
}

pub struct Broker<D: Disk> {
    config: BrokerConfig,
    disk: Arc<D>,
    dir: PathBuf,
    logs: LogManager<D>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    metadata: Mutex<ClusterMetadata>,
    /// One metadata change at a time, persisted before it is visible.
    metadata_changes: tokio::sync::Mutex<()>,
    /// Held by `sync_partitions_with_metadata`.
    syncing: tokio::sync::Mutex<()>,
    /// Where metadata changes are made durable, one at a time.
    journal: tokio::sync::Mutex<MetadataJournal<D>>,
    /// Topic names by id, kept with `metadata` (locked after it): requests
    /// by topic id look one up without walking every topic.
    topic_ids: Mutex<BTreeMap<[u8; 16], String>>,
    /// When each poisoned log that failed to reopen may be tried again.
    reopen_backoff: Mutex<reopen_backoff::ReopenBackoff>,
    partitions: Mutex<BTreeMap<TopicPartition, Arc<Partition<D>>>>,
    /// The next producer id to hand out; below the reserved bound on disk.
    next_producer_id: Mutex<i64>,
    /// The consumer groups of the offsets partitions led here; never held
    /// across an await.
    groups: Mutex<Coordinator>,
    /// In a cluster: the way to the quorum, and what it last said.
    controller_link: OnceLock<Arc<dyn ControllerLink>>,
    view: Mutex<ClusterView>,
    followed: crate::watch::Sender<u64>,
    /// In a cluster: the producer ids left of the block the quorum gave.
    producer_block: tokio::sync::Mutex<std::ops::Range<i64>>,
}

impl<D: Disk> Broker<D> {
    /// Opens the data directory (locking it), recovers every log, and loads
    /// the metadata. Logs that no topic owns any more (a delete interrupted
    /// by a crash) are removed.
    pub async fn open(
        disk: Arc<D>,
        dir: PathBuf,
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
    ) -> Result<(Broker<D>, Vec<RecoveryReport>), OpenError> {
        Self::open_with_progress(disk, dir, config, clock, entropy, &RecoveryProgress::new()).await
    }

    /// `open`, counting the logs recovered into `progress` as it goes.
    pub async fn open_with_progress(
        disk: Arc<D>,
        dir: PathBuf,
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        progress: &RecoveryProgress,
    ) -> Result<(Broker<D>, Vec<RecoveryReport>), OpenError> {
        let defaults = config.topic_defaults;
        let cache = LogCache::new(config.log_cache_bytes);
        cache.open_files().set_capacity(config.topic_limits.open_segment_files_max);
        let (logs, reports) = LogManager::open_with_progress(
            disk.clone(),
            dir.clone(),
            clock.clone(),
            cache,
            move |_| defaults,
            progress,
        )
        .await?;
        if config.quorum {
            // A member has no way yet to tell the controller that a replica
            // here lost acknowledged data (Kafka's offline log directories),
            // so the controller could make it leader: it stays down instead,
            // and the quorum moves its leaderships (see README, "One bad log").
            if let Some((tp, reason)) = logs.offline_logs().into_iter().next() {
                return Err(OpenError::Corrupt { path: dir.join(tp.dir_name()), reason });
            }
        }
        let io_err = |source| OpenError::Io { path: dir.join(metadata::METADATA_FILE), source };
        let loaded = metadata_journal::load(disk.as_ref(), &dir).await.map_err(io_err)?;
        let fresh = || {
            // A member's cluster id comes with its first image.
            (!config.quorum).then(|| {
                ClusterMetadata::new(format!("{:016x}{:016x}", entropy.next_u64(), entropy.next_u64()))
            })
        };
        let (journal, metadata) =
            MetadataJournal::open(disk.as_ref(), &dir, loaded, fresh).await.map_err(io_err)?;
        let metadata = metadata.unwrap_or_else(cluster::unclaimed);
        let next_producer_id = Mutex::new(metadata.next_producer_id);
        let applied = metadata.applied;
        let config_group = config.group;
        let topic_ids = metadata.topics.iter().map(|(n, t)| (t.topic_id_bytes(), n.clone())).collect();
        let broker = Broker {
            next_producer_id,
            config,
            disk,
            dir: dir.clone(),
            logs,
            clock,
            entropy,
            metadata: Mutex::new(metadata),
            metadata_changes: tokio::sync::Mutex::new(()),
            journal: tokio::sync::Mutex::new(journal),
            syncing: tokio::sync::Mutex::new(()),
            topic_ids: Mutex::new(topic_ids),
            reopen_backoff: Mutex::new(Default::default()),
            partitions: Mutex::new(BTreeMap::new()),
            groups: Mutex::new(Coordinator::new(config_group)),
            controller_link: OnceLock::new(),
            view: Mutex::new(ClusterView { applied, ..ClusterView::default() }),
            followed: crate::watch::Sender::new(applied),
            producer_block: tokio::sync::Mutex::new(0..0),
        };
        broker.sync_partitions_with_metadata(None).await?;
        // Groups are served from their log before anything is answered.
        broker.load_led_offsets_partitions().await;
        Ok((broker, reports))
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// Faults in the log cache's memory now (`LogCache::pretouch`); returns
    /// the bytes touched.
    pub fn pretouch_cache(&self) -> usize {
        self.logs.cache().pretouch()
    }

    /// The log cache's size and hit counts, for `/metrics`.
    pub fn cache_stats(&self) -> CacheStats {
        self.logs.cache().stats()
    }

    /// Sets the log cache's budget, at most the configured one, evicting
    /// down to it (`LogCache::set_capacity`); returns the budget in force.
    /// The owner shrinks it under memory pressure and grows it back after.
    pub fn set_cache_capacity(&self, bytes: usize) -> usize {
        self.logs.cache().set_capacity(bytes)
    }

    pub fn cluster_id(&self) -> String {
        self.metadata().cluster_id.clone()
    }

    pub(crate) fn metadata(&self) -> MutexGuard<'_, ClusterMetadata> {
        self.metadata.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot of the topics this broker knows (a copy of them all: for
    /// one topic, `topic`).
    pub fn topics(&self) -> BTreeMap<String, TopicState> {
        self.metadata().topics.clone()
    }

    /// One topic's state.
    pub fn topic(&self, name: &str) -> Option<TopicState> {
        self.metadata().topics.get(name).cloned()
    }

    /// How many partitions a topic has.
    pub fn partition_count(&self, name: &str) -> Option<usize> {
        self.metadata().topics.get(name).map(|t| t.partitions.len())
    }

    /// The name of the topic whose id is `id` (`TopicState::topic_id_bytes`).
    pub fn topic_name_by_id(&self, id: [u8; 16]) -> Option<String> {
        self.topic_ids().get(&id).cloned()
    }

    fn topic_ids(&self) -> MutexGuard<'_, BTreeMap<[u8; 16], String>> {
        self.topic_ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live brokers of the cluster as known here: this node alone, or
    /// the quorum's unfenced brokers.
    pub fn brokers(&self) -> Vec<BrokerEndpoint> {
        if self.config.quorum {
            return self.view().brokers.clone();
        }
        vec![self.config.advertised.clone()]
    }

    /// Registered brokers the quorum has fenced; none on a single node.
    pub fn fenced_brokers(&self) -> Vec<BrokerEndpoint> {
        self.view().fenced.clone()
    }

    /// The id of the node acting as controller; -1 when none is known.
    pub fn controller_id(&self) -> i32 {
        if self.config.quorum {
            return self.view().controller.unwrap_or(-1);
        }
        self.config.node_id
    }

    fn view(&self) -> MutexGuard<'_, ClusterView> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn partitions(&self) -> MutexGuard<'_, BTreeMap<TopicPartition, Arc<Partition<D>>>> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The partition replica hosted here, if any.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition<D>>> {
        self.partitions().get(&TopicPartition::new(topic, partition)).cloned()
    }

    /// Every partition replica hosted here.
    pub fn hosted_partitions(&self) -> Vec<Arc<Partition<D>>> {
        self.partitions().values().cloned().collect()
    }

    /// Looks up a partition for a leader-only request (produce, fetch, list
    /// offsets): unknown topics and partitions, and partitions led
    /// elsewhere, get the error a client re-routes on.
    pub fn leader_partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition<D>>, BrokerError> {
        let assignment = {
            let m = self.metadata();
            m.topics
                .get(topic)
                .and_then(|t| usize::try_from(partition).ok().and_then(|p| t.partitions.get(p).cloned()))
        };
        let Some(assignment) = assignment else {
            return Err(BrokerError::new(ErrorCode::UnknownTopicOrPartition, format!("{topic}-{partition}")));
        };
        if assignment.leader != self.config.node_id {
            let leader = assignment.leader;
            return Err(BrokerError::new(
                ErrorCode::NotLeaderOrFollower,
                format!("{topic}-{partition} is led by {leader}"),
            ));
        }
        self.partition(topic, partition).ok_or_else(|| match self.offline_reason(topic, partition) {
            Some(reason) => BrokerError::new(
                ErrorCode::KafkaStorageError,
                format!("{topic}-{partition} is offline: {reason}"),
            ),
            None => {
                BrokerError::new(ErrorCode::NotLeaderOrFollower, format!("{topic}-{partition} not loaded"))
            }
        })
    }

    /// Why the replica of a partition here is offline (its log was found
    /// damaged below its recovery point at start-up), if it is.
    pub fn offline_reason(&self, topic: &str, partition: i32) -> Option<String> {
        self.logs.offline_reason(&TopicPartition::new(topic, partition))
    }

    /// Every offline partition replica here, with why.
    pub fn offline_partitions(&self) -> BTreeMap<TopicPartition, String> {
        self.logs.offline_logs()
    }

    /// Opens the logs of every partition the metadata places here, deletes
    /// logs it no longer places here, moves hosted partitions to the
    /// metadata's leader epochs, and gives them their topic's configs.
    ///
    /// `only`: the one topic that changed (the others are not looked at, so
    /// a change costs the same among ten thousand topics as among ten).
    async fn sync_partitions_with_metadata(&self, only: Option<&str>) -> Result<(), OpenError> {
        // One sync at a time: two would each set up a new partition (two
        // `Partition`s for one log, one of them never served), and a slow
        // one would act on the metadata it read before the other's change.
        let _one = self.syncing.lock().await;
        type Wanted = (LogConfig, PartitionAssignment, usize);
        let wanted: BTreeMap<TopicPartition, Wanted> = {
            let m = self.metadata();
            let mut wanted = BTreeMap::new();
            let topics: Box<dyn Iterator<Item = (&String, &TopicState)>> = match only {
                Some(name) => Box::new(m.topics.get_key_value(name).into_iter()),
                None => Box::new(m.topics.iter()),
            };
            for (name, topic) in topics {
                let config = self.log_config(&topic.configs).unwrap_or(self.config.topic_defaults);
                let min_insync = topics::min_insync_replicas(&topic.configs);
                for (i, p) in topic.partitions.iter().enumerate() {
                    if p.replicas.contains(&self.config.node_id) {
                        wanted.insert(TopicPartition::new(name, i as i32), (config, p.clone(), min_insync));
                    }
                }
            }
            wanted
        };
        let offline = self.logs.offline_logs().into_keys();
        let logs = self.logs.partitions().into_iter().chain(offline);
        for tp in logs.filter(|tp| only.is_none_or(|name| tp.topic == name)) {
            if !wanted.contains_key(&tp) {
                tracing::warn!(partition = %tp, "deleting log of a partition no topic places here");
                self.partitions().remove(&tp);
                self.logs.delete(&tp).await.map_err(|e| OpenError::Io {
                    path: self.dir.join(tp.dir_name()),
                    source: std::io::Error::other(e.to_string()),
                })?;
            }
        }
        for (tp, (config, assignment, min_insync)) in wanted {
            let hosted = self.partitions().get(&tp).cloned();
            if hosted.is_none() && self.logs.offline_reason(&tp).is_some() {
                continue;
            }
            let partition = match hosted {
                Some(p) => {
                    // A config change (AlterConfigs) reaches the running log;
                    // it was validated before it was agreed, so a refusal
                    // here would be a bug, and it must not stop the rest.
                    if p.log.config() != config {
                        match p.log.set_config(config) {
                            Ok(()) => tracing::info!(partition = %tp, "applied a new log config"),
                            Err(e) => {
                                tracing::error!(partition = %tp, error = %e, "a new log config refused")
                            }
                        }
                    }
                    p
                }
                None => {
                    let log = self.logs.get_or_create(&tp, config).await?;
                    log.set_config(config).map_err(OpenError::Config)?;
                    let partition = Arc::new(Partition::open(tp.clone(), log, assignment.leader_epoch).await);
                    self.partitions().insert(tp.clone(), partition.clone());
                    partition
                }
            };
            let (me, now) = (self.config.node_id, self.clock.now_ms());
            let may_lead = !self.config.quorum || self.view().may_lead;
            partition
                .apply_assignment(&assignment, me, may_lead, min_insync, now, self.config.replication)
                .await
                .map_err(|source| OpenError::Io { path: self.dir.join(tp.dir_name()), source })?;
        }
        Ok(())
    }

    /// The log config of a topic: broker defaults with its overrides.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> Result<LogConfig, String> {
        let mut config = self.config.topic_defaults;
        for (key, value) in overrides {
            if topics::BROKER_ONLY_CONFIGS.contains(&key.as_str()) {
                continue;
            }
            config.set(key, value)?;
        }
        Ok(config)
    }

    /// Syncs and closes every log and writes the checkpoints.
    pub async fn close(&self) -> Result<(), crate::log::LogError> {
        self.logs.close().await
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
