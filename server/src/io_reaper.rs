//! Reaps the io_uring backend's completions on the server's own runtime.
//!
//! Without this, each completion reaches the waiting request through the
//! backend's driver thread: two thread wake-ups (kernel worker → driver →
//! tokio worker), each ~0.1 ms on this VM. Watching the ring's completion
//! eventfd from the runtime's reactor cuts that to one: the tokio worker
//! woken by the eventfd reaps and wakes the request's task itself. The
//! driver still reaps whatever this task leaves waiting, so a stalled or
//! stopped task slows completions down but never loses one.

use ringtail_engine::io::CompletionReaper;
use std::io;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::task::JoinHandle;

/// The reaping task; dropping this stops it (the driver thread takes over).
#[must_use = "dropping it stops the reaping"]
pub struct Reaping(JoinHandle<()>);

impl Drop for Reaping {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts reaping `reaper`'s ring on the current runtime until the returned
/// `Reaping` is dropped.
pub fn spawn(reaper: CompletionReaper) -> io::Result<Reaping> {
    // SAFETY: the reaper owns the eventfd (through the ring it keeps alive)
    // and returns that same descriptor from every `as_raw_fd` call for as
    // long as it exists, which is as long as this `AsyncFd`.
    let fd = unsafe { AsyncFd::register_with_interest(reaper, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    Ok(Reaping(tokio::spawn(async move {
        loop {
            let mut ready = match fd.readable().await {
                Ok(ready) => ready,
                Err(e) => {
                    tracing::warn!(error = %e, "io_uring completions: the reactor failed; the driver thread reaps");
                    return;
                }
            };
            // Readiness is cleared only once the eventfd reads empty, so a
            // completion posted meanwhile is never missed.
            match ready.try_io(|fd| fd.get_ref().reap()) {
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "io_uring completions: cannot read the eventfd; the driver thread reaps");
                    return;
                }
            }
        }
    })))
}
