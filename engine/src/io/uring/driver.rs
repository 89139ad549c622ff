//! The ring, shared by the callers, the driver thread and, optionally, a
//! reaper on the callers' runtime.
//!
//! Callers submit their own operations: under the state lock each op takes
//! a slot and its SQE goes into the submission queue, then the caller enters
//! the kernel itself. Completions are reaped (`Shared::reap`) by the driver
//! thread, which sleeps in the kernel until one arrives, unless a
//! [`CompletionReaper`](super::CompletionReaper) exists: then the runtime
//! holding it watches the ring's completion eventfd and reaps on the thread
//! it wakes, so the caller's task is woken right there, with no hand-off
//! through the driver (waking a sleeping thread costs ~0.1 ms on this VM,
//! README). The driver then looks every `REAPER_GRACE` for completions the
//! runtime left waiting (its threads all busy) and reaps those itself, so
//! progress never depends on the runtime alone.
//!
//! Invariants:
//! - SQEs pushed and not yet completed (`in_kernel`) never exceed the
//!   completion queue's size, so no completion is ever dropped for overflow;
//! - a completion answers only the SQE whose user_data it carries (slot and
//!   tag): one that answers none in flight is counted as a stray and
//!   otherwise ignored, never taken for a later op of the same slot;
//! - only the state lock's holder pushes to the submission queue or reads
//!   the completion queue;
//! - an op's buffer lives until its completion is reaped; after an abnormal
//!   exit, buffers the kernel may still own are leaked, never freed.

use super::{Op, Shared};
use io_uring::{squeue, types};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The driver's longest sleep in the kernel: the delay before it submits
/// what a caller could not, or notices a shutdown, when nothing completes.
pub(super) const POLL: Duration = Duration::from_millis(10);

/// While a runtime reaps, how often the driver looks for completions it
/// leaves waiting (a runtime whose threads are all busy gets to its reaper
/// late): if completions wait at two looks in a row, the driver reaps them,
/// so none waits much over twice this. With nothing in flight it looks
/// every `POLL` instead (callers do not wake it when they submit).
pub(super) const REAPER_GRACE: Duration = Duration::from_millis(1);

/// EBUSY and EAGAIN from `io_uring_enter` ask us to reap completions and
/// try again; EINTR is a signal; ETIME is the end of a timed wait.
fn is_transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN | libc::ETIME))
}

/// The operations of a ring; behind `Shared::state`.
pub(super) struct State {
    /// Ops by slot index, from submission to completion.
    slots: Vec<Option<Op>>,
    /// Each slot's tag: bumped for every SQE made for the slot, and carried
    /// in the SQE's user_data with the slot (`user_data`), so a completion
    /// answers only the SQE it was posted for, never a later op that reuses
    /// the slot.
    tags: Vec<u32>,
    free: Vec<usize>,
    busy: usize,
    /// SQEs not yet in the submission queue.
    backlog: VecDeque<squeue::Entry>,
    /// SQEs pushed and not yet completed, kept at or below the CQ size so
    /// completions can never overflow.
    in_kernel: usize,
    limit: usize,
    /// Set when the driver has exited; later requests fail at once instead
    /// of waiting forever.
    pub(super) stopped: bool,
}

impl State {
    pub(super) fn new(limit: usize) -> State {
        State {
            slots: Vec::new(),
            tags: Vec::new(),
            free: Vec::new(),
            busy: 0,
            backlog: VecDeque::new(),
            in_kernel: 0,
            limit,
            stopped: false,
        }
    }

    fn take_slot(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.tags.push(0);
            self.slots.len() - 1
        })
    }

    /// Queues `op`'s next SQE in `slot`, under a new tag.
    fn queue(&mut self, slot: usize, mut op: Op) {
        self.tags[slot] = self.tags[slot].wrapping_add(1);
        self.backlog.push_back(op.sqe(user_data(slot, self.tags[slot])));
        self.slots[slot] = Some(op);
    }

    /// The op the completion with `user_data` answers, taken from its slot;
    /// `None` if it answers no SQE in flight.
    fn answered(&mut self, user_data: u64) -> Option<(usize, Op)> {
        let (slot, tag) = ((user_data & u64::from(u32::MAX)) as usize, (user_data >> 32) as u32);
        if self.tags.get(slot) != Some(&tag) {
            return None;
        }
        let op = self.slots.get_mut(slot)?.take()?;
        Some((slot, op))
    }
}

/// An SQE's user_data: the op's slot and the slot's tag.
fn user_data(slot: usize, tag: u32) -> u64 {
    (u64::from(tag) << 32) | slot as u64
}

impl Shared {
    /// Hands `ops` to the kernel: one `io_uring_enter` for all of them.
    pub(super) fn submit_all(&self, ops: impl IntoIterator<Item = Op>) {
        let pushed = {
            let mut st = self.state();
            if st.stopped {
                drop(st);
                ops.into_iter().for_each(|op| op.fail(false));
                return;
            }
            for op in ops {
                let slot = st.take_slot();
                st.queue(slot, op);
                st.busy += 1;
            }
            self.push_backlog(&mut st)
        };
        if pushed {
            self.enter_to_submit();
        }
    }

    /// Moves backlog SQEs into the submission queue while the kernel may
    /// take more. Returns whether it pushed any.
    fn push_backlog(&self, st: &mut State) -> bool {
        // SAFETY: only the holder of the state lock (`st`) touches the
        // submission queue, so this is its one handle.
        let mut sq = unsafe { self.ring.submission_shared() };
        let mut pushed = false;
        while st.in_kernel < st.limit {
            let Some(sqe) = st.backlog.front() else { break };
            // SAFETY: the SQE points into an op held in `st.slots` (its
            // buffer and file), which stays put until the CQE is reaped;
            // `Driver`'s drop leaks it if that never happens.
            if unsafe { sq.push(sqe) }.is_err() {
                break;
            }
            self.sqes.fetch_add(1, Ordering::Relaxed);
            pushed = true;
            st.backlog.pop_front();
            st.in_kernel += 1;
        }
        pushed
    }

    /// A caller's `io_uring_enter` for what it pushed. If the kernel refuses,
    /// the SQEs stay queued and the driver submits them within `POLL` (it
    /// fails them all if the ring is broken).
    fn enter_to_submit(&self) {
        self.enters.fetch_add(1, Ordering::Relaxed);
        self.submits.fetch_add(1, Ordering::Relaxed);
        loop {
            match self.ring.submit() {
                Ok(_) => return,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "io_uring submission deferred to the driver");
                    return self.unpark_driver();
                }
            }
        }
    }

    pub(super) fn unpark_driver(&self) {
        if let Some(driver) = self.driver.get() {
            driver.unpark();
        }
    }

    /// Completions waiting to be reaped.
    fn completions_waiting(&self) -> bool {
        let _st = self.state();
        // SAFETY: only the holder of the state lock (`_st`) touches the
        // completion queue, so this is its one handle; it only looks at
        // the queue's length.
        !unsafe { self.ring.completion_shared() }.is_empty()
    }

    /// Reaps every completion there is: answers each caller, and submits
    /// the rest of short transfers. Returns how many completions it took.
    pub(super) fn reap(&self) -> usize {
        let mut done = Vec::new();
        {
            let mut st = self.state();
            // SAFETY: only the holder of the state lock reads the
            // completion queue.
            let cq = unsafe { self.ring.completion_shared() };
            for cqe in cq {
                self.completions.fetch_add(1, Ordering::Relaxed);
                match st.answered(cqe.user_data()) {
                    Some((slot, op)) => {
                        st.in_kernel -= 1;
                        done.push((slot, op, cqe.result()));
                    }
                    // Counting it would let `in_kernel` fall below the SQEs
                    // really in flight (or wrap, and nothing would ever be
                    // submitted again); answering a slot's later op with it
                    // would report a transfer that never happened.
                    None => {
                        self.strays.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            user_data = cqe.user_data(),
                            result = cqe.result(),
                            flags = cqe.flags(),
                            "io_uring posted a completion for no operation in flight; ignored"
                        );
                    }
                }
            }
        }
        let reaped = done.len();
        if reaped == 0 {
            return 0;
        }
        // Callers are answered outside the lock: waking them may take a
        // syscall, and callers submitting meanwhile need the lock.
        let mut again = Vec::new();
        let mut freed = Vec::new();
        for (slot, op, res) in done {
            match op.complete(res) {
                Some(rest) => again.push((slot, rest)),
                None => freed.push(slot),
            }
        }
        let pushed = {
            let mut st = self.state();
            for (slot, rest) in again {
                st.queue(slot, rest);
            }
            for slot in freed {
                st.free.push(slot);
                st.busy -= 1;
            }
            self.push_backlog(&mut st)
        };
        if pushed {
            self.enter_to_submit();
        }
        reaped
    }
}

/// The driver thread.
pub(super) struct Driver {
    shared: Arc<Shared>,
}

impl Driver {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Driver { shared }
    }

    pub(super) fn run(mut self) {
        if let Err(e) = self.event_loop() {
            tracing::error!(error = %e, "io_uring driver failed; failing its operations");
        }
        // `Drop` stops the ring and handles anything left.
    }

    fn event_loop(&mut self) -> io::Result<()> {
        let timeout = types::Timespec::from(POLL);
        let args = types::SubmitArgs::new().timespec(&timeout);
        // Whether completions were waiting at the last look while a runtime
        // reaps: still there now means it has stopped doing so.
        let mut waiting_before = false;
        loop {
            let shutting_down = self.shared.shutdown.load(Ordering::SeqCst);
            let (pushed, queued, idle) = {
                let mut st = self.shared.state();
                if shutting_down && st.busy == 0 {
                    return Ok(());
                }
                let pushed = self.shared.push_backlog(&mut st);
                // SAFETY: looking at the queue's length, under the state lock.
                let queued = !unsafe { self.shared.ring.submission_shared() }.is_empty();
                (pushed, queued, st.busy == 0)
            };
            if pushed {
                self.shared.submits.fetch_add(1, Ordering::Relaxed);
            }
            if self.shared.reapers.load(Ordering::SeqCst) > 0 {
                // A runtime reaps: submit what callers left queued, take what
                // it left waiting, and look again in a while (callers do not
                // wake the driver: that is the hand-off the reaper saves).
                if queued {
                    self.shared.enters.fetch_add(1, Ordering::Relaxed);
                    match self.shared.ring.submit() {
                        Ok(_) => {}
                        Err(e) if is_transient(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                let waiting = self.shared.completions_waiting();
                if waiting && waiting_before {
                    self.shared.reap();
                }
                waiting_before = waiting;
                std::thread::park_timeout(if idle { POLL } else { REAPER_GRACE });
                continue;
            }
            waiting_before = false;
            // Submits whatever is queued and sleeps until a completion, or
            // for `POLL` at most.
            self.shared.enters.fetch_add(1, Ordering::Relaxed);
            match self.shared.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
            self.shared.reap();
        }
    }
}

impl Drop for Driver {
    /// Runs on a clean exit, a ring error or a panic. Stops the ring so no
    /// caller waits forever. After an abnormal exit the kernel may still
    /// own buffers of ops in flight, so every op still held is failed and its
    /// buffer leaked, never freed.
    fn drop(&mut self) {
        let held: Vec<Op> = {
            let mut st = self.shared.state();
            st.stopped = true;
            st.backlog.clear();
            st.slots.drain(..).flatten().collect()
        };
        held.into_iter().for_each(|op| op.fail(true));
    }
}
