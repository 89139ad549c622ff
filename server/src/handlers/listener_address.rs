//! A broker is reached at a different address on each listener: a client
//! that connected to the SSL listener must be told the SSL listener's
//! address for this broker, or it would reconnect in plaintext. The
//! handlers answer with the default listener's endpoints; replies to a
//! request that came in on another listener have this broker's entries
//! rewritten here, in one place for every API that names brokers.

use super::str_bytes;
use crate::config::HostPort;
use kafka_protocol::messages::ResponseKind;

/// Gives `node_id`'s entries in `response` the address `advertised`.
pub fn rewrite(response: &mut ResponseKind, node_id: i32, advertised: &HostPort) {
    let host = || str_bytes(advertised.host.clone());
    let port = i32::from(advertised.port);
    match response {
        ResponseKind::Metadata(r) => {
            for b in r.brokers.iter_mut().filter(|b| b.node_id.0 == node_id) {
                (b.host, b.port) = (host(), port);
            }
        }
        ResponseKind::FindCoordinator(r) => {
            if r.node_id.0 == node_id {
                (r.host, r.port) = (host(), port);
            }
            for c in r.coordinators.iter_mut().filter(|c| c.node_id.0 == node_id) {
                (c.host, c.port) = (host(), port);
            }
        }
        ResponseKind::DescribeCluster(r) => {
            for b in r.brokers.iter_mut().filter(|b| b.broker_id.0 == node_id) {
                (b.host, b.port) = (host(), port);
            }
        }
        _ => {}
    }
}
