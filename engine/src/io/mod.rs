//! Storage I/O: the `Disk` trait and its backends.
//!
//! - `disk`: the trait and its durability contract.
//! - `mem`: an in-memory disk with crash semantics, for tests.
//! - `std_disk`: portable positional I/O with fdatasync.
//! - `overlay`: the real file system, read-only, with changes kept in
//!   memory (`ringtail check`).
//! - `uring`: io_uring backend (Linux), the production default.
//! - `select`: `--io auto|uring|std` probing.
//!
//! # What a power loss may do, and the block every append rewrites
//!
//! The model every backend is held to (`disk`), and the one `mem` and the
//! simulator's disk crash by: only `sync_data` makes writes durable; a
//! write not yet synced may be lost, kept, or torn, each of its 512-byte
//! sectors holding wholly its old or wholly its new bytes, independently;
//! bytes outside a write's range never change.
//!
//! Segment files are written with direct I/O in whole `DIRECT_IO_ALIGN`
//! (4 KiB) blocks, so every append rewrites the block the previous append
//! ended in, and that block holds batches already synced and acknowledged.
//! Under the model that is safe because the rewrite carries exactly the
//! bytes the device already holds there: they come from the write buffer's
//! filled bytes, which are never written again (`append_buf`), or, for a
//! new buffer, from the segment's `tail`, a copy of them or read back from
//! the file after recovery or a truncation. Only the zero padding past the
//! last batch changes. So whatever mix of old and new sectors a crash
//! leaves, the synced prefix reads back the same
//! (`engine/tests/torn_tail_block.rs` walks every per-sector outcome and
//! fails a scheme that rewrites the block with other bytes first). A
//! buffered file is no different: the page cache writes its last page back
//! whole, synced bytes included.
//!
//! Beyond the model, a device may leave a sector neither old nor new when
//! the power fails mid-write: NVMe promises old-or-new only within its
//! atomic write unit (AWUPF, at least one logical block), a 512e drive
//! read-modify-writes a 4 KiB physical sector that a write covers only in
//! part (segment writes are whole aligned 4 KiB blocks, so they do not ask
//! for that; the model's 512-byte tearing is finer than a 4 KiB-atomic
//! device's), flash without power-loss protection can corrupt pages it
//! programmed earlier, and Linux promises untorn writes only for
//! `RWF_ATOMIC` writes (6.11 on). A garbage sector in the rewritten tail
//! block destroys, on that broker, the acknowledged batches with bytes in
//! that block (under 4 KiB of them, plus the batch running into it),
//! nothing else: recovery finds the damage by CRC-32C, never serves it,
//! cuts it above the recovery point and refuses to open below it (tested
//! too). Other replicas still hold those batches (acks=all), as they would
//! after any loss of one disk's synced data.
//!
//! The engine could close that gap by never rewriting a block that holds
//! synced bytes: pad each synced round to the block end and start the next
//! one on a fresh block, as SQLite's WAL does on devices without "powersafe
//! overwrite" and as jbd2 commits whole blocks. It does not, because:
//! - space: a round would take whole blocks. Measured with the log on
//!   `MemDisk` under flush=always (group commit forming rounds), the files
//!   would grow by +2300% for lone 170-byte batches, +274% for lone 1 KiB
//!   ones, +87% with 4 producers of 1 KiB, +24% for lone 16 KiB batches,
//!   +5% with 4 of those, +0.3% for rounds of 256 KiB and up; the log cache
//!   and retention by bytes would carry the same padding;
//! - format: a segment would stop being a dense run of Kafka batches.
//!   Fetches hand out contiguous file (cache) ranges, which clients parse
//!   as batches, so padding would have to be skipped on every read path, or
//!   filled with batches clients ignore; and recovery, which takes zeros
//!   after the last batch for a torn tail, would have to tell padding from
//!   damage inside a segment;
//! - it buys little: the device writes a round's blocks either way (padding
//!   only spares the rewrite of the tail block), so throughput would barely
//!   move, and the devices that leave garbage sectors can also lose synced
//!   data in ways no write scheme avoids (pages programmed earlier, flushes
//!   a volatile cache only claims). Power-loss-protected devices and
//!   replication are the remedy there.

pub mod aligned;
pub mod append_buf;
pub mod block_pool;
pub mod disk;
pub mod dyn_disk;
pub mod mem;
pub mod overlay;

pub use disk::{Disk, DiskFile, OpenMode};
pub use mem::MemDisk;
pub mod select;
pub mod std_disk;
pub mod uring; // the file is #![cfg(target_os = "linux")]

pub use select::{open_backend, AnyDisk, AnyFile, AnyLock, IoChoice};
pub use std_disk::StdDisk;
#[cfg(target_os = "linux")]
pub use uring::{CompletionReaper, UringDisk, UringStats};
