//! Reads through the ring: one caller's read becomes pieces of at most
//! `READ_PIECE_BYTES`, all in flight together, each filling its own range
//! of one shared buffer, so the device sees a queue (as fio's iodepth)
//! rather than one long request at a time, and the caller gets one
//! contiguous `Bytes` without a copy.
//!
//! Files written with direct I/O are read the same way, in whole blocks
//! around the range asked for: their bytes are not in the page cache, and a
//! buffered read would first allocate and fill page-cache pages only to
//! copy them again.

use super::{driver_gone, Client, Op, MAX_RW};
use crate::io::aligned::{round_down, round_up, AlignedBuf};
use bytes::Bytes;
use io_uring::{opcode, squeue, types};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Largest piece of a read; a multiple of every direct-I/O alignment.
pub const READ_PIECE_BYTES: usize = 256 * 1024;

/// One piece in progress: fills `buf[start..end]` with the file's bytes
/// from `offset` on. For a direct read `offset`, the range and the buffer's
/// address are multiples of `align`.
pub(super) struct ReadOp {
    pub(super) file: Arc<File>,
    pub(super) offset: u64,
    /// Shared with the other pieces and the caller. Only the kernel writes
    /// into it, each piece into its own range, and the caller looks at it
    /// only once every piece has answered.
    pub(super) buf: Arc<AlignedBuf>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// Bytes of the range the kernel has filled.
    pub(super) filled: usize,
    pub(super) align: usize,
    /// Answered with `filled` once the piece is done.
    pub(super) tx: oneshot::Sender<io::Result<usize>>,
}

impl ReadOp {
    pub(super) fn sqe(&mut self) -> squeue::Entry {
        let n = (self.end - self.start - self.filled).min(MAX_RW) as u32;
        // SAFETY: `start + filled < end <= buf.len()`: inside the allocation.
        let into = unsafe { self.buf.as_mut_ptr().add(self.start + self.filled) };
        opcode::Read::new(types::Fd(self.file.as_raw_fd()), into, n)
            .offset(self.offset + self.filled as u64)
            .build()
    }

    /// Applies a CQE result: answers the caller, or returns the piece if a
    /// short read left more to read.
    pub(super) fn complete(mut self, res: i32) -> Option<ReadOp> {
        if res == -libc::EINTR {
            return Some(self);
        }
        if res < 0 {
            let _ = self.tx.send(Err(io::Error::from_raw_os_error(-res)));
            return None;
        }
        let n = (res as usize).min(self.end - self.start - self.filled);
        self.filled += n;
        // Direct reads end short only at the end of the file, and could
        // not go on from an unaligned position anyway.
        let at_end = n == 0 || !self.filled.is_multiple_of(self.align);
        if at_end || self.start + self.filled == self.end {
            let _ = self.tx.send(Ok(self.filled));
            return None;
        }
        Some(self)
    }
}

/// `len` bytes at `offset` of `file` (fewer where the file ends first),
/// read in pieces through `client`'s ring. `align` is 1 for buffered files.
pub(super) async fn read(
    client: &Client,
    file: &Arc<File>,
    offset: u64,
    len: usize,
    align: usize,
) -> io::Result<Bytes> {
    let first = round_down(offset, align as u64);
    let skip = (offset - first) as usize;
    let total = round_up(skip + len, align);
    let buf = Arc::new(AlignedBuf::zeroed(total));
    let mut ops = Vec::with_capacity(total.div_ceil(READ_PIECE_BYTES));
    let mut pieces = Vec::with_capacity(ops.capacity());
    for start in (0..total).step_by(READ_PIECE_BYTES) {
        let end = total.min(start + READ_PIECE_BYTES);
        let (tx, rx) = oneshot::channel();
        let op = ReadOp {
            file: Arc::clone(file),
            offset: first + start as u64,
            buf: Arc::clone(&buf),
            start,
            end,
            filled: 0,
            align,
            tx,
        };
        ops.push(Op::Read(op));
        pieces.push((end - start, rx));
    }
    client.submit_all(ops);
    // Every piece answers before the buffer is looked at, so the kernel has
    // stopped writing into it. The file's bytes run up to the first short
    // piece.
    let mut valid = 0;
    let mut short = false;
    let mut error = None;
    for (piece_len, rx) in pieces {
        match rx.await.map_err(|_| driver_gone()).and_then(|r| r) {
            Ok(filled) if !short => {
                valid += filled;
                short = filled < piece_len;
            }
            Ok(_) => {}
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    let end = valid.clamp(skip, skip + len);
    Ok(Bytes::from_owner(SharedBuf(buf)).slice(skip..end))
}

/// The shared buffer of a finished read, handed to `Bytes`.
struct SharedBuf(Arc<AlignedBuf>);

impl AsRef<[u8]> for SharedBuf {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().as_ref()
    }
}
