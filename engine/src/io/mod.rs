//! Storage I/O: the `Disk` trait and its backends.
//!
//! - `disk`: the trait and its durability contract.
//! - `mem`: an in-memory disk with crash semantics, for tests.
//! - `std_disk`: portable positional I/O with fdatasync.
//! - `uring`: io_uring backend (Linux), the production default.
//! - `select`: `--io auto|uring|std` probing.

pub mod disk;
pub mod mem;

pub use disk::{Disk, DiskFile, OpenMode};
pub use mem::MemDisk;
