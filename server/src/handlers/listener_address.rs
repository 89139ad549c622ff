//! A broker is reached at a different address on each listener: a client
//! that connected to the SSL listener must be told every broker's SSL
//! address, or it would reconnect in plaintext. The handlers answer with
//! the default listener's endpoints; replies to a request that came in on
//! another listener have the brokers' entries rewritten here, in one place
//! for every API that names brokers. A broker without that listener (in a
//! cluster whose members were configured differently) is left out of the
//! broker lists, as Kafka leaves it out, rather than shown at an address
//! of another security protocol.

use super::str_bytes;
use crate::config::HostPort;
use crate::metered_disk::ServerBroker;
use kafka_protocol::messages::ResponseKind;
use std::collections::BTreeMap;

/// A listener other than the default: its name, and this broker's address
/// on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub advertised: HostPort,
}

/// Every live broker's address on `route`'s listener: this broker's own,
/// and in a cluster the others' as they registered them.
pub fn addresses(broker: &ServerBroker, route: &Route) -> BTreeMap<i32, HostPort> {
    let mut addresses: BTreeMap<i32, HostPort> = broker
        .listener_endpoints(&route.name)
        .into_iter()
        .filter_map(|e| Some((e.node_id, HostPort { host: e.host, port: u16::try_from(e.port).ok()? })))
        .collect();
    addresses.insert(broker.node_id(), route.advertised.clone());
    addresses
}

/// Whether `response` names brokers: those `rewrite` changes.
pub fn names_brokers(response: &ResponseKind) -> bool {
    matches!(
        response,
        ResponseKind::Metadata(_) | ResponseKind::FindCoordinator(_) | ResponseKind::DescribeCluster(_)
    )
}

/// Gives each broker named in `response` its address in `addresses`.
pub fn rewrite(response: &mut ResponseKind, addresses: &BTreeMap<i32, HostPort>) {
    let at = |node_id: i32| addresses.get(&node_id).map(|a| (str_bytes(a.host.clone()), i32::from(a.port)));
    match response {
        ResponseKind::Metadata(r) => {
            r.brokers.retain(|b| addresses.contains_key(&b.node_id.0));
            for b in r.brokers.iter_mut() {
                if let Some(address) = at(b.node_id.0) {
                    (b.host, b.port) = address;
                }
            }
        }
        ResponseKind::FindCoordinator(r) => {
            if let Some(address) = at(r.node_id.0) {
                (r.host, r.port) = address;
            }
            for c in r.coordinators.iter_mut() {
                if let Some(address) = at(c.node_id.0) {
                    (c.host, c.port) = address;
                }
            }
        }
        ResponseKind::DescribeCluster(r) => {
            r.brokers.retain(|b| addresses.contains_key(&b.broker_id.0));
            for b in r.brokers.iter_mut() {
                if let Some(address) = at(b.broker_id.0) {
                    (b.host, b.port) = address;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::{BrokerId, MetadataResponse};

    fn broker(id: i32, port: i32) -> MetadataResponseBroker {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(str_bytes("10.0.0.1".to_string()))
            .with_port(port)
    }

    #[test]
    fn brokers_get_their_address_on_the_listener_or_are_left_out() {
        let mut response = ResponseKind::Metadata(MetadataResponse::default().with_brokers(vec![
            broker(1, 9092),
            broker(2, 9092),
            broker(3, 9092),
        ]));
        let addresses: BTreeMap<i32, HostPort> = [
            (1, HostPort { host: "b1.example".into(), port: 9094 }),
            (3, HostPort { host: "b3.example".into(), port: 9095 }),
        ]
        .into();
        rewrite(&mut response, &addresses);
        let ResponseKind::Metadata(r) = response else { unreachable!() };
        let shown: Vec<(i32, String, i32)> =
            r.brokers.iter().map(|b| (b.node_id.0, b.host.to_string(), b.port)).collect();
        assert_eq!(shown, [(1, "b1.example".into(), 9094), (3, "b3.example".into(), 9095)]);
    }

    /// Replies that name no broker (Produce and Fetch: the hot path) are
    /// left as they are, without the address map being built.
    #[test]
    fn only_replies_naming_brokers_are_rewritten() {
        use kafka_protocol::messages::{FetchResponse, FindCoordinatorResponse, ProduceResponse};
        assert!(names_brokers(&ResponseKind::Metadata(MetadataResponse::default())));
        assert!(names_brokers(&ResponseKind::FindCoordinator(FindCoordinatorResponse::default())));
        assert!(!names_brokers(&ResponseKind::Produce(ProduceResponse::default())));
        assert!(!names_brokers(&ResponseKind::Fetch(FetchResponse::default())));
    }
}
