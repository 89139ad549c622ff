//! Typed requests and responses between simulated clients and brokers, and
//! their encoding. Messages cross madsim's network as bytes, as they would a
//! real one, so a message that does not survive encoding is a bug found here
//! rather than hidden by passing Rust values around.
//!
//! Encoding: big-endian integers, strings as u16 length + UTF-8, byte blobs
//! as u32 length + bytes. Every length is checked against the bytes left and
//! a named maximum before anything is allocated.

use bytes::{BufMut, Bytes, BytesMut};

/// Largest record payload one message carries.
pub const RECORDS_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest number of topic configs in one create.
const CONFIGS_MAX: usize = 64;
/// Largest number of items in a consumer-group list (members, offsets).
const GROUP_ITEMS_MAX: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    CreateTopic {
        name: String,
        partitions: u32,
        configs: Vec<(String, String)>,
    },
    DeleteTopic {
        name: String,
    },
    /// `acks`: 0, 1 or -1 as in Kafka. Under 0 the broker sends no answer.
    Produce {
        topic: String,
        partition: i32,
        acks: i8,
        records: Bytes,
    },
    Fetch {
        topic: String,
        partition: i32,
        offset: i64,
        max_bytes: u32,
    },
    /// `timestamp`: -2 earliest, -1 latest (the high watermark).
    ListOffsets {
        topic: String,
        partition: i32,
        timestamp: i64,
    },
    // Consumer groups (the engine's typed group API, reduced to what the
    // simulated members use: dynamic members, one "range" protocol).
    FindCoordinator {
        group: String,
    },
    /// Always with `require_known_member_id` (JoinGroup v4+).
    JoinGroup {
        group: String,
        member_id: String,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
        /// The subscription (opaque to the coordinator).
        metadata: Bytes,
    },
    SyncGroup {
        group: String,
        generation: i32,
        member_id: String,
        /// The leader's assignment per member id; empty from followers.
        assignments: Vec<(String, Bytes)>,
    },
    Heartbeat {
        group: String,
        generation: i32,
        member_id: String,
    },
    LeaveGroup {
        group: String,
        member_id: String,
    },
    /// Offsets as `(topic, partition, offset)`.
    OffsetCommit {
        group: String,
        generation: i32,
        member_id: String,
        offsets: Vec<(String, i32, i64)>,
    },
    OffsetFetch {
        group: String,
        partitions: Vec<(String, i32)>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Created,
    Deleted,
    Produced {
        base_offset: u64,
        log_start_offset: u64,
    },
    Fetched {
        records: Bytes,
        high_watermark: u64,
        log_start_offset: u64,
    },
    Offset {
        offset: i64,
    },
    /// A Kafka error code; `log_range` is `[start, end)` of the log when the
    /// error was an offset out of range, so the checker can judge it.
    Error {
        code: i16,
        message: String,
        log_range: Option<(u64, u64)>,
    },
    Coordinator {
        node_id: i32,
    },
    /// A JoinGroup answer; `error` may be MEMBER_ID_REQUIRED with the id.
    Joined {
        error: i16,
        generation: i32,
        leader: String,
        member_id: String,
        /// Every member and its subscription, for the leader only.
        members: Vec<(String, Bytes)>,
    },
    Synced {
        error: i16,
        assignment: Bytes,
    },
    /// A successful Heartbeat or LeaveGroup.
    GroupOk,
    /// An OffsetCommit's outcome per offset, in order.
    Committed {
        errors: Vec<i16>,
    },
    /// OffsetFetch: `(topic, partition, offset or -1, error)`.
    Offsets {
        offsets: Vec<(String, i32, i64, i16)>,
    },
}

/// One message on the wire: the request id ties a response to its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<T> {
    pub id: u64,
    /// Simulation metadata, not protocol: on a response, the checker's loss
    /// epoch when the broker answered (see `Checker::learn`); 0 on requests.
    pub epoch: u64,
    pub body: T,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError("truncated message"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u16()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError("string is not UTF-8"))
    }
    fn blob(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u32()? as usize;
        if len > RECORDS_BYTES_MAX {
            return Err(DecodeError("blob longer than RECORDS_BYTES_MAX"));
        }
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.u32()? as i32)
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()? as i64)
    }
    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(self.u16()? as i16)
    }
    /// A list's length, checked against `GROUP_ITEMS_MAX`.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.u16()? as usize;
        if n > GROUP_ITEMS_MAX {
            return Err(DecodeError("list longer than GROUP_ITEMS_MAX"));
        }
        Ok(n)
    }
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }
    fn end(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

fn put_string(out: &mut BytesMut, s: &str) {
    assert!(s.len() <= u16::MAX as usize, "string too long for the wire");
    out.put_u16(s.len() as u16);
    out.put_slice(s.as_bytes());
}

fn put_blob(out: &mut BytesMut, b: &[u8]) {
    assert!(b.len() <= RECORDS_BYTES_MAX, "blob too long for the wire");
    out.put_u32(b.len() as u32);
    out.put_slice(b);
}

fn put_count(out: &mut BytesMut, n: usize) {
    assert!(n <= GROUP_ITEMS_MAX, "list too long for the wire");
    out.put_u16(n as u16);
}

pub fn encode_request(msg: &Envelope<Request>) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u64(msg.id);
    out.put_u64(msg.epoch);
    match &msg.body {
        Request::CreateTopic { name, partitions, configs } => {
            out.put_u8(1);
            put_string(&mut out, name);
            out.put_u32(*partitions);
            out.put_u16(configs.len() as u16);
            for (k, v) in configs {
                put_string(&mut out, k);
                put_string(&mut out, v);
            }
        }
        Request::DeleteTopic { name } => {
            out.put_u8(2);
            put_string(&mut out, name);
        }
        Request::Produce { topic, partition, acks, records } => {
            out.put_u8(3);
            put_string(&mut out, topic);
            out.put_i32(*partition);
            out.put_i8(*acks);
            put_blob(&mut out, records);
        }
        Request::Fetch { topic, partition, offset, max_bytes } => {
            out.put_u8(4);
            put_string(&mut out, topic);
            out.put_i32(*partition);
            out.put_i64(*offset);
            out.put_u32(*max_bytes);
        }
        Request::ListOffsets { topic, partition, timestamp } => {
            out.put_u8(5);
            put_string(&mut out, topic);
            out.put_i32(*partition);
            out.put_i64(*timestamp);
        }
        Request::FindCoordinator { group } => {
            out.put_u8(6);
            put_string(&mut out, group);
        }
        Request::JoinGroup { group, member_id, session_timeout_ms, rebalance_timeout_ms, metadata } => {
            out.put_u8(7);
            put_string(&mut out, group);
            put_string(&mut out, member_id);
            out.put_i32(*session_timeout_ms);
            out.put_i32(*rebalance_timeout_ms);
            put_blob(&mut out, metadata);
        }
        Request::SyncGroup { group, generation, member_id, assignments } => {
            out.put_u8(8);
            put_string(&mut out, group);
            out.put_i32(*generation);
            put_string(&mut out, member_id);
            put_count(&mut out, assignments.len());
            for (member, assignment) in assignments {
                put_string(&mut out, member);
                put_blob(&mut out, assignment);
            }
        }
        Request::Heartbeat { group, generation, member_id } => {
            out.put_u8(9);
            put_string(&mut out, group);
            out.put_i32(*generation);
            put_string(&mut out, member_id);
        }
        Request::LeaveGroup { group, member_id } => {
            out.put_u8(10);
            put_string(&mut out, group);
            put_string(&mut out, member_id);
        }
        Request::OffsetCommit { group, generation, member_id, offsets } => {
            out.put_u8(11);
            put_string(&mut out, group);
            out.put_i32(*generation);
            put_string(&mut out, member_id);
            put_count(&mut out, offsets.len());
            for (topic, partition, offset) in offsets {
                put_string(&mut out, topic);
                out.put_i32(*partition);
                out.put_i64(*offset);
            }
        }
        Request::OffsetFetch { group, partitions } => {
            out.put_u8(12);
            put_string(&mut out, group);
            put_count(&mut out, partitions.len());
            for (topic, partition) in partitions {
                put_string(&mut out, topic);
                out.put_i32(*partition);
            }
        }
    }
    out.to_vec()
}

pub fn decode_request(buf: &[u8]) -> Result<Envelope<Request>, DecodeError> {
    let mut r = Reader { buf };
    let (id, epoch) = (r.u64()?, r.u64()?);
    let body = match r.u8()? {
        1 => {
            let name = r.string()?;
            let partitions = r.u32()?;
            let count = r.u16()? as usize;
            if count > CONFIGS_MAX {
                return Err(DecodeError("too many configs"));
            }
            let mut configs = Vec::with_capacity(count);
            for _ in 0..count {
                configs.push((r.string()?, r.string()?));
            }
            Request::CreateTopic { name, partitions, configs }
        }
        2 => Request::DeleteTopic { name: r.string()? },
        3 => Request::Produce {
            topic: r.string()?,
            partition: r.u32()? as i32,
            acks: r.u8()? as i8,
            records: r.blob()?,
        },
        4 => Request::Fetch {
            topic: r.string()?,
            partition: r.u32()? as i32,
            offset: r.u64()? as i64,
            max_bytes: r.u32()?,
        },
        5 => Request::ListOffsets {
            topic: r.string()?,
            partition: r.u32()? as i32,
            timestamp: r.u64()? as i64,
        },
        6 => Request::FindCoordinator { group: r.string()? },
        7 => Request::JoinGroup {
            group: r.string()?,
            member_id: r.string()?,
            session_timeout_ms: r.i32()?,
            rebalance_timeout_ms: r.i32()?,
            metadata: r.blob()?,
        },
        8 => Request::SyncGroup {
            group: r.string()?,
            generation: r.i32()?,
            member_id: r.string()?,
            assignments: r.list(|r| Ok((r.string()?, r.blob()?)))?,
        },
        9 => Request::Heartbeat { group: r.string()?, generation: r.i32()?, member_id: r.string()? },
        10 => Request::LeaveGroup { group: r.string()?, member_id: r.string()? },
        11 => Request::OffsetCommit {
            group: r.string()?,
            generation: r.i32()?,
            member_id: r.string()?,
            offsets: r.list(|r| Ok((r.string()?, r.i32()?, r.i64()?)))?,
        },
        12 => {
            Request::OffsetFetch { group: r.string()?, partitions: r.list(|r| Ok((r.string()?, r.i32()?)))? }
        }
        _ => return Err(DecodeError("unknown request kind")),
    };
    r.end()?;
    Ok(Envelope { id, epoch, body })
}

pub fn encode_response(msg: &Envelope<Response>) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u64(msg.id);
    out.put_u64(msg.epoch);
    match &msg.body {
        Response::Created => out.put_u8(1),
        Response::Deleted => out.put_u8(2),
        Response::Produced { base_offset, log_start_offset } => {
            out.put_u8(3);
            out.put_u64(*base_offset);
            out.put_u64(*log_start_offset);
        }
        Response::Fetched { records, high_watermark, log_start_offset } => {
            out.put_u8(4);
            put_blob(&mut out, records);
            out.put_u64(*high_watermark);
            out.put_u64(*log_start_offset);
        }
        Response::Offset { offset } => {
            out.put_u8(5);
            out.put_i64(*offset);
        }
        Response::Error { code, message, log_range } => {
            out.put_u8(6);
            out.put_i16(*code);
            put_string(&mut out, message);
            match log_range {
                Some((start, end)) => {
                    out.put_u8(1);
                    out.put_u64(*start);
                    out.put_u64(*end);
                }
                None => out.put_u8(0),
            }
        }
        Response::Coordinator { node_id } => {
            out.put_u8(7);
            out.put_i32(*node_id);
        }
        Response::Joined { error, generation, leader, member_id, members } => {
            out.put_u8(8);
            out.put_i16(*error);
            out.put_i32(*generation);
            put_string(&mut out, leader);
            put_string(&mut out, member_id);
            put_count(&mut out, members.len());
            for (member, metadata) in members {
                put_string(&mut out, member);
                put_blob(&mut out, metadata);
            }
        }
        Response::Synced { error, assignment } => {
            out.put_u8(9);
            out.put_i16(*error);
            put_blob(&mut out, assignment);
        }
        Response::GroupOk => out.put_u8(10),
        Response::Committed { errors } => {
            out.put_u8(11);
            put_count(&mut out, errors.len());
            for e in errors {
                out.put_i16(*e);
            }
        }
        Response::Offsets { offsets } => {
            out.put_u8(12);
            put_count(&mut out, offsets.len());
            for (topic, partition, offset, error) in offsets {
                put_string(&mut out, topic);
                out.put_i32(*partition);
                out.put_i64(*offset);
                out.put_i16(*error);
            }
        }
    }
    out.to_vec()
}

pub fn decode_response(buf: &[u8]) -> Result<Envelope<Response>, DecodeError> {
    let mut r = Reader { buf };
    let (id, epoch) = (r.u64()?, r.u64()?);
    let body = match r.u8()? {
        1 => Response::Created,
        2 => Response::Deleted,
        3 => Response::Produced { base_offset: r.u64()?, log_start_offset: r.u64()? },
        4 => Response::Fetched { records: r.blob()?, high_watermark: r.u64()?, log_start_offset: r.u64()? },
        5 => Response::Offset { offset: r.u64()? as i64 },
        6 => {
            let code = r.u16()? as i16;
            let message = r.string()?;
            let log_range = match r.u8()? {
                0 => None,
                1 => Some((r.u64()?, r.u64()?)),
                _ => return Err(DecodeError("bad log range flag")),
            };
            Response::Error { code, message, log_range }
        }
        7 => Response::Coordinator { node_id: r.i32()? },
        8 => Response::Joined {
            error: r.i16()?,
            generation: r.i32()?,
            leader: r.string()?,
            member_id: r.string()?,
            members: r.list(|r| Ok((r.string()?, r.blob()?)))?,
        },
        9 => Response::Synced { error: r.i16()?, assignment: r.blob()? },
        10 => Response::GroupOk,
        11 => Response::Committed { errors: r.list(|r| r.i16())? },
        12 => Response::Offsets { offsets: r.list(|r| Ok((r.string()?, r.i32()?, r.i64()?, r.i16()?)))? },
        _ => return Err(DecodeError("unknown response kind")),
    };
    r.end()?;
    Ok(Envelope { id, epoch, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request and response kind survives encoding, and damaged or
    /// truncated messages are refused rather than misread.
    #[test]
    fn round_trip_and_refuse_damage() {
        let requests = [
            Request::CreateTopic { name: "t".into(), partitions: 3, configs: vec![("a".into(), "1".into())] },
            Request::DeleteTopic { name: "t".into() },
            Request::Produce {
                topic: "t".into(),
                partition: 2,
                acks: -1,
                records: Bytes::from_static(b"xyz"),
            },
            Request::Fetch { topic: "t".into(), partition: 0, offset: 42, max_bytes: 7 },
            Request::ListOffsets { topic: "t".into(), partition: 1, timestamp: -2 },
            Request::FindCoordinator { group: "g".into() },
            Request::JoinGroup {
                group: "g".into(),
                member_id: String::new(),
                session_timeout_ms: 3000,
                rebalance_timeout_ms: -1,
                metadata: Bytes::from_static(b"t"),
            },
            Request::SyncGroup {
                group: "g".into(),
                generation: 4,
                member_id: "m".into(),
                assignments: vec![("m".into(), Bytes::from_static(b"\0\x01"))],
            },
            Request::Heartbeat { group: "g".into(), generation: 4, member_id: "m".into() },
            Request::LeaveGroup { group: "g".into(), member_id: "m".into() },
            Request::OffsetCommit {
                group: "g".into(),
                generation: 4,
                member_id: "m".into(),
                offsets: vec![("t".into(), 1, 77), ("t".into(), 2, -1)],
            },
            Request::OffsetFetch { group: "g".into(), partitions: vec![("t".into(), 0)] },
        ];
        for body in requests {
            let msg = Envelope { id: 9, epoch: 0, body };
            let bytes = encode_request(&msg);
            assert_eq!(decode_request(&bytes), Ok(msg));
            assert!(decode_request(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode_request(&longer).is_err());
        }
        let responses = [
            Response::Created,
            Response::Deleted,
            Response::Produced { base_offset: 5, log_start_offset: 1 },
            Response::Fetched { records: Bytes::from_static(b"abc"), high_watermark: 9, log_start_offset: 0 },
            Response::Offset { offset: -1 },
            Response::Error { code: 1, message: "out".into(), log_range: Some((3, 8)) },
            Response::Error { code: 56, message: "io".into(), log_range: None },
            Response::Coordinator { node_id: 1 },
            Response::Joined {
                error: 79,
                generation: -1,
                leader: String::new(),
                member_id: "m-1".into(),
                members: vec![("m-1".into(), Bytes::from_static(b"t"))],
            },
            Response::Synced { error: 0, assignment: Bytes::from_static(b"a") },
            Response::GroupOk,
            Response::Committed { errors: vec![0, 22] },
            Response::Offsets { offsets: vec![("t".into(), 0, -1, 0), ("t".into(), 1, 9, 16)] },
        ];
        for body in responses {
            let msg = Envelope { id: u64::MAX, epoch: 3, body };
            let bytes = encode_response(&msg);
            assert_eq!(decode_response(&bytes), Ok(msg));
            assert!(decode_response(&bytes[..bytes.len() - 1]).is_err());
        }
        let mut huge = encode_request(&Envelope {
            id: 1,
            epoch: 0,
            body: Request::Produce { topic: "t".into(), partition: 0, acks: 1, records: Bytes::new() },
        });
        let n = huge.len();
        huge[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode_request(&huge), Err(DecodeError("blob longer than RECORDS_BYTES_MAX")));
    }
}
