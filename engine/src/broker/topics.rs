//! Topic administration: create (explicitly or on first use), delete,
//! describe configs, and producer id allocation.

use super::metadata::{PartitionAssignment, TopicState};
use super::metadata_journal::MetadataChange;
use super::{Broker, BrokerEndpoint};
use crate::error::{BrokerError, ErrorCode};
use crate::group::is_internal_topic;
use crate::io::Disk;
use crate::log::config::format_ratio_ppm;
use crate::log::manager::validate_topic_name;
use crate::log::{LogConfig, TopicPartition};
use std::collections::BTreeMap;

/// Topic configs the broker accepts and reports but that are not log
/// settings.
pub const BROKER_ONLY_CONFIGS: [&str; 2] = ["min.insync.replicas", UNCLEAN_LEADER_ELECTION];

/// Kafka's topic config: when every in-sync replica is gone, elect a live
/// replica outside the ISR rather than leave the partition offline, and lose
/// what only the ISR held. Off unless set to "true".
pub const UNCLEAN_LEADER_ELECTION: &str = "unclean.leader.election.enable";

/// Every topic config key understood, with Kafka's names.
pub const TOPIC_CONFIG_KEYS: [&str; 17] = [
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "min.insync.replicas",
    "max.message.bytes",
    "cleanup.policy",
    "message.timestamp.type",
    "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms",
    "index.interval.bytes",
    "segment.index.bytes",
    UNCLEAN_LEADER_ELECTION,
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
    "delete.retention.ms",
];

/// The value of topic config `key` (one of `TOPIC_CONFIG_KEYS`) that a
/// topic with log settings `config` behaves by, as Kafka names and writes
/// it: what DescribeConfigs reports, and what the config file's
/// `[topic-defaults]` takes.
pub fn topic_config_value(config: &LogConfig, key: &str) -> String {
    let optional = |v: Option<i64>| v.unwrap_or(-1).to_string();
    match key {
        "retention.ms" => optional(config.retention_ms),
        "retention.bytes" => optional(config.retention_bytes.map(|b| b as i64)),
        "segment.bytes" => config.segment_bytes.to_string(),
        "segment.ms" => config.segment_ms.to_string(),
        "max.message.bytes" => config.max_message_bytes.to_string(),
        "index.interval.bytes" => config.index_interval_bytes.to_string(),
        "segment.index.bytes" => config.segment_index_bytes.to_string(),
        "message.timestamp.type" => config.timestamp_type.to_string(),
        "message.timestamp.before.max.ms" => config.timestamp_before_max_ms.to_string(),
        "message.timestamp.after.max.ms" => config.timestamp_after_max_ms.to_string(),
        "min.insync.replicas" => "1".into(),
        "cleanup.policy" => config.cleanup_policy.to_string(),
        "min.cleanable.dirty.ratio" => format_ratio_ppm(config.compaction.min_cleanable_dirty_ratio_ppm),
        "min.compaction.lag.ms" => config.compaction.min_compaction_lag_ms.to_string(),
        "max.compaction.lag.ms" => config.compaction.max_compaction_lag_ms.to_string(),
        "delete.retention.ms" => config.compaction.delete_retention_ms.to_string(),
        UNCLEAN_LEADER_ELECTION => "false".into(),
        other => unreachable!("{other} is in TOPIC_CONFIG_KEYS without a default here"),
    }
}

/// Most partitions one topic may have: each is a directory and open files.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 10_000;
/// Producer ids are reserved in blocks so that the metadata is written once
/// per block, not once per producer.
const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTopic {
    pub name: String,
    /// `None`: the broker's default.
    pub partitions: Option<u32>,
    pub replication_factor: Option<i16>,
    pub configs: BTreeMap<String, String>,
}

/// One config entry as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub is_default: bool,
}

/// A topic's `min.insync.replicas` (validated when set; 1 by default).
pub fn min_insync_replicas(configs: &BTreeMap<String, String>) -> usize {
    configs.get("min.insync.replicas").and_then(|v| v.parse().ok()).filter(|n| *n >= 1).unwrap_or(1)
}

fn check_broker_only(key: &str, value: &str) -> Result<(), String> {
    match key {
        "min.insync.replicas" => match value.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(()),
            _ => Err(format!("min.insync.replicas must be a positive integer, got {value:?}")),
        },
        UNCLEAN_LEADER_ELECTION if value == "true" || value == "false" => Ok(()),
        UNCLEAN_LEADER_ELECTION => {
            Err(format!("{UNCLEAN_LEADER_ELECTION} must be true or false, got {value:?}"))
        }
        _ => Ok(()),
    }
}

/// Partition `partition`'s replicas on a broker that places topics itself
/// (a single node): leaders spread over the brokers, and the replicas
/// follow the leader.
pub(super) fn place(
    partition: u32,
    replication_factor: i16,
    brokers: &[BrokerEndpoint],
) -> PartitionAssignment {
    let replicas: Vec<i32> = (0..replication_factor as usize)
        .map(|r| brokers[(partition as usize + r) % brokers.len()].node_id)
        .collect();
    PartitionAssignment {
        leader: replicas[0],
        leader_epoch: 0,
        isr: replicas.clone(),
        replicas,
        partition_epoch: 0,
    }
}

impl<D: Disk> Broker<D> {
    /// Creates a topic: validates it, persists the metadata, opens its logs.
    /// The internal `__consumer_offsets` is the group coordinator's to
    /// create (its partition count places every group).
    pub async fn create_topic(
        &self,
        request: CreateTopic,
        validate_only: bool,
    ) -> Result<TopicState, BrokerError> {
        if is_internal_topic(&request.name) {
            let msg = format!("{} is internal; the group coordinator creates it", request.name);
            return Err(BrokerError::new(ErrorCode::InvalidRequest, msg));
        }
        self.create_topic_unchecked(request, validate_only).await
    }

    pub(super) async fn create_topic_unchecked(
        &self,
        request: CreateTopic,
        validate_only: bool,
    ) -> Result<TopicState, BrokerError> {
        let name = request.name.as_str();
        if self.config.quorum && !validate_only {
            let (partitions, rf) = self.check_new_topic(&request)?;
            let topic = self.create_topic_in_cluster(name, partitions, rf, request.configs.clone()).await?;
            tracing::info!(topic = name, partitions, replication_factor = rf, "created topic");
            return Ok(topic);
        }
        // The check and the change under one lock: two creates of a name
        // cannot both pass it.
        let _one = self.metadata_changes.lock().await;
        let (partitions, rf) = self.check_new_topic(&request)?;
        let brokers = self.brokers();
        let topic = TopicState {
            topic_id: self.new_topic_id(),
            partitions: (0..partitions).map(|p| place(p, rf, &brokers)).collect(),
            configs: request.configs.clone(),
        };
        if validate_only {
            return Ok(topic);
        }
        self.put_topic(name, topic.clone()).await?;
        tracing::info!(topic = name, partitions, replication_factor = rf, "created topic");
        Ok(topic)
    }

    /// Refuses `more` partitions beyond `TopicLimits::partitions_max`.
    pub(super) fn check_partitions_max(&self, more: u32) -> Result<(), BrokerError> {
        let max = self.config.topic_limits.partitions_max;
        let now: usize = self.metadata().topics.values().map(|t| t.partitions.len()).sum();
        if now as u64 + u64::from(more) > u64::from(max) {
            let msg = format!(
                "{more} more partitions would make {} on this broker, over its limit of {max} (--max-partitions)",
                now as u64 + u64::from(more)
            );
            return Err(BrokerError::new(ErrorCode::PolicyViolation, msg));
        }
        Ok(())
    }

    /// A topic id no topic here has, nor the nil one. (A collision of 128
    /// random bits is out of reach, but a seeded entropy source restarted
    /// with its seed repeats itself.)
    fn new_topic_id(&self) -> String {
        loop {
            let id = format!("{:016x}{:016x}", self.entropy.next_u64(), self.entropy.next_u64());
            let bytes = super::metadata::topic_id_bytes(&id);
            if bytes != [0; 16] && self.topic_name_by_id(bytes).is_none() {
                return id;
            }
        }
    }

    /// Validates a new topic against the metadata and the live brokers: its
    /// partition count and replication factor, defaults applied.
    fn check_new_topic(&self, request: &CreateTopic) -> Result<(u32, i16), BrokerError> {
        let name = request.name.as_str();
        validate_topic_name(name).map_err(|e| BrokerError::new(ErrorCode::InvalidTopicException, e))?;
        if self.metadata().topics.contains_key(name) {
            return Err(BrokerError::new(
                ErrorCode::TopicAlreadyExists,
                format!("topic {name} already exists"),
            ));
        }
        let partitions = request.partitions.unwrap_or(self.config.default_partitions);
        if partitions == 0 || partitions > PARTITIONS_PER_TOPIC_MAX {
            let msg = format!("partitions must be in 1..={PARTITIONS_PER_TOPIC_MAX}, got {partitions}");
            return Err(BrokerError::new(ErrorCode::InvalidPartitions, msg));
        }
        self.check_partitions_max(partitions)?;
        let live = self.brokers().len();
        let default_rf = self.config.default_replication_factor.unwrap_or(3).min(live as i16).max(1);
        let rf = request.replication_factor.unwrap_or(default_rf);
        if rf < 1 || rf as usize > live {
            let msg = format!("replication factor {rf} needs {rf} live brokers, {live} available");
            return Err(BrokerError::new(ErrorCode::InvalidReplicationFactor, msg));
        }
        self.check_topic_configs(&request.configs)?;
        Ok((partitions, rf))
    }

    /// On a broker that keeps its own metadata: `topic` becomes topic
    /// `name`'s state, persisted, and the logs follow (opened, given their
    /// configs). The caller holds `metadata_changes`.
    pub(super) async fn put_topic(&self, name: &str, topic: TopicState) -> Result<(), BrokerError> {
        self.persist(vec![MetadataChange::PutTopic { name: name.to_string(), topic }]).await?;
        self.sync_partitions_with_metadata(Some(name))
            .await
            .map_err(|e| BrokerError::new(ErrorCode::KafkaStorageError, e.to_string()))
    }

    /// Validates a topic's whole set of config overrides: each key known,
    /// broker-only values checked, and the log config they make. The one
    /// check for CreateTopics, AlterConfigs and IncrementalAlterConfigs.
    pub(super) fn check_topic_configs(&self, configs: &BTreeMap<String, String>) -> Result<(), BrokerError> {
        for (key, value) in configs {
            if !TOPIC_CONFIG_KEYS.contains(&key.as_str()) {
                return Err(BrokerError::new(
                    ErrorCode::InvalidConfig,
                    format!("unknown topic config {key:?}"),
                ));
            }
            check_broker_only(key, value).map_err(|e| BrokerError::new(ErrorCode::InvalidConfig, e))?;
        }
        let limits = self.config.topic_limits;
        let floors = [
            ("segment.bytes", limits.segment_bytes_min as i128),
            ("segment.ms", limits.segment_ms_min as i128),
        ];
        for (key, min) in floors {
            // Unparsable values are refused by `log_config` below.
            let Some(value) = configs.get(key).and_then(|v| v.parse::<i128>().ok()) else { continue };
            if value < min {
                return Err(BrokerError::new(
                    ErrorCode::InvalidConfig,
                    format!("{key} must be at least {min} on this broker, got {value}"),
                ));
            }
        }
        self.log_config(configs).map_err(|e| BrokerError::new(ErrorCode::InvalidConfig, e))?;
        Ok(())
    }

    /// Creates `name` with the defaults if it does not exist and the broker
    /// auto-creates topics. Returns whether the topic exists now.
    pub async fn ensure_topic(&self, name: &str) -> Result<bool, BrokerError> {
        if self.metadata().topics.contains_key(name) {
            return Ok(true);
        }
        if !self.config.auto_create_topics || is_internal_topic(name) {
            return Ok(false);
        }
        let request = CreateTopic {
            name: name.to_string(),
            partitions: None,
            replication_factor: None,
            configs: BTreeMap::new(),
        };
        match self.create_topic(request, false).await {
            Ok(_) => Ok(true),
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic and its logs. The metadata change is persisted first,
    /// so a crash part-way leaves logs that the next start removes.
    pub async fn delete_topic(&self, name: &str) -> Result<(), BrokerError> {
        if is_internal_topic(name) {
            // Deleting it would lose every group's committed offsets.
            return Err(BrokerError::new(ErrorCode::InvalidRequest, format!("{name} is internal")));
        }
        if self.config.quorum {
            if !self.metadata().topics.contains_key(name) {
                return Err(BrokerError::new(ErrorCode::UnknownTopicOrPartition, format!("no topic {name}")));
            }
            // Its logs go when the image without it is followed.
            self.link()?.delete_topic(name.to_string()).await?;
            tracing::info!(topic = name, "deleted topic");
            return Ok(());
        }
        let _one = self.metadata_changes.lock().await;
        if !self.metadata().topics.contains_key(name) {
            return Err(BrokerError::new(ErrorCode::UnknownTopicOrPartition, format!("no topic {name}")));
        }
        self.persist(vec![MetadataChange::DeleteTopic { name: name.to_string() }]).await?;
        let mut doomed: Vec<TopicPartition> =
            self.partitions().keys().filter(|tp| tp.topic == name).cloned().collect();
        doomed.extend(self.logs.offline_logs().into_keys().filter(|tp| tp.topic == name));
        for tp in doomed {
            self.partitions().remove(&tp);
            self.logs.delete(&tp).await?;
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Every config of a topic with its effective value.
    pub fn describe_topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>, BrokerError> {
        let overrides = self.metadata().topics.get(name).map(|t| t.configs.clone()).ok_or_else(|| {
            BrokerError::new(ErrorCode::UnknownTopicOrPartition, format!("no topic {name}"))
        })?;
        let config = self.log_config(&overrides).unwrap_or(self.config.topic_defaults);
        Ok(TOPIC_CONFIG_KEYS
            .iter()
            .map(|key| match overrides.get(*key) {
                Some(v) => ConfigEntry { name: key.to_string(), value: v.clone(), is_default: false },
                None => ConfigEntry {
                    name: key.to_string(),
                    value: topic_config_value(&config, key),
                    is_default: true,
                },
            })
            .collect())
    }

    /// A fresh producer id for an idempotent producer, epoch 0.
    pub async fn init_producer_id(&self) -> Result<(i64, i16), BrokerError> {
        if self.config.quorum {
            return self.init_producer_id_in_cluster().await;
        }
        let _one = self.metadata_changes.lock().await;
        let next = *self.next_producer_id.lock().unwrap_or_else(|e| e.into_inner());
        if next >= self.metadata().next_producer_id {
            // Reserve a block on disk before handing out its first id, so a
            // restart never reuses an id.
            self.persist(vec![MetadataChange::ProducerIds { next: next + PRODUCER_ID_BLOCK }]).await?;
        }
        *self.next_producer_id.lock().unwrap_or_else(|e| e.into_inner()) = next + 1;
        Ok((next, 0))
    }

    /// Makes `changes` durable, then applies them to the metadata served.
    pub(super) async fn persist(&self, changes: Vec<MetadataChange>) -> Result<(), BrokerError> {
        let mut journal = self.journal.lock().await;
        journal
            .commit(self.disk.as_ref(), &changes, || self.metadata().clone())
            .await
            .map_err(|e| BrokerError::new(ErrorCode::KafkaStorageError, format!("writing metadata: {e}")))?;
        let mut m = self.metadata();
        let mut ids = self.topic_ids();
        for change in changes {
            let touched = match &change {
                MetadataChange::PutTopic { name, .. } | MetadataChange::DeleteTopic { name } => {
                    Some(name.clone())
                }
                MetadataChange::ProducerIds { .. }
                | MetadataChange::Followed { .. }
                | MetadataChange::Security(_) => None,
            };
            if let Some(old) = touched.as_ref().and_then(|name| m.topics.get(name)) {
                ids.remove(&old.topic_id_bytes());
            }
            change.apply(&mut m);
            if let Some((name, topic)) = touched.as_ref().and_then(|name| m.topics.get_key_value(name)) {
                ids.insert(topic.topic_id_bytes(), name.clone());
            }
        }
        Ok(())
    }
}
