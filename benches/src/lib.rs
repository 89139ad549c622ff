//! Benchmarks for Ringtail; see the binaries in src/bin.

pub mod histogram;
