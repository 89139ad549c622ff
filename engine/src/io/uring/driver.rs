//! The driver thread: owns the ring, takes queued ops in batches, submits
//! them with one `io_uring_enter`, and answers each caller as its
//! completion arrives.
//!
//! Invariants:
//! - SQEs in the kernel never exceed the completion queue's size, so no
//!   completion is ever dropped for overflow;
//! - a read on the wake eventfd is always posted while the driver sleeps,
//!   so new work wakes it;
//! - an op's buffer lives until its completion is reaped; after an abnormal
//!   exit, buffers the kernel may still own are leaked, never freed.

use super::{Op, Shared, WAKE};
use io_uring::{opcode, squeue, types, IoUring};
use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// EBUSY and EAGAIN from `io_uring_enter` ask us to reap completions and
/// try again; EINTR is a signal.
fn is_transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN))
}

/// The driver thread's state; only that thread touches it.
pub(super) struct Driver {
    ring: IoUring,
    shared: Arc<Shared>,
    /// In-flight ops by slot index (their user_data).
    slots: Vec<Option<Op>>,
    free: Vec<usize>,
    busy: usize,
    /// SQEs not yet in the submission queue.
    backlog: VecDeque<squeue::Entry>,
    /// SQEs pushed and not yet completed, kept at or below the CQ size so
    /// completions can never overflow.
    in_kernel: usize,
    limit: usize,
    /// Operation SQEs were pushed since the last `io_uring_enter`.
    unsubmitted: bool,
    incoming: Vec<Op>,
    reaped: Vec<(u64, i32)>,
    wake_buf: Box<[u8; 8]>,
    wake_armed: bool,
}

impl Driver {
    pub(super) fn new(mut ring: IoUring, shared: Arc<Shared>) -> Self {
        let limit = ring.completion().capacity();
        Driver {
            ring,
            shared,
            slots: Vec::new(),
            free: Vec::new(),
            busy: 0,
            backlog: VecDeque::new(),
            in_kernel: 0,
            limit,
            unsubmitted: false,
            incoming: Vec::new(),
            reaped: Vec::new(),
            wake_buf: Box::new([0; 8]),
            wake_armed: false,
        }
    }

    pub(super) fn run(mut self) {
        if let Err(e) = self.event_loop() {
            tracing::error!(error = %e, "io_uring driver failed; failing its operations");
        }
        // `Drop` stops the queue and handles anything left.
    }

    fn event_loop(&mut self) -> io::Result<()> {
        loop {
            let shutting_down = self.shared.shutdown.load(Ordering::SeqCst);
            // After shutdown the last wake-up read is not re-armed, so the
            // kernel holds no pointer into `wake_buf` once we exit.
            if !self.wake_armed && !shutting_down {
                let fd = types::Fd(self.shared.eventfd.as_raw_fd());
                let read = opcode::Read::new(fd, self.wake_buf.as_mut_ptr(), 8).build();
                self.backlog.push_front(read.user_data(WAKE));
                self.wake_armed = true;
            }
            self.take_requests();
            if shutting_down && !self.wake_armed && self.busy == 0 {
                return Ok(());
            }
            self.push_backlog()?;
            // Submits everything pushed and sleeps until a completion: an op,
            // or the wake-up read telling us new requests are queued.
            self.count_enter();
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
            self.reap()?;
        }
    }

    fn take_requests(&mut self) {
        // Swapping two Vecs keeps both allocations in use round after round.
        let mut incoming = std::mem::take(&mut self.incoming);
        std::mem::swap(&mut self.shared.queue().ops, &mut incoming);
        for mut op in incoming.drain(..) {
            let slot = match self.free.pop() {
                Some(slot) => slot,
                None => {
                    self.slots.push(None);
                    self.slots.len() - 1
                }
            };
            self.backlog.push_back(op.sqe(slot));
            self.slots[slot] = Some(op);
            self.busy += 1;
        }
        self.incoming = incoming;
    }

    fn push_backlog(&mut self) -> io::Result<()> {
        loop {
            let mut sq = self.ring.submission();
            while self.in_kernel < self.limit {
                let Some(sqe) = self.backlog.front() else { break };
                // SAFETY: each SQE points into an op held in `self.slots` (its
                // buffer and file) or into `wake_buf`; both stay put until the
                // CQE is reaped, and `Drop` leaks them if that never happens.
                if unsafe { sq.push(sqe) }.is_err() {
                    break;
                }
                if sqe.get_user_data() != WAKE {
                    self.shared.sqes.fetch_add(1, Ordering::Relaxed);
                    self.unsubmitted = true;
                }
                self.backlog.pop_front();
                self.in_kernel += 1;
            }
            let full = sq.is_full();
            drop(sq);
            if !full || self.backlog.is_empty() || self.in_kernel >= self.limit {
                return Ok(());
            }
            // SQ full: hand this batch to the kernel and fill it again.
            self.count_enter();
            match self.ring.submit() {
                // Nothing taken: leave the rest to the submit-and-wait.
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if is_transient(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn count_enter(&mut self) {
        self.shared.enters.fetch_add(1, Ordering::Relaxed);
        if std::mem::take(&mut self.unsubmitted) {
            self.shared.submits.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn reap(&mut self) -> io::Result<()> {
        self.reaped.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        let mut reaped = std::mem::take(&mut self.reaped);
        for &(user_data, res) in &reaped {
            self.in_kernel -= 1;
            if user_data == WAKE {
                self.wake_armed = false;
                if res < 0 && res != -libc::EINTR {
                    return Err(io::Error::from_raw_os_error(-res));
                }
                continue;
            }
            self.shared.completions.fetch_add(1, Ordering::Relaxed);
            let slot = user_data as usize;
            let Some(op) = self.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            match op.complete(res) {
                Some(mut rest) => {
                    self.backlog.push_back(rest.sqe(slot));
                    self.slots[slot] = Some(rest);
                }
                None => {
                    self.free.push(slot);
                    self.busy -= 1;
                }
            }
        }
        reaped.clear();
        self.reaped = reaped;
        Ok(())
    }
}

impl Drop for Driver {
    /// Runs on a clean exit, a ring error or a panic. Stops the queue so no
    /// caller waits forever. After an abnormal exit the kernel may still
    /// own buffers of in-flight ops, so they are leaked, never freed.
    fn drop(&mut self) {
        let queued = {
            let mut queue = self.shared.queue();
            queue.stopped = true;
            std::mem::take(&mut queue.ops)
        };
        queued.into_iter().for_each(|op| op.fail(false));
        self.slots.drain(..).flatten().for_each(|op| op.fail(true));
        if self.wake_armed {
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new([0; 8])));
        }
    }
}
