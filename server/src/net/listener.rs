//! The Kafka listener's accept loop. At `connections_max` open connections
//! it stops accepting (new clients wait in the kernel's backlog) instead of
//! accepting and dropping them. A connection beyond
//! `connections_per_address_max` from one IP address is closed at once, as
//! Kafka's `max.connections.per.ip` does, so one host cannot take every
//! slot.

use super::connection::{self, Shared};
use super::tracker::TaskToken;
use ringtail_engine::watch;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
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
    let per_address = Arc::new(PerAddress::default());
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
        let Some(address_slot) =
            per_address.clone().enter(peer.ip(), shared.ctx.limits.connections_per_address_max)
        else {
            metrics.connections_refused_per_address.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, max = shared.ctx.limits.connections_per_address_max, "closing a connection: too many from its address");
            drop(stream);
            continue;
        };
        metrics.connections_accepted.fetch_add(1, Ordering::Relaxed);
        metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "connection accepted");
        let (shared, token) = (shared.clone(), token.clone());
        tokio::spawn(async move {
            connection::serve(stream, peer, shared, token).await;
            metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
            drop(address_slot);
        });
    }
}

/// Open connections per IP address.
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's count, given back on drop.
struct AddressSlot {
    counts: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enter(self: Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut open = self.open();
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        drop(open);
        Some(AddressSlot { counts: self, ip })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
