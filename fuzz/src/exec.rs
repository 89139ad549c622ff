//! A minimal executor. `MemDisk` futures complete without a runtime (at most
//! they yield and wake themselves), and the engine's tokio locks and oneshots
//! are runtime-agnostic, so polling in a loop with a no-op waker is enough,
//! and much cheaper per fuzz run than building a tokio runtime.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Polls before concluding that a future can never complete.
const POLLS_MAX: usize = 100_000;

pub fn block_on<F: Future>(future: F) -> F::Output {
    crate::watch::reset();
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..POLLS_MAX {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("a future made no progress in {POLLS_MAX} polls: deadlock (nothing else can wake it)");
}

/// Runs the futures concurrently, polling them round-robin; results in the
/// order given.
pub fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    crate::watch::reset();
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..POLLS_MAX {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if out[i].is_some() {
                continue;
            }
            match f.as_mut().poll(&mut cx) {
                Poll::Ready(v) => out[i] = Some(v),
                Poll::Pending => pending = true,
            }
        }
        if !pending {
            return out.into_iter().map(|o| o.expect("ready")).collect();
        }
    }
    panic!("concurrent futures made no progress in {POLLS_MAX} rounds: deadlock");
}

/// `RINGTAIL_FUZZ_TRACE` is set: targets that support it print each step.
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("RINGTAIL_FUZZ_TRACE").is_some())
}
