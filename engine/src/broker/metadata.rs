//! Cluster metadata as this broker knows it: topics, their partitions'
//! replica assignments, leaders, epochs and ISR, topic configs, and the
//! producer id allocator.
//!
//! Today a single node owns it and persists it in `cluster-metadata.json` in
//! the data directory (atomic replace). The controller quorum (Raft) will
//! become its source of truth; the broker reads it through the same types,
//! so nothing above this module assumes one node.

use crate::io::{Disk, DiskFile, OpenMode};
use crate::log::checkpoint::write_atomic;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

pub const METADATA_FILE: &str = "cluster-metadata.json";
const FORMAT_VERSION: u32 = 1;
/// Largest metadata file read back.
const METADATA_BYTES_MAX: u64 = 256 * 1024 * 1024;

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
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte =
                self.topic_id.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
        }
        out
    }
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
}

impl ClusterMetadata {
    pub fn new(cluster_id: String) -> ClusterMetadata {
        ClusterMetadata {
            format_version: FORMAT_VERSION,
            cluster_id,
            next_producer_id: 0,
            topics: BTreeMap::new(),
            applied: 0,
        }
    }

    /// Reads the metadata file; `None` if there is none yet.
    pub async fn load<D: Disk>(disk: &D, dir: &Path) -> io::Result<Option<ClusterMetadata>> {
        let path = dir.join(METADATA_FILE);
        let file = match disk.open(&path, OpenMode::Existing).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.len().await?;
        if len > METADATA_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is {len} bytes", path.display()),
            ));
        }
        let bytes = file.read_at(0, len as usize).await?;
        let metadata: ClusterMetadata = serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not valid metadata: {e}", path.display()),
            )
        })?;
        if metadata.format_version != FORMAT_VERSION {
            let v = metadata.format_version;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unsupported metadata format {v}"),
            ));
        }
        Ok(Some(metadata))
    }

    pub async fn store<D: Disk>(&self, disk: &D, dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomic(disk, dir, METADATA_FILE, Bytes::from(json)).await
    }
}
