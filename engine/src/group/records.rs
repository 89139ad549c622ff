//! Records of `__consumer_offsets`, in Kafka's format so that Kafka's tools
//! can read our log. All integers big-endian; strings are an i16 length then
//! UTF-8 (-1: null), bytes an i32 length then the bytes, arrays an i32 count.
//!
//! ```text
//! key   := version i16, then by version:
//!          0|1: OffsetCommitKey    group string, topic string, partition i32
//!          2:   GroupMetadataKey   group string
//! value := null (tombstone: offset or group deleted)
//!        | OffsetCommitValue  version i16 (we write 3):
//!          offset i64, [v3: leader_epoch i32], metadata string,
//!          commit_timestamp i64, [v1: expire_timestamp i64]
//!        | GroupMetadataValue version i16 (we write 3):
//!          protocol_type string, generation i32, protocol string?, leader
//!          string?, [v2+: current_state_timestamp i64], members array of
//!          (member_id string, [v3: group_instance_id string?], client_id
//!          string, client_host string, [v1+: rebalance_timeout i32],
//!          session_timeout i32, subscription bytes, assignment bytes)
//! ```
//!
//! Decoding treats the log as untrusted: every length is checked against
//! the bytes that remain, and errors are returned, never panics.

use super::shard::Shard;
use crate::log::batch::{BATCH_HEADER_BYTES, BATCH_SIZE_BYTES_MAX};
use crate::log::records::{iter_records, BatchBuilder};
use bytes::{BufMut, Bytes};
use thiserror::Error;

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;
/// Longest string the format can hold (its length is an i16).
pub const STRING_BYTES_MAX: usize = i16::MAX as usize;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("record without a key")]
    MissingKey,
    #[error("unknown key version {0}")]
    KeyVersion(i16),
    #[error("unknown value version {0}")]
    ValueVersion(i16),
    #[error("malformed record: {0}")]
    Malformed(&'static str),
    #[error("{0} bytes left over")]
    TrailingBytes(usize),
    #[error("records of at least {0} bytes do not fit one batch")]
    TooLarge(usize),
    #[error("{0} is too long for the format")]
    TooLong(&'static str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberValue>,
}

/// One record of `__consumer_offsets`; `None` values are tombstones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OffsetsRecord {
    Offset { group: String, topic: String, partition: i32, value: Option<OffsetValue> },
    Group { group: String, value: Option<GroupValue> },
}

impl OffsetsRecord {
    pub fn group(&self) -> &str {
        match self {
            OffsetsRecord::Offset { group, .. } | OffsetsRecord::Group { group, .. } => group,
        }
    }

    /// Key and value bytes. Fails (rather than panics) on strings too long
    /// for an i16 length; the state machine refuses such requests first.
    pub fn encode(&self) -> Result<(Bytes, Option<Bytes>), CodecError> {
        let mut key = Writer::default();
        let value = match self {
            OffsetsRecord::Offset { group, topic, partition, value } => {
                key.i16(OFFSET_KEY_VERSION);
                key.string("group id", group)?;
                key.string("topic", topic)?;
                key.0.put_i32(*partition);
                value.as_ref().map(encode_offset_value).transpose()?
            }
            OffsetsRecord::Group { group, value } => {
                key.i16(GROUP_KEY_VERSION);
                key.string("group id", group)?;
                value.as_ref().map(encode_group_value).transpose()?
            }
        };
        Ok((Bytes::from(key.0), value))
    }

    pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<OffsetsRecord, CodecError> {
        let mut k = Reader(key.ok_or(CodecError::MissingKey)?);
        let record = match k.i16()? {
            0 | 1 => OffsetsRecord::Offset {
                group: k.string()?,
                topic: k.string()?,
                partition: k.i32()?,
                value: value.map(decode_offset_value).transpose()?,
            },
            2 => {
                OffsetsRecord::Group { group: k.string()?, value: value.map(decode_group_value).transpose()? }
            }
            v => return Err(CodecError::KeyVersion(v)),
        };
        k.finish()?;
        Ok(record)
    }
}

fn encode_offset_value(v: &OffsetValue) -> Result<Bytes, CodecError> {
    let mut w = Writer::default();
    w.i16(OFFSET_VALUE_VERSION);
    w.0.put_i64(v.offset);
    w.0.put_i32(v.leader_epoch);
    w.string("offset metadata", &v.metadata)?;
    w.0.put_i64(v.commit_timestamp_ms);
    Ok(Bytes::from(w.0))
}

fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue, CodecError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(CodecError::ValueVersion(version));
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    if version == 1 {
        let _expire_timestamp = r.i64()?;
    }
    r.finish()?;
    Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp_ms })
}

fn encode_group_value(v: &GroupValue) -> Result<Bytes, CodecError> {
    let mut w = Writer::default();
    w.i16(GROUP_VALUE_VERSION);
    w.string("protocol type", &v.protocol_type)?;
    w.0.put_i32(v.generation);
    w.nullable("protocol", v.protocol.as_deref())?;
    w.nullable("leader", v.leader.as_deref())?;
    w.0.put_i64(v.current_state_timestamp_ms);
    w.0.put_i32(i32::try_from(v.members.len()).map_err(|_| CodecError::TooLong("members"))?);
    for m in &v.members {
        w.string("member id", &m.member_id)?;
        w.nullable("group instance id", m.instance_id.as_deref())?;
        w.string("client id", &m.client_id)?;
        w.string("client host", &m.client_host)?;
        w.0.put_i32(m.rebalance_timeout_ms);
        w.0.put_i32(m.session_timeout_ms);
        w.bytes("subscription", &m.subscription)?;
        w.bytes("assignment", &m.assignment)?;
    }
    Ok(Bytes::from(w.0))
}

fn decode_group_value(bytes: &[u8]) -> Result<GroupValue, CodecError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(CodecError::ValueVersion(version));
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable()?;
    let leader = r.nullable()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = usize::try_from(r.i32()?).map_err(|_| CodecError::Malformed("negative member count"))?;
    // Each member takes at least 22 bytes: never reserve more than fits.
    let mut members = Vec::with_capacity(count.min(r.0.len() / 22));
    for _ in 0..count {
        let member_id = r.string()?;
        let instance_id = if version >= 3 { r.nullable()? } else { None };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let session_then_rebalance = r.i32()?;
        let (rebalance_timeout_ms, session_timeout_ms) = if version >= 1 {
            (session_then_rebalance, r.i32()?)
        } else {
            (session_then_rebalance, session_then_rebalance)
        };
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(MemberValue {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.finish()?;
    Ok(GroupValue { protocol_type, generation, protocol, leader, current_state_timestamp_ms, members })
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn i16(&mut self, v: i16) {
        self.0.put_i16(v);
    }

    fn string(&mut self, what: &'static str, s: &str) -> Result<(), CodecError> {
        let len = i16::try_from(s.len()).map_err(|_| CodecError::TooLong(what))?;
        self.0.put_i16(len);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn nullable(&mut self, what: &'static str, s: Option<&str>) -> Result<(), CodecError> {
        match s {
            None => {
                self.0.put_i16(-1);
                Ok(())
            }
            Some(s) => self.string(what, s),
        }
    }

    fn bytes(&mut self, what: &'static str, b: &[u8]) -> Result<(), CodecError> {
        let len = i32::try_from(b.len()).map_err(|_| CodecError::TooLong(what))?;
        self.0.put_i32(len);
        self.0.extend_from_slice(b);
        Ok(())
    }
}

/// A cursor over untrusted bytes; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.0.len() {
            return Err(CodecError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16, CodecError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, CodecError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn nullable(&mut self) -> Result<Option<String>, CodecError> {
        let len = self.i16()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| CodecError::Malformed("string length below -1"))?;
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| CodecError::Malformed("string is not UTF-8"))?;
        Ok(Some(s.to_owned()))
    }

    fn string(&mut self) -> Result<String, CodecError> {
        self.nullable()?.ok_or(CodecError::Malformed("null where a string is required"))
    }

    fn bytes(&mut self) -> Result<Bytes, CodecError> {
        let len = usize::try_from(self.i32()?).map_err(|_| CodecError::Malformed("negative bytes length"))?;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }

    fn finish(&self) -> Result<(), CodecError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(CodecError::TrailingBytes(n)),
        }
    }
}

/// One uncompressed batch holding `records`, stamped `now_ms`.
pub fn build_batch(records: &[OffsetsRecord], now_ms: i64) -> Result<Bytes, CodecError> {
    let mut batch = BatchBuilder::new(0, now_ms);
    // Checked before building: a group of many members with large metadata
    // may not fit a batch, and the builder cannot represent what a batch
    // cannot hold. Each record adds at most 32 bytes of framing.
    let mut size = BATCH_HEADER_BYTES;
    for r in records {
        let (key, value) = r.encode()?;
        size = size.saturating_add(key.len() + value.as_ref().map_or(0, |v| v.len()) + 32);
        if size > BATCH_SIZE_BYTES_MAX {
            return Err(CodecError::TooLarge(size));
        }
        batch.push(Some(key), value, now_ms);
    }
    Ok(batch.build())
}

/// Applies one batch of `__consumer_offsets`; returns how many records it
/// applied. Undecodable records are skipped with a warning: one bad record
/// must not make every group of the partition unservable.
pub fn replay_batch(shard: &mut Shard, batch: &[u8], now_ms: i64) -> usize {
    let iter = match iter_records(batch) {
        Ok((_, iter)) => iter,
        Err(e) => {
            tracing::warn!(error = %e, "skipping an undecodable __consumer_offsets batch");
            return 0;
        }
    };
    let mut applied = 0;
    for record in iter {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "skipping the rest of a malformed __consumer_offsets batch");
                break;
            }
        };
        match OffsetsRecord::decode(record.key, record.value) {
            Ok(r) => {
                shard.replay(r, now_ms);
                applied += 1;
            }
            Err(e) => tracing::warn!(error = %e, "skipping an undecodable __consumer_offsets record"),
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_record() -> OffsetsRecord {
        let member = |id: &str, instance: Option<&str>| MemberValue {
            member_id: id.into(),
            instance_id: instance.map(Into::into),
            client_id: "client".into(),
            client_host: "/10.0.0.1".into(),
            rebalance_timeout_ms: 60_000,
            session_timeout_ms: 10_000,
            subscription: Bytes::from_static(b"\x00\x01sub"),
            assignment: Bytes::from_static(b"assign"),
        };
        OffsetsRecord::Group {
            group: "g".into(),
            value: Some(GroupValue {
                protocol_type: "consumer".into(),
                generation: 7,
                protocol: Some("range".into()),
                leader: Some("m1".into()),
                current_state_timestamp_ms: 1234,
                members: vec![member("m1", None), member("m2", Some("i2"))],
            }),
        }
    }

    fn offset_record() -> OffsetsRecord {
        OffsetsRecord::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: Some(OffsetValue {
                offset: 42,
                leader_epoch: 5,
                metadata: "meta".into(),
                commit_timestamp_ms: 99,
            }),
        }
    }

    fn round_trip(r: &OffsetsRecord) -> OffsetsRecord {
        let (k, v) = r.encode().expect("encodable");
        OffsetsRecord::decode(Some(&k), v.as_deref()).expect("decodable")
    }

    /// Every record kind, and tombstones, decode to what was encoded.
    #[test]
    fn records_round_trip() {
        let tombstones = [
            OffsetsRecord::Offset { group: "g".into(), topic: "t".into(), partition: 0, value: None },
            OffsetsRecord::Group { group: "g".into(), value: None },
        ];
        for r in [group_record(), offset_record()].iter().chain(&tombstones) {
            assert_eq!(&round_trip(r), r);
        }
    }

    /// Kafka's byte layout for an offset commit key v1 and value v3.
    #[test]
    fn offset_layout_is_kafkas() {
        let (k, v) = offset_record().encode().unwrap();
        assert_eq!(&k[..], b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x03");
        let v = v.unwrap();
        assert_eq!(&v[..2], &[0, 3]);
        assert_eq!(&v[2..10], &42i64.to_be_bytes());
        assert_eq!(&v[10..14], &5i32.to_be_bytes());
        assert_eq!(&v[14..20], b"\x00\x04meta");
        assert_eq!(&v[20..], &99i64.to_be_bytes());
    }

    /// Older value versions written by Kafka still decode.
    #[test]
    fn older_offset_value_versions_decode() {
        let mut v1 = vec![0, 1];
        v1.extend_from_slice(&7i64.to_be_bytes());
        v1.extend_from_slice(b"\x00\x00");
        v1.extend_from_slice(&8i64.to_be_bytes());
        v1.extend_from_slice(&9i64.to_be_bytes());
        let key = b"\x00\x00\x00\x01g\x00\x01t\x00\x00\x00\x00";
        match OffsetsRecord::decode(Some(key), Some(&v1)).unwrap() {
            OffsetsRecord::Offset { value: Some(v), .. } => {
                assert_eq!((v.offset, v.leader_epoch, v.commit_timestamp_ms), (7, -1, 8));
            }
            other => panic!("{other:?}"),
        }
    }

    /// Every truncation of a valid record, and garbage, is an error.
    #[test]
    fn truncated_and_garbage_input_is_an_error() {
        for r in [group_record(), offset_record()] {
            let (k, v) = r.encode().unwrap();
            let v = v.unwrap();
            for cut in 0..k.len() {
                assert!(OffsetsRecord::decode(Some(&k[..cut]), Some(&v)).is_err(), "key cut {cut}");
            }
            for cut in 0..v.len() {
                assert!(OffsetsRecord::decode(Some(&k), Some(&v[..cut])).is_err(), "value cut {cut}");
            }
            let mut longer = v.to_vec();
            longer.push(0);
            assert_eq!(OffsetsRecord::decode(Some(&k), Some(&longer)), Err(CodecError::TrailingBytes(1)));
        }
        assert_eq!(OffsetsRecord::decode(None, None), Err(CodecError::MissingKey));
        assert_eq!(OffsetsRecord::decode(Some(b"\x00\x09"), None), Err(CodecError::KeyVersion(9)));
        // A huge member count with no bytes behind it does not allocate.
        let huge = b"\x00\x03\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff\xff\xff";
        assert!(OffsetsRecord::decode(Some(b"\x00\x02\x00\x01g"), Some(huge)).is_err());
        let not_utf8 = b"\x00\x02\x00\x01\xff";
        assert!(OffsetsRecord::decode(Some(not_utf8), None).is_err());
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..200usize {
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = OffsetsRecord::decode(Some(&garbage), Some(&garbage));
        }
    }

    #[test]
    fn strings_too_long_for_the_format_are_refused() {
        let r = OffsetsRecord::Group { group: "g".repeat(STRING_BYTES_MAX + 1), value: None };
        assert_eq!(r.encode(), Err(CodecError::TooLong("group id")));
    }

    /// Records that cannot fit one batch are refused before anything is
    /// built (the builder could not represent them).
    #[test]
    fn records_too_large_for_a_batch_are_refused() {
        let big = || OffsetsRecord::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(OffsetValue {
                offset: 1,
                leader_epoch: -1,
                metadata: "m".repeat(STRING_BYTES_MAX),
                commit_timestamp_ms: 0,
            }),
        };
        let fits = vec![big(); 4];
        assert!(build_batch(&fits, 0).is_ok());
        let many = vec![big(); BATCH_SIZE_BYTES_MAX / STRING_BYTES_MAX + 1];
        assert!(matches!(build_batch(&many, 0), Err(CodecError::TooLarge(_))));
    }
}
