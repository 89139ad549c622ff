//! Log compaction (`cleanup.policy=compact`), as Kafka's log cleaner does
//! it: the latest record of each key stays, older ones go, and tombstones
//! (null values) go too once `delete.retention.ms` has passed since they
//! were first cleaned.
//!
//! A pass maps the dirty part of the log (the segments not yet cleaned)
//! to each key's latest offset, within a memory budget (a pass cleans what
//! fits; the next one goes on), then writes every cleanable segment again
//! in groups of at most `segment.bytes`, keeping a record only if no later
//! record of its key is mapped. Each group's copy replaces its segments
//! atomically (`swap`).
//!
//! Invariants (checked by the model test in engine/tests/log_compaction.rs):
//! - offsets never change, and a cleaned segment covers exactly the
//!   offsets its originals covered: a run of batches that lost all their
//!   records becomes one empty batch over the same offsets, so the log stays
//!   contiguous and recovery's checks hold unchanged;
//! - for each key, the record at its highest offset is never removed
//!   (unless it is a tombstone past its retention), and nothing at or after
//!   the end of the map is removed;
//! - the active segment, the newest sealed segments producer state is
//!   rebuilt from (`keep_newest_sealed`), everything not below `bound` (the
//!   high watermark, which truncation never goes below) and segments
//!   younger than `min.compaction.lag.ms` are never cleaned;
//! - a crash at any point leaves the old segments or the cleaned one,
//!   never both, never neither (`swap`).
//!
//! Batches that lose some records are rebuilt from those left, with their
//! header's offset range, producer fields, max timestamp and codec; batches
//! that keep all of theirs are copied as they were. Which part of a log is clean is
//! kept in memory only: after a restart the first pass cleans it all again.

pub mod rewrite;
pub mod swap;

use super::error::LogError;
use super::index::SegmentIndex;
use super::open_files::{FileHandle, SegmentFile};
use super::partition_log::{Log, LogState};
use super::segment::{self, Segment};
use crate::io::{Disk, DiskFile, OpenMode};
use bytes::Bytes;
use rewrite::{BatchReader, GroupWriter, Keep};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::pin::Pin;
use std::sync::Arc;

/// Memory a mapped key costs beyond its bytes (the table's entry and the
/// key's allocation), for the budget.
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Each key's latest offset in the mapped part of the log. Hashed with
/// fixed keys (`DefaultHasher`), so a seed replays the same iteration.
pub struct KeyMap {
    latest: HashMap<Bytes, u64, BuildHasherDefault<DefaultHasher>>,
    bytes: usize,
}

impl KeyMap {
    fn new() -> KeyMap {
        KeyMap { latest: HashMap::default(), bytes: 0 }
    }

    pub fn latest(&self, key: &[u8]) -> Option<u64> {
        self.latest.get(key).copied()
    }

    fn insert(&mut self, key: Bytes, offset: u64) {
        let len = key.len();
        if self.latest.insert(key, offset).is_none() {
            self.bytes += len + ENTRY_OVERHEAD_BYTES;
        }
    }
}

/// Paces the cleaner's I/O: told of every read and write it makes, it
/// returns once the cleaner may go on. The owner supplies it (a rate limit
/// on a clock of its own), so the engine takes no time from the world.
pub trait Pacer: Send + Sync {
    fn pace(&self, bytes: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// No pacing: the cleaner goes as fast as the disk.
pub struct Unpaced;

impl Pacer for Unpaced {
    fn pace(&self, _bytes: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }
}

/// The broker's settings for every log's cleaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanerSettings {
    /// Memory for one pass's key map (`--log-cleaner-dedupe-buffer-bytes`).
    pub dedupe_buffer_bytes: usize,
    /// Newest sealed segments left alone: the owner rebuilds producer
    /// state from them (with the active segment) at open.
    pub keep_newest_sealed: usize,
}

impl Default for CleanerSettings {
    fn default() -> CleanerSettings {
        CleanerSettings { dedupe_buffer_bytes: 128 << 20, keep_newest_sealed: 1 }
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanOutcome {
    pub segments_replaced: usize,
    pub segments_written: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    /// The log is clean below this offset now.
    pub clean_below: u64,
}

/// A cleanable segment as the pass sees it.
struct Planned<F> {
    base: u64,
    size: u64,
    next: u64,
    file: FileHandle<F>,
}

struct Plan<F> {
    segments: Vec<Planned<F>>,
    /// Index in `segments` of the one holding `first_dirty`.
    dirty: usize,
    first_dirty: u64,
}

/// The segments a pass may clean, if cleaning is due.
fn plan<F: DiskFile>(
    st: &LogState<F>,
    bound: u64,
    now_ms: i64,
    config: &super::config::LogConfig,
    settings: &CleanerSettings,
    first_dirty: u64,
) -> Option<Plan<F>> {
    let c = &config.compaction;
    let sealed = st.segments.len().saturating_sub(1 + settings.keep_newest_sealed);
    let cleanable: Vec<&Segment<F>> = st.segments[..sealed]
        .iter()
        .take_while(|s| s.next_offset <= bound)
        .take_while(|s| {
            let known = s.index.max_timestamp != i64::MIN;
            known && now_ms.saturating_sub(s.index.max_timestamp) >= c.min_compaction_lag_ms
        })
        .collect();
    let first_dirty = first_dirty.max(cleanable.first()?.base_offset);
    let dirty = cleanable.iter().position(|s| s.next_offset > first_dirty)?;
    let total: u64 = cleanable.iter().map(|s| s.size_bytes).sum();
    let dirty_bytes: u64 = cleanable[dirty..].iter().map(|s| s.size_bytes).sum();
    let ratio_due = u128::from(dirty_bytes) * 1_000_000
        >= u128::from(total) * u128::from(c.min_cleanable_dirty_ratio_ppm);
    let lag_due = now_ms.saturating_sub(cleanable[dirty].index.max_timestamp) >= c.max_compaction_lag_ms;
    if !(ratio_due || lag_due) || dirty_bytes == 0 {
        return None;
    }
    let segments = cleanable
        .iter()
        .map(|s| Planned {
            base: s.base_offset,
            size: s.size_bytes,
            next: s.next_offset,
            file: s.file.handle(),
        })
        .collect();
    Some(Plan { segments, dirty, first_dirty })
}

impl<D: Disk> Log<D> {
    /// Cleans the log if it compacts and cleaning is due (see the module
    /// comment); `bound`: nothing at or above it is cleaned (the high
    /// watermark). `pacer` is told of every read and write. `None` when
    /// there was nothing to do.
    pub async fn clean(
        &self,
        bound: u64,
        settings: &CleanerSettings,
        pacer: &dyn Pacer,
    ) -> Result<Option<CleanOutcome>, LogError> {
        let config = self.config();
        if !config.cleanup_policy.compacts() {
            return Ok(None);
        }
        let mut first_dirty = self.cleaner.lock().await;
        self.check_maintainable()?;
        let now_ms = self.clock.now_ms();
        let plan = plan(&self.state(), bound, now_ms, &config, settings, *first_dirty);
        let Some(mut plan) = plan else { return Ok(None) };
        let (map, map_end) = self.map_keys(&mut plan, settings.dedupe_buffer_bytes, pacer).await?;
        if map_end <= plan.first_dirty {
            return Ok(None);
        }
        let keep = Keep {
            map: &map,
            tombstones_cleaned_below: plan.first_dirty,
            tombstone_horizon_ms: now_ms.saturating_sub(config.compaction.delete_retention_ms),
        };
        let last = plan.segments.iter().position(|s| s.next >= map_end).unwrap_or(plan.segments.len() - 1);
        let mut outcome = CleanOutcome::default();
        let mut rest = &mut plan.segments[..=last];
        while !rest.is_empty() {
            let mut len = 1;
            let mut bytes = rest[0].size;
            while len < rest.len()
                && bytes + rest[len].size <= config.segment_bytes
                && rest[len].next - rest[0].base <= u64::from(u32::MAX)
            {
                bytes += rest[len].size;
                len += 1;
            }
            let (group, later) = std::mem::take(&mut rest).split_at_mut(len);
            rest = later;
            match self.clean_group(group, &keep, &config, pacer).await? {
                Some(done) => {
                    outcome.segments_replaced += group.len();
                    outcome.segments_written += 1;
                    outcome.bytes_before += bytes;
                    outcome.bytes_after += done.0;
                    outcome.records_removed += done.1;
                }
                // The log changed under the pass (retention, truncation):
                // what is left is cleaned by the next one.
                None => return Ok(Some(outcome)),
            }
        }
        *first_dirty = map_end;
        outcome.clean_below = map_end;
        tracing::info!(dir = %self.dir.display(), ?outcome, "cleaned log");
        Ok(Some(outcome))
    }

    /// Maps each key of the dirty segments to its latest offset, until the
    /// map outgrows `budget`. Returns the map and the offset it ends at.
    async fn map_keys(
        &self,
        plan: &mut Plan<D::File>,
        budget: usize,
        pacer: &dyn Pacer,
    ) -> Result<(KeyMap, u64), LogError> {
        let mut map = KeyMap::new();
        let mut end = plan.first_dirty;
        for seg in &mut plan.segments[plan.dirty..] {
            let file = seg.file.file(self.disk.as_ref()).await?;
            let mut reader = BatchReader::new(file.as_ref(), seg.size, pacer);
            while let Some((_, header, batch)) = reader.next().await? {
                if header.next_offset() <= plan.first_dirty {
                    continue;
                }
                if map.bytes >= budget && end > plan.first_dirty {
                    return Ok((map, end));
                }
                if !header.is_control() && header.record_count > 0 {
                    let (_, records) = rewrite::records_of(&batch)?;
                    for record in records {
                        if let Some(key) = record.key.clone() {
                            map.insert(key, record.offset(&header) as u64);
                        }
                    }
                }
                end = header.next_offset();
            }
        }
        Ok((map, end))
    }

    /// Writes `group`'s cleaned copy and swaps it in. Returns its size and
    /// the records removed, or `None` if the segments changed meanwhile
    /// (the copy is then dropped).
    async fn clean_group(
        &self,
        group: &mut [Planned<D::File>],
        keep: &Keep<'_>,
        config: &super::config::LogConfig,
        pacer: &dyn Pacer,
    ) -> Result<Option<(u64, u64)>, LogError> {
        let base = group[0].base;
        let cleaned_path = swap::cleaned_path(&self.dir, base);
        let file = self.disk.open(&cleaned_path, OpenMode::Create).await?;
        file.set_len(0).await?;
        let index = SegmentIndex::new(base, config.index_interval_bytes, config.segment_index_bytes);
        let mut writer = GroupWriter::new(&file, index, base, pacer);
        for seg in group.iter_mut() {
            let source = seg.file.file(self.disk.as_ref()).await?;
            let mut reader = BatchReader::new(source.as_ref(), seg.size, pacer);
            while let Some((_, header, batch)) = reader.next().await? {
                writer.add(&header, &batch, keep).await?;
            }
        }
        writer.finish().await?;
        let next = group[group.len() - 1].next;
        if writer.next_offset != next {
            let error = format!(
                "cleaning segments from {base}: they end at {} where {next} was expected",
                writer.next_offset
            );
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, error).into());
        }
        file.sync_data().await?;
        let (size, removed, index) = (writer.size, writer.records_removed, writer.index);

        let _writer = self.writer.lock().await;
        self.check_maintainable()?;
        let bases: Vec<u64> = group.iter().map(|s| s.base).collect();
        let unchanged = {
            let st = self.state();
            let at = st.segments.iter().position(|s| s.base_offset == base);
            at.is_some_and(|at| {
                at + group.len() < st.segments.len()
                    && group.iter().zip(&st.segments[at..]).all(|(g, s)| {
                        (g.base, g.size, g.next) == (s.base_offset, s.size_bytes, s.next_offset)
                    })
            })
        };
        if !unchanged {
            drop(file);
            self.disk.remove(&cleaned_path).await?;
            return Ok(None);
        }
        let guard = self.poison_guard();
        let result = async {
            swap::commit(self.disk.as_ref(), &self.dir, &bases).await?;
            // Before the swap is seen: the cache's chunks are keyed by
            // segment and position, which the cleaned copy reuses.
            for &b in &bases {
                self.cache.remove_segment(b);
            }
            swap::complete(self.disk.as_ref(), &self.dir, &bases).await?;
            let path = Segment::<D::File>::log_path(&self.dir, base);
            let mut file = SegmentFile::active(Arc::new(file), path, &self.open_files);
            file.seal();
            let cleaned = Segment {
                base_offset: base,
                file,
                size_bytes: size,
                next_offset: next,
                index,
                first_batch_ms: None,
                tail: Vec::new(),
            };
            let (offsets, times) = segment::encode_indexes(&cleaned);
            segment::write_index_files(self.disk.as_ref(), &self.dir, base, offsets, times).await?;
            let mut st = self.state();
            let at = st
                .segments
                .iter()
                .position(|s| s.base_offset == base)
                .expect("checked under the writer role");
            st.segments.splice(at..at + bases.len(), std::iter::once(cleaned));
            st.check_invariants();
            drop(st);
            // Again once readers see the cleaned copy: a read ahead that
            // took an old segment before the swap is not cached now.
            for &b in &bases {
                self.cache.remove_segment(b);
            }
            Ok::<_, LogError>(())
        }
        .await;
        guard.disarm();
        self.poison_on_err(result)?;
        Ok(Some((size, removed)))
    }
}
