//! The Kafka listeners' accept loops. At `connections_max` open
//! connections, over every listener, they stop accepting (new clients wait in the kernel's backlog) instead of
//! accepting and dropping them. A connection beyond
//! `connections_per_address_max` from one IP address is closed at once, as
//! Kafka's `max.connections.per.ip` does, so one host cannot take every
//! slot.

use super::connection::{self, Shared};
use super::tls::ListenerTls;
use super::tracker::TaskToken;
use crate::handlers::listener_address::Route;
use crate::security::mechanism::SaslMechanism;
use crate::security::principal_mapping::PrincipalMapping;
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

/// What a connection knows of the listener that accepted it.
pub struct Listener {
    pub name: String,
    /// This listener's name and this broker's address on it, for the
    /// replies that name brokers; `None` on the default listener, whose
    /// addresses the broker knows itself.
    pub route: Option<Arc<Route>>,
    /// Set on SSL listeners: connections start with a TLS handshake.
    pub tls: Option<ListenerTls>,
    /// The SASL mechanisms clients must authenticate with; empty on a
    /// listener without SASL.
    pub sasl: Vec<SaslMechanism>,
    /// How long a SASL session lasts (KIP-368); `None`: the connection's life.
    pub sasl_session_lifetime: Option<std::time::Duration>,
    /// How a client certificate's subject names its principal.
    pub principal_mapping: Arc<PrincipalMapping>,
}

/// The connection limits every listener's connections count against.
pub struct Admission {
    slots: Arc<Semaphore>,
    per_address: Arc<PerAddress>,
}

impl Admission {
    pub fn new(connections_max: usize) -> Admission {
        Admission { slots: Arc::new(Semaphore::new(connections_max)), per_address: Arc::default() }
    }
}

/// Accepts until `shutdown` turns true, then drops the listener (refusing
/// new connections) and returns. Each connection holds a clone of `token`.
pub async fn accept_loop(
    listener: TcpListener,
    info: Arc<Listener>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    token: TaskToken,
) {
    let (slots, per_address) = (shared.admission.slots.clone(), shared.admission.per_address.clone());
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
                    tracing::warn!(listener = info.name, error = %e, "kafka listener: accept failed");
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
        let (info, shared, token) = (info.clone(), shared.clone(), token.clone());
        tokio::spawn(async move {
            connection::serve(stream, peer, info, shared, token).await;
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
