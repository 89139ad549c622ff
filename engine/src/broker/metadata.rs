//! Cluster metadata as this broker knows it: topics, their partitions'
//! replica assignments, leaders, epochs and ISR, topic configs, and the
//! producer id allocator.
//!
//! A single node owns it; a cluster member keeps the last image it followed
//! from the controller quorum. Either way it is persisted in the data
//! directory as a snapshot and a journal of changes (`metadata_journal`).

use crate::io::Disk;
use crate::security::state::SecurityState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

pub const METADATA_FILE: &str = "cluster-metadata.json";
const FORMAT_VERSION: u32 = 1;
/// Largest metadata file read back.
pub(super) const METADATA_BYTES_MAX: u64 = 256 * 1024 * 1024;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionAssignment {
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Bumped by every change of leader or ISR (the quorum's); 0 on a
    /// single node, whose partitions never change.
    #[serde(default)]
    pub partition_epoch: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicState {
    /// 32 lowercase hex digits (Kafka's topic UUID).
    pub topic_id: String,
    pub partitions: Vec<PartitionAssignment>,
    /// Topic-level overrides by Kafka config name (`retention.ms`, ...).
    pub configs: BTreeMap<String, String>,
}

impl TopicState {
    pub fn topic_id_bytes(&self) -> [u8; 16] {
        topic_id_bytes(&self.topic_id)
    }
}

/// A topic id's 16 bytes from its 32 hex digits.
pub fn topic_id_bytes(id: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = id.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
    }
    out
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub format_version: u32,
    pub cluster_id: String,
    /// Producer ids below this are reserved (handed out or about to be): a
    /// restarted broker continues from here.
    pub next_producer_id: i64,
    pub topics: BTreeMap<String, TopicState>,
    /// A cluster member's: the quorum's applied index of the image this
    /// follows. Kept with it so that a restart never follows an older image
    /// (a lagging voter's), which would delete logs of topics that exist
    /// (C2 across restarts). 0 on a single node.
    #[serde(default)]
    pub applied: u64,
    /// Credentials, ACLs and client quotas (kept at the top level of the
    /// file, as before they were one type).
    #[serde(flatten)]
    pub security: SecurityState,
}

impl ClusterMetadata {
    pub fn new(cluster_id: String) -> ClusterMetadata {
        ClusterMetadata {
            format_version: FORMAT_VERSION,
            cluster_id,
            next_producer_id: 0,
            topics: BTreeMap::new(),
            applied: 0,
            security: SecurityState::default(),
        }
    }

    /// Reads the persisted metadata (the snapshot and the journal of
    /// changes after it); `None` if there is none yet.
    pub async fn load<D: Disk>(disk: &D, dir: &Path) -> io::Result<Option<ClusterMetadata>> {
        Ok(super::metadata_journal::load(disk, dir).await?.map(|l| l.metadata))
    }

    pub(super) fn check_format(&self) -> io::Result<()> {
        if self.format_version != FORMAT_VERSION {
            let v = self.format_version;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unsupported metadata format {v}"),
            ));
        }
        Ok(())
    }
}
