//! Frames on the controller listener (`--controller-listen`): voters send
//! each other raft's messages; brokers send requests and read replies.
//!
//! A frame is `[length u32][kind u8][body]`, the length counting kind and
//! body. Raft messages are raft's own protobuf encoding; requests and
//! replies are JSON (small, rare, and readable in a packet capture).

use bytes::{BufMut, Bytes, BytesMut};
use protobuf::Message as _;
use raft::prelude::Message;
use ringtail_engine::controller::plan::Wanted;
use ringtail_engine::controller::{ElectionType, Endpoint, IsrChange, MetadataImage, PartitionElection};
use ringtail_engine::security::state::SecurityChange;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A frame larger than this closes the connection (a snapshot of a large
/// image is the biggest thing sent).
pub const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

const KIND_RAFT: u8 = 1;
const KIND_REQUEST: u8 = 2;
const KIND_REPLY: u8 = 3;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Ask {
    RegisterBroker {
        node_id: i32,
        incarnation: u64,
        endpoints: Vec<Endpoint>,
    },
    BrokerHeartbeat {
        node_id: i32,
        incarnation: u64,
    },
    /// Kafka's controlled shutdown: fence this incarnation now, moving its
    /// leaderships to other ISR members.
    ControlledShutdown {
        node_id: i32,
        incarnation: u64,
    },
    CreateTopic {
        name: String,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    /// Grows a topic to `count` partitions (Kafka's CreatePartitions).
    CreatePartitions {
        name: String,
        count: i32,
    },
    /// A topic's config overrides become `configs`, if they are still
    /// `expected` (the broker computed the change from those).
    AlterTopicConfigs {
        name: String,
        expected: BTreeMap<String, String>,
        configs: BTreeMap<String, String>,
    },
    /// Credential, ACL and client quota changes, committed together.
    ChangeSecurity {
        changes: Vec<SecurityChange>,
    },
    /// An operator's leader election (Kafka's ElectLeaders) of these
    /// partitions, or of every partition (`None`).
    ElectLeaders {
        election: ElectionType,
        partitions: Wanted,
    },
    /// A block of producer ids for this broker alone.
    AllocateProducerIds {
        node_id: i32,
    },
    /// A partition leader's ISR change (Kafka's AlterPartition), at the
    /// leader and partition epochs it last saw.
    AlterPartition {
        node_id: i32,
        change: IsrChange,
    },
    /// The image this voter has applied, if it is past `after`. Any voter
    /// answers: its image holds only committed entries.
    Image {
        after: u64,
    },
    /// The quorum as this voter sees it.
    Describe,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuorumStatus {
    pub node_id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    pub commit_index: u64,
    pub applied: u64,
    pub image: MetadataImage,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Outcome {
    /// Committed and applied at this index.
    Committed(u64),
    Heartbeat {
        fenced: bool,
    },
    Described(Box<QuorumStatus>),
    ProducerIds {
        first: i64,
        count: i64,
    },
    /// The voter's image at `applied` (`None`: not past the `after` asked
    /// for), and the leader it knows of.
    Image {
        applied: u64,
        leader: Option<u64>,
        image: Option<Box<MetadataImage>>,
    },
    /// Each partition's election outcome, holding once the image is at
    /// `index`.
    Elected {
        index: u64,
        outcomes: Vec<PartitionElection>,
    },
    /// A Kafka error code and why; NOT_CONTROLLER names the leader if known.
    Refused {
        code: i16,
        message: String,
        leader: Option<u64>,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub ask: Ask,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reply {
    pub id: u64,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Frame {
    Raft(Message),
    Request(Request),
    Reply(Reply),
}

fn framed(kind: u8, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.put_u32(body.len() as u32 + 1);
    out.put_u8(kind);
    out.put_slice(body);
    out.freeze()
}

pub fn encode(frame: &Frame) -> Bytes {
    match frame {
        Frame::Raft(m) => framed(KIND_RAFT, &m.write_to_bytes().expect("a raft message encodes")),
        Frame::Request(r) => framed(KIND_REQUEST, &serde_json::to_vec(r).expect("a request encodes")),
        Frame::Reply(r) => framed(KIND_REPLY, &serde_json::to_vec(r).expect("a reply encodes")),
    }
}

/// Reads one frame; `Ok(None)` at a clean end of stream, `Err` on a
/// malformed or oversized one (the caller closes the connection).
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Frame>> {
    let len = match reader.read_u32().await {
        Ok(len) => len as usize,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if len == 0 || len > FRAME_BYTES_MAX {
        return Err(invalid(format!("a controller frame of {len} bytes")));
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await?;
    decode(&body).map(Some)
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

fn decode(body: &[u8]) -> std::io::Result<Frame> {
    let (kind, rest) = body.split_first().ok_or_else(|| invalid("an empty frame".into()))?;
    match *kind {
        KIND_RAFT => Message::parse_from_bytes(rest).map(Frame::Raft).map_err(|e| invalid(e.to_string())),
        KIND_REQUEST => serde_json::from_slice(rest).map(Frame::Request).map_err(|e| invalid(e.to_string())),
        KIND_REPLY => serde_json::from_slice(rest).map(Frame::Reply).map_err(|e| invalid(e.to_string())),
        other => Err(invalid(format!("unknown controller frame kind {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_ones_are_errors() {
        let frames = [
            Frame::Raft(Message { to: 2, term: 7, ..Default::default() }),
            Frame::Request(Request { id: 1, ask: Ask::BrokerHeartbeat { node_id: 3, incarnation: 9 } }),
            Frame::Request(Request { id: 2, ask: Ask::ControlledShutdown { node_id: 3, incarnation: 9 } }),
            Frame::Request(Request { id: 3, ask: Ask::CreatePartitions { name: "t".into(), count: 4 } }),
            Frame::Request(Request {
                id: 4,
                ask: Ask::AlterTopicConfigs {
                    name: "t".into(),
                    expected: BTreeMap::new(),
                    configs: [("retention.ms".to_string(), "1000".to_string())].into(),
                },
            }),
            Frame::Request(Request {
                id: 5,
                ask: Ask::ElectLeaders {
                    election: ElectionType::Unclean,
                    partitions: Some(vec![("t".into(), vec![0, 2])]),
                },
            }),
            Frame::Request(Request {
                id: 6,
                ask: Ask::ElectLeaders { election: ElectionType::Preferred, partitions: None },
            }),
            Frame::Reply(Reply { id: 1, outcome: Outcome::Heartbeat { fenced: false } }),
            Frame::Reply(Reply {
                id: 5,
                outcome: Outcome::Elected {
                    index: 12,
                    outcomes: vec![PartitionElection {
                        topic: "t".into(),
                        partition: 0,
                        error_code: 84,
                        message: None,
                    }],
                },
            }),
        ];
        let mut bytes = Vec::new();
        for f in &frames {
            bytes.extend_from_slice(&encode(f));
        }
        let mut reader = &bytes[..];
        for f in &frames {
            let got = read_frame(&mut reader).await.unwrap().unwrap();
            assert_eq!(format!("{got:?}"), format!("{f:?}"));
        }
        assert!(read_frame(&mut reader).await.unwrap().is_none(), "a clean end");
        let mut huge = &[0xffu8, 0xff, 0xff, 0xff, 1][..];
        assert!(read_frame(&mut huge).await.is_err());
        let mut unknown = &[0u8, 0, 0, 1, 9][..];
        assert!(read_frame(&mut unknown).await.is_err());
        let mut garbage = &[0u8, 0, 0, 3, 2, b'{', b'x'][..];
        assert!(read_frame(&mut garbage).await.is_err());
    }
}
