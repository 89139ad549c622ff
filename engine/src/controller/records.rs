//! The metadata log's records: what the controller quorum agrees on.
//!
//! One Raft entry holds a batch of records, applied together or not at all
//! (fencing a broker and moving its partitions' leadership is one batch).
//! They are JSON: the log is small (metadata, not data), an operator can
//! read it with standard tools, and serde's derive keeps the format and the
//! types in one place. Unknown fields are ignored so a newer writer's
//! additions do not stop an older reader; a record of an unknown kind
//! fails the decode, loudly.

use crate::security::state::SecurityChange;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A listener a broker advertises.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// One partition's placement and leadership.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionRecord {
    pub replicas: Vec<i32>,
    /// -1 when no replica in the ISR is alive (unclean election is off).
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    /// Bumped at every change of this record: a broker's AlterPartition
    /// names the epoch it saw, so a stale one is refused.
    pub partition_epoch: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// The first record a new quorum's first leader writes.
    ClusterId {
        cluster_id: String,
    },
    /// A broker (re)started: `incarnation` is new at every start, so
    /// messages from an earlier life of the same node id can be told apart.
    RegisterBroker {
        node_id: i32,
        incarnation: u64,
        endpoints: Vec<Endpoint>,
    },
    /// The broker missed its session (or shut down): it leads nothing and
    /// leaves every ISR until it heartbeats again.
    FenceBroker {
        node_id: i32,
        incarnation: u64,
    },
    UnfenceBroker {
        node_id: i32,
        incarnation: u64,
    },
    CreateTopic {
        name: String,
        topic_id: String,
        partitions: Vec<PartitionRecord>,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
        topic_id: String,
    },
    /// Producer ids `first..first + count` are `node_id`'s to hand out.
    /// Taken only if `first` is where the image's next block starts, so no
    /// id is handed out twice.
    ProducerIds {
        node_id: i32,
        first: i64,
        count: i64,
    },
    /// A partition's new leadership or ISR (the whole record, not a diff).
    PartitionChange {
        topic_id: String,
        partition: i32,
        state: PartitionRecord,
    },
    /// Partitions added to a topic (Kafka's CreatePartitions), numbered
    /// from `first`. Taken only if the topic has exactly `first`
    /// partitions: a growth planned from an older image (two requests
    /// racing) is overtaken, never applied on top of the other.
    CreatePartitions {
        topic_id: String,
        first: i32,
        partitions: Vec<PartitionRecord>,
    },
    /// A topic's whole set of config overrides (AlterConfigs and
    /// IncrementalAlterConfigs). Taken only while the topic's overrides
    /// are still `expected`, those the change was computed from, so that
    /// two incremental changes racing cannot lose one.
    TopicConfigs {
        topic_id: String,
        expected: BTreeMap<String, String>,
        configs: BTreeMap<String, String>,
    },
    /// A credential, ACL or client quota change (Kafka's
    /// UserScramCredentialRecord, AccessControlEntryRecord,
    /// ClientQuotaRecord and their removals), tagged by its own `change`.
    Security(SecurityChange),
}

/// An ISR change a partition leader asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrChange {
    pub topic_id: String,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

pub fn encode_batch(records: &[MetadataRecord]) -> Vec<u8> {
    serde_json::to_vec(records).expect("metadata records serialize")
}

pub fn decode_batch(bytes: &[u8]) -> Result<Vec<MetadataRecord>, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("undecodable metadata batch: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_round_trips_and_garbage_is_an_error() {
        let batch = vec![
            MetadataRecord::ClusterId { cluster_id: "c1".into() },
            MetadataRecord::RegisterBroker {
                node_id: 2,
                incarnation: 7,
                endpoints: vec![Endpoint { name: "PLAINTEXT".into(), host: "127.0.0.1".into(), port: 9092 }],
            },
            MetadataRecord::PartitionChange {
                topic_id: "ab".into(),
                partition: 0,
                state: PartitionRecord {
                    replicas: vec![1, 2],
                    leader: 2,
                    leader_epoch: 3,
                    isr: vec![2],
                    partition_epoch: 4,
                },
            },
            MetadataRecord::CreatePartitions { topic_id: "ab".into(), first: 3, partitions: Vec::new() },
            MetadataRecord::TopicConfigs {
                topic_id: "ab".into(),
                expected: BTreeMap::new(),
                configs: [("retention.ms".to_string(), "1000".to_string())].into(),
            },
            MetadataRecord::Security(SecurityChange::PutQuota {
                entity: "alice".into(),
                key: "producer_byte_rate".into(),
                value: Some(1024),
            }),
        ];
        let bytes = encode_batch(&batch);
        assert_eq!(decode_batch(&bytes).unwrap(), batch);
        assert!(decode_batch(b"[{\"type\":\"launch_missiles\"}]").is_err());
        assert!(decode_batch(&bytes[..bytes.len() - 1]).is_err());
    }
}
