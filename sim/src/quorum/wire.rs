//! What crosses the simulated network in the quorum scenario: raft's
//! messages (protobuf bytes, as a TCP transport will carry them) between
//! voters, and the simulated brokers' requests to the voters.

use ringtail_engine::controller::BrokerState;
use ringtail_engine::error::BrokerError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub const PORT: u16 = 9093;
/// madsim endpoint tags.
pub const TAG_RAFT: u64 = 1;
pub const TAG_REQUEST: u64 = 2;
pub const TAG_REPLY: u64 = 3;

pub fn voter_addr(id: u64) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 3, 0, id as u8)), PORT)
}

pub fn client_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 3, 1, 1)), PORT)
}

#[derive(Clone, Debug)]
pub enum Ask {
    Register { node_id: i32, incarnation: u64 },
    Heartbeat { node_id: i32, incarnation: u64 },
    CreateTopic { name: String, partitions: i32, replication_factor: i16 },
}

#[derive(Clone, Debug)]
pub struct Request {
    pub id: u64,
    pub ask: Ask,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    /// Committed at this index.
    Committed(u64),
    Heartbeat(BrokerState),
    Refused(BrokerError),
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub id: u64,
    pub outcome: Outcome,
}
