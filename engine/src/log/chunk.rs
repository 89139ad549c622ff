//! One round's batches on their way into the active segment: `Chunk` holds
//! them with their offsets assigned, `WriteBuf` is the memory they are
//! written from and then read from (through the log cache).

use super::append::{AppendInfo, Origin, PendingAppend};
use super::batch;
use super::segment::{ScannedBatch, Segment};
use crate::io::aligned::round_down;
use crate::io::append_buf::AppendBuf;
use crate::io::block_pool::BlockPool;
use bytes::Bytes;
use std::sync::Arc;

/// A write buffer holds at least this much, so that rounds of a slow log
/// still share buffers (and the cache's reads of them gather less)...
const WRITE_BUF_BYTES_MIN: usize = 64 * 1024;
/// ...and at most this much unless one round needs more: memory is taken
/// per log, and a buffer is freed only once the cache lets go of all of it.
/// A busy log's buffers (rounds of a quarter of this over `WRITE_BUF_ROUNDS`
/// or more) are blocks of exactly this size from the cache's pool.
pub(super) const WRITE_BUF_BYTES_MAX: usize = 4 * 1024 * 1024;
/// A new buffer has room for this many rounds of the size that opened it.
const WRITE_BUF_ROUNDS: usize = 8;

/// Batches of one round bound for the active segment, with their offsets
/// assigned. The batches stay in the requests' buffers until the write
/// copies them into the log's `WriteBuf` (patching offsets and epochs there).
pub(super) struct Chunk {
    pub parts: Vec<Bytes>,
    /// Bytes in `parts`.
    pub len: usize,
    /// File position where the parts go.
    pub position: u64,
    pub next_offset: u64,
    /// One per part, with the header as written (offset, epoch assigned).
    pub batches: Vec<ScannedBatch>,
}

impl Chunk {
    pub fn new<F>(active: &Segment<F>) -> Chunk {
        Chunk {
            parts: Vec::new(),
            len: 0,
            position: active.size_bytes,
            next_offset: active.next_offset,
            batches: Vec::new(),
        }
    }

    pub fn push(&mut self, pending: &PendingAppend) -> AppendInfo {
        let base_offset = self.next_offset;
        let mut max_timestamp = i64::MIN;
        let mut at = 0usize;
        for header in &pending.headers {
            let size = header.size_bytes();
            let mut header = *header;
            match pending.origin {
                Origin::Leader { epoch } => {
                    header.base_offset = self.next_offset as i64;
                    header.partition_leader_epoch = epoch;
                }
                // Checked by the round: it continues the log exactly.
                Origin::Replica => debug_assert_eq!(header.base_offset as u64, self.next_offset),
            }
            self.batches.push(ScannedBatch { position: self.position + self.len as u64, header });
            self.parts.push(pending.records.slice(at..at + size));
            self.len += size;
            self.next_offset = header.next_offset();
            max_timestamp = max_timestamp.max(header.max_timestamp);
            at += size;
        }
        AppendInfo { base_offset, last_offset: self.next_offset - 1, max_timestamp, log_start_offset: 0 }
    }
}

/// The log's current write buffer: an `AppendBuf` mirroring a stretch of
/// one segment file, from a block boundary on.
pub(super) struct WriteBuf {
    buf: AppendBuf,
    segment: u64,
    /// File position of the buffer's first byte (block-aligned).
    file_start: u64,
    /// File position of the first byte this buffer holds for the cache: the
    /// first round's (what precedes it is the block the file already had).
    data_start: u64,
    /// Set by each append, cleared by `release_if_idle`.
    appended: bool,
}

/// Drops the log's write buffer if nothing was appended since the last
/// call; returns whether it did. The buffer's memory then lives only as long
/// as the cache holds its bytes, and goes back to the pool when evicted: a
/// log that fell idle does not keep a (4 MiB) block outside the cache's
/// budget. Its next append starts a new buffer.
pub(super) fn release_if_idle(current: &mut Option<WriteBuf>) -> bool {
    match current {
        Some(w) if w.appended => {
            w.appended = false;
            false
        }
        Some(_) => {
            *current = None;
            true
        }
        None => false,
    }
}

/// A chunk copied into the write buffer, ready for the disk.
pub(super) struct Staged {
    /// Where `write` goes in the file.
    pub write_position: u64,
    /// Whole blocks, the chunk's bytes patched, zero padding after them.
    pub write: Bytes,
    /// The buffer's bytes for the cache: `(position, bytes)`, from the
    /// buffer's first round through this chunk.
    pub cached: (u64, Bytes),
    /// The memory those bytes keep allocated: the whole buffer.
    pub pinned: usize,
    /// The file's last partial block once written (empty if none).
    pub tail: Vec<u8>,
}

/// Copies `chunk` into `current` (or a new buffer, if it does not continue
/// there or does not fit), patching each batch's offset and epoch. `tail`
/// is the segment's last partial block, which a new buffer starts with; a
/// new buffer of a busy log is a block of `pool`.
pub(super) fn stage(
    current: &mut Option<WriteBuf>,
    segment: u64,
    tail: &[u8],
    align: usize,
    chunk: &Chunk,
    pool: &Arc<BlockPool>,
) -> Staged {
    let position = chunk.position;
    let continues = current.as_ref().is_some_and(|w| {
        w.segment == segment
            && w.file_start + w.buf.filled() as u64 == position
            && w.buf.can_append(chunk.len, align)
    });
    if !continues {
        let needed = tail.len() + chunk.len + align;
        let capacity =
            (chunk.len * WRITE_BUF_ROUNDS).clamp(WRITE_BUF_BYTES_MIN, WRITE_BUF_BYTES_MAX).max(needed);
        debug_assert_eq!(pool.block_bytes(), WRITE_BUF_BYTES_MAX);
        // A busy log's buffer is a whole pool block even if it would need
        // less: reused blocks are warm, fresh memory costs page faults.
        let buf = if capacity >= pool.block_bytes() / 4 && needed <= pool.block_bytes() {
            AppendBuf::from_pool(pool, tail)
        } else {
            AppendBuf::starting_with(capacity, tail)
        };
        *current = Some(WriteBuf {
            buf,
            segment,
            file_start: position - tail.len() as u64,
            data_start: position,
            appended: true,
        });
    }
    let w = current.as_mut().expect("a write buffer was just ensured");
    w.appended = true;
    debug_assert_eq!(w.file_start % align as u64, 0, "the buffer starts a block");
    let parts: Vec<&[u8]> = chunk.parts.iter().map(|p| p.as_ref()).collect();
    let write = w.buf.append(&parts, align, |data| {
        for b in &chunk.batches {
            let at = (b.position - position) as usize;
            batch::set_base_offset(&mut data[at..], b.header.base_offset as u64);
            batch::set_partition_leader_epoch(&mut data[at..], b.header.partition_leader_epoch);
            debug_assert_eq!(batch::validate_batch(&data[at..at + b.header.size_bytes()]), Ok(b.header));
        }
    });
    let filled = w.buf.filled();
    let end = w.file_start + filled as u64;
    let tail_start = (round_down(end, align as u64) - w.file_start) as usize;
    let from_data = (w.data_start - w.file_start) as usize;
    Staged {
        write_position: w.file_start + (position - w.file_start) / align as u64 * align as u64,
        write,
        cached: (w.data_start, w.buf.slice(from_data..filled)),
        pinned: w.buf.capacity(),
        tail: w.buf.slice(tail_start..filled).to_vec(),
    }
}
