//! Which partitions a beyond-budget fault touched.
//!
//! A single broker keeps one copy of every record, so a fault that damages
//! bytes already fsynced (a bit flip in synced data, a misdirected write) can
//! destroy acknowledged data that no correct broker could save. Such faults
//! are outside the fault budget: for the partitions they touch, the checker
//! accepts losing records, but only loudly (the broker refuses to serve them,
//! or recovery reports the damage), never silently.

use std::collections::BTreeSet;
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Taints {
    /// A file outside any partition (metadata, checkpoints) was hit: every
    /// partition may be affected.
    pub all: bool,
    pub partitions: BTreeSet<(String, i32)>,
    /// Events that may drop unsynced data without a restart or with one:
    /// crashes and failed fsyncs. Records learned before the latest such
    /// event may legitimately vanish unless they had to be durable.
    pub losses: u64,
    /// Media faults injected since the checker last looked, for the history.
    pub events: Vec<String>,
}

impl Taints {
    /// Records a fault at `path`, a file under `data_dir`.
    pub fn add(&mut self, data_dir: &Path, path: &Path) {
        let partition = path.strip_prefix(data_dir).ok().and_then(|rel| {
            let mut parts = rel.components();
            let dir = parts.next()?.as_os_str().to_str()?;
            parts.next()?; // a file inside the partition's folder
            let (topic, p) = dir.rsplit_once('-')?;
            Some((topic.to_string(), p.parse::<i32>().ok()?))
        });
        match partition {
            Some(tp) => {
                self.partitions.insert(tp);
            }
            None => self.all = true,
        }
    }

    pub fn contains(&self, topic: &str, partition: i32) -> bool {
        self.all || self.partitions.contains(&(topic.to_string(), partition))
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.partitions.is_empty()
    }
}

/// Whether media faults may target `path`: the files of a partition whose
/// damage the engine can detect (segments, with CRC-32C per batch) or
/// repair (indexes, a cache rebuilt by scan). Checkpoint and metadata files
/// carry no checksum, so a flip there is silent by design: not simulated.
pub fn media_fault_target(data_dir: &Path, path: &Path) -> bool {
    let in_partition = path.parent().and_then(|dir| dir.parent()).is_some_and(|parent| parent == data_dir);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    in_partition && [".log", ".index", ".timeindex"].iter().any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files in a partition's folder taint that partition; any other file
    /// taints them all.
    #[test]
    fn attribution() {
        let mut t = Taints::default();
        t.add(Path::new("/data"), Path::new("/data/a-b-3/00000000000000000000.log"));
        assert!(t.contains("a-b", 3));
        assert!(!t.contains("a-b", 2));
        assert!(!t.all);
        t.add(Path::new("/data"), Path::new("/data/cluster-metadata.json"));
        assert!(t.all && t.contains("x", 0));
    }

    /// Only segment and index files of partitions take media faults.
    #[test]
    fn targets() {
        let d = Path::new("/data");
        assert!(media_fault_target(d, Path::new("/data/t-0/00000000000000000000.log")));
        assert!(media_fault_target(d, Path::new("/data/t-0/00000000000000000000.index")));
        assert!(!media_fault_target(d, Path::new("/data/t-0/leader-epoch-checkpoint")));
        assert!(!media_fault_target(d, Path::new("/data/cluster-metadata.json")));
        assert!(!media_fault_target(d, Path::new("/data/recovery-point-offset-checkpoint")));
    }
}
