//! The shutdown signal: a `watch` channel that turns true once. Tasks race
//! `signalled` against their work; engine calls are never raced (see
//! `maintenance`).

use ringtail_engine::watch;

/// Resolves once the server is shutting down (at once if it already is).
/// Unlike `watch::Receiver::wait_for`, it holds no borrow of the value, so
/// it can sit in a `select!` of a task that must be `Send`.
pub async fn signalled(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: the server is gone too.
    let _ = shutdown.wait_for(|stop| *stop).await;
}
