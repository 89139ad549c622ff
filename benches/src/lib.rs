//! Benchmarks for Ringtail; see the binaries in src/bin.
