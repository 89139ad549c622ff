//! Offset checkpoint files in Kafka's text format, written atomically:
//!
//! ```text
//! 0                  version
//! 2                  number of entries
//! orders 0 1200      topic, partition, offset
//! orders 1 977
//! ```
//!
//! A write goes to `<name>.tmp`, is fsynced, renamed over the old file and
//! the directory is fsynced: a crash leaves either the old or the new file.

use super::manager::TopicPartition;
use crate::io::{Disk, DiskFile, OpenMode};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_FILE: &str = "log-start-offset-checkpoint";

/// Largest checkpoint file read; a bigger one is treated as corrupt.
const CHECKPOINT_BYTES_MAX: u64 = 64 * 1024 * 1024;

pub type Offsets = BTreeMap<TopicPartition, u64>;

pub fn encode(offsets: &Offsets) -> String {
    let mut out = format!("0\n{}\n", offsets.len());
    for (tp, offset) in offsets {
        out.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, offset));
    }
    out
}

pub fn decode(text: &str) -> Result<Offsets, String> {
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Err("unsupported checkpoint version".into());
    }
    let count: usize = lines.next().and_then(|l| l.parse().ok()).ok_or("missing entry count")?;
    let mut offsets = Offsets::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let entry = (
            parts.next(),
            parts.next().and_then(|p| p.parse().ok()),
            parts.next().and_then(|o| o.parse().ok()),
        );
        match (entry, parts.next()) {
            ((Some(topic), Some(partition), Some(offset)), None) => {
                offsets.insert(TopicPartition::new(topic, partition), offset);
            }
            _ => return Err(format!("malformed checkpoint line {line:?}")),
        }
    }
    if offsets.len() != count || lines.next().is_some() {
        return Err(format!("checkpoint holds a different number of entries than its header ({count})"));
    }
    Ok(offsets)
}

/// Reads a checkpoint; a missing file is empty, an unreadable one is an error
/// for the caller to decide on.
pub async fn read<D: Disk>(disk: &D, path: &Path) -> io::Result<Result<Offsets, String>> {
    let file = match disk.open(path, OpenMode::Existing).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(Offsets::new())),
        Err(e) => return Err(e),
    };
    let len = file.len().await?;
    if len > CHECKPOINT_BYTES_MAX {
        return Ok(Err(format!("checkpoint of {len} bytes is larger than {CHECKPOINT_BYTES_MAX}")));
    }
    let bytes = file.read_at(0, len as usize).await?;
    Ok(std::str::from_utf8(&bytes).map_err(|e| e.to_string()).and_then(decode))
}

pub async fn write<D: Disk>(disk: &D, dir: &Path, name: &str, offsets: &Offsets) -> io::Result<()> {
    write_atomic(disk, dir, name, Bytes::from(encode(offsets))).await
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or
/// the new contents: write a temporary file, fsync, rename, fsync the dir.
pub async fn write_atomic<D: Disk>(disk: &D, dir: &Path, name: &str, bytes: Bytes) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let file = disk.open(&tmp, OpenMode::Create).await?;
    file.set_len(0).await?;
    file.write_at(0, bytes).await?;
    file.sync_data().await?;
    disk.rename(&tmp, &dir.join(name)).await?;
    disk.sync_dir(dir).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encoding and decoding give back the same offsets, and damage is refused.
    #[test]
    fn round_trip_and_damage() {
        let mut offsets = Offsets::new();
        offsets.insert(TopicPartition::new("a-b", 3), 17);
        offsets.insert(TopicPartition::new("orders", 0), u64::MAX);
        let text = encode(&offsets);
        assert_eq!(decode(&text), Ok(offsets));
        assert!(decode("0\n2\norders 0 1\n").is_err());
        assert!(decode("1\n0\n").is_err());
        assert!(decode("0\n1\norders x 1\n").is_err());
        assert!(decode("0\n1\norders 0 1 extra\n").is_err());
    }
}
