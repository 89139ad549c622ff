//! One device flush for appends that arrive together on different
//! partitions.
//!
//! Under `flush=always` every log fsyncs its own active segment, and each
//! log's group commit (append.rs) lets one fsync cover the appends queued
//! on that log. Appends on *different* logs never share a log's round. The
//! file system does share a journal commit, and with it one device flush,
//! between fdatasyncs that run at the same time; but two producers with one
//! request in flight each, on a partition each, reach their fsyncs a write's
//! length apart, so each fsync starts after the other's commit has begun
//! and pays a device flush of its own (4,064 flushes for 4,000 batches).
//!
//! The gate lines them up. Every plain (not yet durable) segment write of a
//! `flush=always` log holds a ticket while it is in flight. Before a log
//! fsyncs, it waits until the writes that *other* logs had in flight at
//! that moment have finished: their appenders then reach their own fsyncs
//! at once, and all of them land in the same journal commit. The wait is
//! bounded by the longest write in flight when it began; writes started
//! after it, and the log's own (its next round, being written while this
//! one syncs), are not waited for, so a busy broker never waits on a
//! stream of writes and a log's own write/fsync pipeline keeps its overlap.
//!
//! Durability is unchanged: each log still fsyncs its own file and
//! acknowledges only what that fsync covered. The gate only moves when an
//! fsync starts.
//!
//! Invariants:
//! - a ticket is in `in_flight` exactly while its write is (dropping the
//!   ticket, even on a cancelled or failed write, removes it and wakes
//!   the waiters);
//! - `wait_for_others` returns once no ticket older than its call and
//!   belonging to another log is left.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// The broker-wide gate; every log holds it (through the log cache, which
/// the logs of a broker share).
pub struct FlushGate {
    inner: Mutex<Inner>,
    /// Woken whenever a write finishes.
    finished: Notify,
    /// Off: fsyncs start at once (the operator's `flush-coalesce = false`).
    enabled: AtomicBool,
}

impl Default for FlushGate {
    fn default() -> Self {
        FlushGate { inner: Mutex::default(), finished: Notify::new(), enabled: AtomicBool::new(true) }
    }
}

#[derive(Default)]
struct Inner {
    next_ticket: u64,
    /// Writes in flight: ticket -> the log writing.
    in_flight: BTreeMap<u64, u64>,
    /// Fsyncs that waited for another log's write, since start.
    waits: u64,
}

impl FlushGate {
    pub fn new() -> Arc<FlushGate> {
        Arc::new(FlushGate::default())
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Marks a write of `log` as in flight until the ticket is dropped.
    pub fn start_write(&self, log: u64) -> WriteTicket<'_> {
        let mut inner = self.inner();
        let ticket = inner.next_ticket;
        inner.next_ticket += 1;
        inner.in_flight.insert(ticket, log);
        WriteTicket { gate: self, ticket }
    }

    /// Returns once every write another log had in flight when this was
    /// called has finished.
    pub async fn wait_for_others(&self, log: u64) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let horizon = {
            let mut inner = self.inner();
            if !inner.others_before(inner.next_ticket, log) {
                return;
            }
            inner.waits += 1;
            inner.next_ticket
        };
        loop {
            // Registered before the check, so that a write finishing
            // between the check and the await still wakes this one.
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if !self.inner().others_before(horizon, log) {
                return;
            }
            finished.await;
        }
    }

    /// Fsyncs that waited for another log's writes, since start.
    pub fn waits(&self) -> u64 {
        self.inner().waits
    }
}

impl Inner {
    fn others_before(&self, horizon: u64, log: u64) -> bool {
        self.in_flight.range(..horizon).any(|(_, &writer)| writer != log)
    }
}

/// A write in flight; see `FlushGate::start_write`.
pub struct WriteTicket<'a> {
    gate: &'a FlushGate,
    ticket: u64,
}

impl Drop for WriteTicket<'_> {
    fn drop(&mut self) {
        let removed = self.gate.inner().in_flight.remove(&self.ticket);
        debug_assert!(removed.is_some(), "a write ticket is removed once");
        self.gate.finished.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn nothing_in_flight_passes_at_once() {
        let gate = FlushGate::new();
        assert!(poll_once(pin!(gate.wait_for_others(1))).is_ready());
        assert_eq!(gate.waits(), 0);
    }

    #[test]
    fn a_disabled_gate_never_waits() {
        let gate = FlushGate::new();
        gate.set_enabled(false);
        let _other = gate.start_write(2);
        assert!(poll_once(pin!(gate.wait_for_others(1))).is_ready());
    }

    #[test]
    fn own_writes_are_not_waited_for() {
        let gate = FlushGate::new();
        let _own = gate.start_write(1);
        assert!(poll_once(pin!(gate.wait_for_others(1))).is_ready());
    }

    #[test]
    fn waits_for_another_logs_write_until_it_finishes() {
        let gate = FlushGate::new();
        let other = gate.start_write(2);
        let mut wait = pin!(gate.wait_for_others(1));
        assert!(poll_once(wait.as_mut()).is_pending());
        assert!(poll_once(wait.as_mut()).is_pending(), "still in flight");
        drop(other);
        assert!(poll_once(wait.as_mut()).is_ready());
        assert_eq!(gate.waits(), 1);
    }

    /// A stream of writes on other logs cannot hold a fsync back: only
    /// those in flight when the wait began count.
    #[test]
    fn writes_started_after_the_wait_are_not_waited_for() {
        let gate = FlushGate::new();
        let first = gate.start_write(2);
        let mut wait = pin!(gate.wait_for_others(1));
        assert!(poll_once(wait.as_mut()).is_pending());
        let _later = gate.start_write(3);
        assert!(poll_once(wait.as_mut()).is_pending());
        drop(first);
        assert!(poll_once(wait.as_mut()).is_ready());
    }
}
