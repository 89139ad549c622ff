//! How far opening a data directory has got: the logs and segment bytes
//! recovered of the total. Written by `LogManager::open` as each log opens,
//! read meanwhile from other tasks or threads (the server's start-up
//! progress log, `ringtail check`'s progress line), so plain atomics.
//!
//! Bytes count every segment file of a log, whether recovery scanned it or
//! trusted it from its index: the total is known before any log is opened,
//! which a count of only what will be scanned is not.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct RecoveryProgress {
    logs_total: AtomicU64,
    logs_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
    finished: AtomicBool,
}

/// One reading of a [`RecoveryProgress`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub logs_total: u64,
    pub logs_done: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    /// Every log is open (or found offline).
    pub finished: bool,
}

impl RecoveryProgress {
    pub fn new() -> RecoveryProgress {
        RecoveryProgress::default()
    }

    pub(crate) fn planned(&self, logs: u64, bytes: u64) {
        self.logs_total.store(logs, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn log_done(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        self.logs_done.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Release);
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            finished: self.finished.load(Ordering::Acquire),
            logs_total: self.logs_total.load(Ordering::Relaxed),
            logs_done: self.logs_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
        }
    }
}

impl ProgressSnapshot {
    /// Time left if the rest goes at the pace so far (by bytes, or by logs
    /// where there are no bytes); `None` before anything is done.
    pub fn time_left(&self, elapsed: Duration) -> Option<Duration> {
        let (done, total) = if self.bytes_total > 0 {
            (self.bytes_done, self.bytes_total)
        } else {
            (self.logs_done, self.logs_total)
        };
        if done == 0 {
            return None;
        }
        let left = total.saturating_sub(done) as f64 / done as f64;
        Some(elapsed.mul_f64(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_follows_the_pace_so_far() {
        let p = RecoveryProgress::new();
        p.planned(4, 1000);
        assert_eq!(p.snapshot().time_left(Duration::from_secs(1)), None);
        p.log_done(250);
        let s = p.snapshot();
        assert_eq!((s.logs_done, s.bytes_done, s.finished), (1, 250, false));
        assert_eq!(s.time_left(Duration::from_secs(2)), Some(Duration::from_secs(6)));
        p.log_done(750);
        p.finish();
        assert_eq!(p.snapshot().time_left(Duration::from_secs(8)), Some(Duration::ZERO));
        assert!(p.snapshot().finished);
    }
}
