//! The Kafka listener's accept loop. At `connections_max` open connections
//! it stops accepting (new clients wait in the kernel's backlog) instead of
//! accepting and dropping them.

use super::connection::{self, Shared};
use super::tracker::TaskToken;
use ringtail_engine::watch;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Pause after a failed accept (out of file descriptors, say), so the loop
/// does not spin on a persistent error.
const ACCEPT_RETRY_MS: u64 = 100;

/// Accepts until `shutdown` turns true, then drops the listener (refusing
/// new connections) and returns. Each connection holds a clone of `token`.
pub async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    token: TaskToken,
) {
    let slots = Arc::new(Semaphore::new(shared.ctx.limits.connections_max));
    loop {
        let slot = tokio::select! {
        biased;
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
            _ = crate::shutdown::signalled(&mut shutdown) => return,
        };
        let (stream, peer) = tokio::select! {
        biased;
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "kafka listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                    continue;
                }
            },
            _ = crate::shutdown::signalled(&mut shutdown) => return,
        };
        let metrics = shared.ctx.metrics.clone();
        metrics.connections_accepted.fetch_add(1, Ordering::Relaxed);
        metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "connection accepted");
        let (shared, token) = (shared.clone(), token.clone());
        tokio::spawn(async move {
            connection::serve(stream, peer, shared, token).await;
            metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
}
