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

mod request;
mod response;
#[cfg(test)]
mod tests;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
