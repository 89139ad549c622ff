//! `segment_bytes`: arbitrary bytes as one or two segments' `.log`, `.index`
//! and `.timeindex` files on a `MemDisk`, then `Log::open` with an arbitrary
//! recovery point. Recovery must not panic or over-allocate, must stop at the
//! first bad batch exactly where the reference scan does, every read must
//! return only valid batches taken from the file, and a second open must
//! change nothing.
//!
//! Input layout (see `Input::parse`; missing bytes read as zero/empty):
//!
//! ```text
//! 0      flags: bit0 write A's index files, bit1 second segment B,
//!               bit2 write B's index files, bits 3-4 index interval choice
//! 1      base offset of segment A
//! 2      recovery point (255: u64::MAX)
//! 3      base offset of B minus base of A (B = A + this)
//! then length-prefixed (u16 little-endian) files:
//!        A.log, A.index, A.timeindex, B.log, B.index, B.timeindex
//! ```

use crate::exec::block_on;
use crate::reference::{self, RefBatch};
use crate::watch::WatchDisk;
use bytes::Bytes;
use ringtail_engine::clock::ManualClock;
use ringtail_engine::io::{Disk, DiskFile, MemDisk, OpenMode};
use ringtail_engine::log::batch::validate_batch;
use ringtail_engine::log::recovery::LogCheckpoint;
use ringtail_engine::log::{Log, LogCache, LogConfig, OpenError, ReadError, RecoveryReport};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DIR: &str = "/seg/t-0";
/// Reads issued per check, at most: crafted batches span huge offset ranges.
const READS_MAX: usize = 512;

#[derive(Clone, Debug, Default)]
pub struct SegmentFiles {
    pub base: u64,
    pub log: Vec<u8>,
    /// `.index` and `.timeindex`, if written.
    pub indexes: Option<(Vec<u8>, Vec<u8>)>,
}

#[derive(Clone, Debug, Default)]
pub struct Input {
    pub index_interval_bytes: u64,
    pub recovery_point: u64,
    pub a: SegmentFiles,
    pub b: Option<SegmentFiles>,
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    fn chunk(&mut self) -> Vec<u8> {
        let len = usize::from(u16::from_le_bytes([self.byte(), self.byte()])).min(self.0.len());
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        head.to_vec()
    }
}

impl Input {
    pub fn parse(data: &[u8]) -> Input {
        let mut c = Cursor(data);
        let flags = c.byte();
        let base_a = u64::from(c.byte());
        let rp = c.byte();
        let delta_b = u64::from(c.byte());
        let recovery_point = if rp == 255 { u64::MAX } else { u64::from(rp) };
        let index_interval_bytes = [1, 64, 4096, 100][usize::from(flags >> 3 & 3)];
        let a_log = c.chunk();
        let a_idx = (c.chunk(), c.chunk());
        let b_log = c.chunk();
        let b_idx = (c.chunk(), c.chunk());
        let a = SegmentFiles { base: base_a, log: a_log, indexes: (flags & 1 != 0).then_some(a_idx) };
        let b = (flags & 2 != 0).then(|| SegmentFiles {
            base: base_a + delta_b,
            log: b_log,
            indexes: (flags & 4 != 0).then_some(b_idx),
        });
        // Two segments need two distinct names.
        let b = b.filter(|b| b.base != a.base);
        Input { index_interval_bytes, recovery_point, a, b }
    }

    /// The inverse of `parse`, for the seed generator.
    pub fn encode(&self) -> Vec<u8> {
        let interval = [1, 64, 4096, 100].iter().position(|&i| i == self.index_interval_bytes).unwrap_or(2);
        let mut flags = (interval as u8) << 3;
        flags |= u8::from(self.a.indexes.is_some());
        if let Some(b) = &self.b {
            flags |= 2 | u8::from(b.indexes.is_some()) << 2;
        }
        let rp = if self.recovery_point >= 255 { 255 } else { self.recovery_point as u8 };
        let delta = self.b.as_ref().map_or(0, |b| (b.base - self.a.base) as u8);
        let mut out = vec![flags, self.a.base as u8, rp, delta];
        let mut chunk = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        let none = (Vec::new(), Vec::new());
        chunk(&self.a.log);
        let (i, t) = self.a.indexes.as_ref().unwrap_or(&none);
        chunk(i);
        chunk(t);
        if let Some(b) = &self.b {
            chunk(&b.log);
            let (i, t) = b.indexes.as_ref().unwrap_or(&none);
            chunk(i);
            chunk(t);
        }
        out
    }
}

pub fn run(data: &[u8]) {
    let input = Input::parse(data);
    if crate::known_bugs::tolerated("recovery-overlap") && may_overlap(&input) {
        return;
    }
    check(&input);
}

/// Could recovery find B starting inside A (by A's data or A's index)?
fn may_overlap(input: &Input) -> bool {
    let Some(b) = &input.b else { return false };
    let a = &input.a;
    let (batches, _, _) = reference::scan_segment(&a.log, a.base);
    if batches.last().is_some_and(|x| x.next_offset > b.base) {
        return true;
    }
    let Some((index, _)) = &a.indexes else { return false };
    index.chunks_exact(8).any(|e| {
        let relative = u64::from(u32::from_be_bytes(e[0..4].try_into().unwrap()));
        let position = u32::from_be_bytes(e[4..8].try_into().unwrap()) as usize;
        let tail = reference::scan_segment(a.log.get(position..).unwrap_or_default(), a.base + relative).0;
        a.base + relative >= b.base || tail.last().is_some_and(|x| x.next_offset > b.base)
    })
}

fn seg_path(base: u64, suffix: &str) -> PathBuf {
    Path::new(DIR).join(format!("{base:020}{suffix}"))
}

async fn write_file(disk: &MemDisk, path: &Path, bytes: &[u8]) {
    let f = disk.open(path, OpenMode::Create).await.expect("create");
    if !bytes.is_empty() {
        f.write_at(0, Bytes::copy_from_slice(bytes)).await.expect("write");
    }
    f.sync_data().await.expect("sync");
}

/// What the reference expects of a segment that recovery scans.
struct Expected {
    /// Reference batches of each kept segment, with the segment's file.
    segments: Vec<(u64, Vec<RefBatch>)>,
    log_end_offset: u64,
}

/// The result of recovery when every segment is scanned (none lies below
/// the recovery point): cut at the first bad batch, later segments deleted;
/// a segment that overlaps the one before, or that a hole separates from it
/// (the one before ends short of its base: batches lost), cut whole.
fn expected(input: &Input) -> Expected {
    let (a_batches, _, a_stop) = reference::scan_segment(&input.a.log, input.a.base);
    let a_next = a_batches.last().map_or(input.a.base, |b| b.next_offset);
    let mut segments = vec![(input.a.base, a_batches)];
    let mut end = a_next;
    // `parse` puts B after A.
    if let Some(b) = &input.b {
        if !a_stop && a_next == b.base {
            let (b_batches, _, _) = reference::scan_segment(&b.log, b.base);
            end = b_batches.last().map_or(b.base, |x| x.next_offset);
            segments.push((b.base, b_batches));
        }
    }
    Expected { segments, log_end_offset: end }
}

/// Is the first (by base offset) segment wholly valid and does it end
/// exactly at the second's base: a segment whose data no index may spoil?
fn first_segment_intact(input: &Input) -> bool {
    let Some(b) = &input.b else { return true };
    let (batches, _, stop) = reference::scan_segment(&input.a.log, input.a.base);
    !stop && batches.last().map_or(input.a.base, |x| x.next_offset) == b.base
}

fn check(input: &Input) {
    let disk = Arc::new(MemDisk::new());
    let watched = Arc::new(WatchDisk(MemDisk::clone(&disk)));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let config = LogConfig { index_interval_bytes: input.index_interval_bytes, ..LogConfig::default() };
    block_on(async {
        disk.create_dir_all(Path::new(DIR)).await.unwrap();
        for seg in std::iter::once(&input.a).chain(&input.b) {
            write_file(&disk, &seg_path(seg.base, ".log"), &seg.log).await;
            if let Some((index, times)) = &seg.indexes {
                write_file(&disk, &seg_path(seg.base, ".index"), index).await;
                write_file(&disk, &seg_path(seg.base, ".timeindex"), times).await;
            }
        }
        disk.sync_dir(Path::new(DIR)).await.unwrap();
    });
    let checkpoint = LogCheckpoint { recovery_point: input.recovery_point, log_start_offset: 0 };
    let open = |cp: LogCheckpoint| {
        block_on(Log::open(
            watched.clone(),
            PathBuf::from(DIR),
            config,
            clock.clone(),
            cp,
            &LogCache::new(1 << 20),
        ))
    };
    let (log, report) = match open(checkpoint) {
        Ok(opened) => opened,
        // The recovery point claims these bytes were fsynced, and they do
        // not parse: refusing to open (rather than cutting) is the contract.
        Err(OpenError::Corrupt { .. }) => return,
        Err(e) => panic!("Log::open failed on a healthy disk: {e}"),
    };
    let open = |cp: LogCheckpoint| open(cp).unwrap_or_else(|e| panic!("a second open failed: {e}"));
    let all_scanned = input.b.as_ref().is_none_or(|b| b.base > input.recovery_point);
    // With the known bug `index-trusted` tolerated, a sealed segment's index
    // files may spoil reads and recovery of intact data.
    let index_trusted = input.a.indexes.is_some() && crate::known_bugs::tolerated("index-trusted");
    let want = expected(input);
    // Bad bytes the recovery point claims were fsynced are damage to
    // acknowledged data: a sealed segment keeps them (reads report them)
    // rather than being cut, so the reference scan's cut does not apply.
    let (a_batches, _, a_stop) = reference::scan_segment(&input.a.log, input.a.base);
    let a_next = a_batches.last().map_or(input.a.base, |b| b.next_offset);
    let durable_damage = input.b.is_some() && a_stop && a_next < input.recovery_point;
    let exact = !durable_damage && (all_scanned || (first_segment_intact(input) && !index_trusted));
    if exact {
        assert_eq!(
            log.log_end_offset(),
            want.log_end_offset,
            "recovered log end offset differs from the reference scan; report: {report:?}"
        );
        assert!(report.corruption_kept.is_empty(), "intact data reported corrupt: {report:?}");
        check_reads_exact(&log, &want, input);
    }
    check_reads_valid(&log, input);

    // A second recovery, as after a restart with the checkpoint the first
    // one leaves (recovery point = flushed = log end), changes nothing.
    let (end, start) = (log.log_end_offset(), log.log_start_offset());
    drop(log);
    let (log2, report2) = open(LogCheckpoint { recovery_point: end, log_start_offset: start });
    assert_eq!(
        (log2.log_end_offset(), log2.log_start_offset()),
        (end, start),
        "a second recovery moved the log; first {report:?}, second {report2:?}"
    );
    // The second open has A below its recovery point (= the log end).
    let exact = exact && !index_trusted;
    assert_clean_second(&report, &report2, exact);
    if exact {
        check_reads_exact(&log2, &want, input);
    }
    check_reads_valid(&log2, input);
}

fn assert_clean_second(first: &RecoveryReport, second: &RecoveryReport, exact: bool) {
    assert!(
        second.cut.is_none() && second.segments_deleted.is_empty(),
        "a second recovery cut or deleted again; first {first:?}, second {second:?}"
    );
    if exact {
        // Intact data stays intact: no index may make it "corrupt".
        assert!(
            second.corruption_kept.is_empty(),
            "a second recovery found corruption in intact data; first {first:?}, second {second:?}"
        );
    }
}

/// Every reference batch of the kept segments reads back exactly.
fn check_reads_exact(log: &Log<WatchDisk>, want: &Expected, input: &Input) {
    let start = log.log_start_offset();
    let mut reads = 0;
    for (base, batches) in &want.segments {
        let file = if *base == input.a.base { &input.a.log } else { &input.b.as_ref().unwrap().log };
        for b in batches {
            if b.next_offset <= start || reads >= READS_MAX {
                continue;
            }
            reads += 1;
            let offset = b.base_offset.max(start);
            let got = block_on(log.read(offset, 1, None))
                .unwrap_or_else(|e| panic!("read {offset} of an intact batch failed: {e}"));
            let expect = &file[b.position..b.position + b.size];
            assert_eq!(&got.records[..], expect, "read {offset} returned other bytes than the file's batch");
        }
    }
}

/// Whatever a read returns is whole valid batches found in the files, with
/// dense offsets starting at the batch holding the requested offset.
fn check_reads_valid(log: &Log<WatchDisk>, input: &Input) {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let bases: Vec<u64> = log.segment_base_offsets();
    let mut offset = start;
    for _ in 0..READS_MAX {
        if offset >= end {
            break;
        }
        let next = match block_on(log.read(offset, 3000, None)) {
            Ok(got) => {
                assert_eq!((got.log_start_offset, got.log_end_offset), (start, end));
                let (batches, bad) = reference::split_batches(&got.records);
                assert!(bad.is_none(), "read {offset} returned an invalid batch");
                let mut expected = None;
                for b in &batches {
                    let bytes = &got.records[b.position..b.position + b.size];
                    validate_batch(bytes).expect("reference and engine agree on validity");
                    assert!(in_files(bytes, input), "read {offset} returned a batch that is in no file");
                    if let Some(e) = expected {
                        assert_eq!(b.base_offset, e, "read {offset} returned batches with an offset gap");
                    }
                    expected = Some(b.next_offset);
                }
                match (batches.first(), batches.last()) {
                    (Some(first), Some(last)) => {
                        assert!(
                            first.base_offset <= offset.max(first.base_offset) && first.next_offset > offset
                                || first.base_offset > offset,
                            "read {offset} returned a batch that ends before it"
                        );
                        assert!(last.next_offset <= end, "read {offset} returned offsets past the log end");
                        last.next_offset
                    }
                    _ => next_segment(&bases, offset).unwrap_or(end),
                }
            }
            Err(ReadError::Corrupt { .. }) => next_segment(&bases, offset).unwrap_or(end),
            Err(e) => panic!("read {offset} in [{start}, {end}) failed: {e}"),
        };
        assert!(next > offset, "reads do not advance at {offset}");
        offset = next;
    }
}

fn next_segment(bases: &[u64], offset: u64) -> Option<u64> {
    bases.iter().copied().find(|&b| b > offset)
}

fn in_files(batch: &[u8], input: &Input) -> bool {
    std::iter::once(&input.a).chain(&input.b).any(|s| s.log.windows(batch.len()).any(|w| w == batch))
}
