//! Storage I/O: the `Disk` trait and its backends.
//!
//! - `disk`: the trait and its durability contract.
//! - `mem`: an in-memory disk with crash semantics, for tests.
//! - `std_disk`: portable positional I/O with fdatasync.
//! - `uring`: io_uring backend (Linux), the production default.
//! - `select`: `--io auto|uring|std` probing.

pub mod aligned;
pub mod append_buf;
pub mod block_pool;
pub mod disk;
pub mod dyn_disk;
pub mod mem;

pub use disk::{Disk, DiskFile, OpenMode};
pub use mem::MemDisk;
pub mod select;
pub mod std_disk;
pub mod uring; // the file is #![cfg(target_os = "linux")]

pub use select::{open_backend, AnyDisk, AnyFile, AnyLock, IoChoice};
pub use std_disk::StdDisk;
#[cfg(target_os = "linux")]
pub use uring::{CompletionReaper, UringDisk, UringStats};
