//! Fetch responses (versions 4 to 16) encoded by hand, so that the record
//! batches, nearly all of a Fetch response's bytes, reach the socket from
//! the buffers the log read them into instead of being copied into the
//! frame first.
//!
//! The frame is a list of segments: the fields around the records in one
//! buffer, split wherever a partition's records go out as a segment of
//! their own (the very `Bytes` the handler put in the response).
//! Concatenated, the segments are byte for byte what `response::encode`
//! writes; a property test checks that for every version. Whatever this
//! encoder does not write (tagged fields we never set, a field the version
//! cannot carry, a length the version cannot express) makes it decline, and
//! the caller falls back to kafka-protocol's encoder, which writes or
//! refuses it as before.
//!
//! Kafka's schema (FetchResponse.json) up to version 16:
//!
//! ```text
//! throttle_time_ms i32 | error_code i16 (v7+) | session_id i32 (v7+)
//! responses [
//!   topic string (v4-12) | topic_id uuid (v13+)
//!   partitions [
//!     partition_index i32 | error_code i16 | high_watermark i64
//!     last_stable_offset i64 | log_start_offset i64 (v5+)
//!     aborted_transactions nullable [producer_id i64 | first_offset i64]
//!     preferred_read_replica i32 (v11+)
//!     records nullable bytes
//!   ]
//! ]
//! ```
//!
//! Version 12 is flexible: lengths become unsigned varints of length + 1 (0
//! for null), every struct ends in a tagged-field section, and so does the
//! response header (v1). We write every section empty: a partition's tagged
//! fields (diverging_epoch, current_leader, snapshot_id) and the response's
//! (node_endpoints, v16) are never set. Versions 14-16 change nothing else
//! in the response.

use super::response::{EncodeError, Frame};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchResponse};

const VERSION_MIN: i16 = 4;
const VERSION_MAX: i16 = 16;
/// Topics are named by id from this version on.
const TOPIC_IDS_FROM: i16 = 13;
const FLEXIBLE_FROM: i16 = 12;
const LENGTH_PREFIX_BYTES: usize = 4;
/// An empty tagged-field section: a count of zero.
const NO_TAGGED_FIELDS: [u8; 1] = [0];

/// Records shorter than this are copied next to their fields: a segment of
/// their own costs the writer more (a separate write, a reference count)
/// than copying a few KiB.
const INLINE_RECORDS_BYTES_MAX: usize = 4096;

/// Encodes `body` as the response to request `correlation_id` at `version`;
/// `None` when it holds something only kafka-protocol's encoder handles.
pub fn encode(version: i16, correlation_id: i32, body: &FetchResponse) -> Result<Option<Frame>, EncodeError> {
    if !(VERSION_MIN..=VERSION_MAX).contains(&version) {
        return Ok(None);
    }
    // Two passes of the same code: the first only measures, so that the
    // length prefix is known before the first byte is written and the
    // buffer is allocated once, at its final size.
    let mut measure = Measure::default();
    if write_frame(&mut measure, version, correlation_id, 0, body).is_none() {
        return Ok(None);
    }
    let len = measure.total - LENGTH_PREFIX_BYTES;
    let len_i32 = i32::try_from(len).map_err(|_| EncodeError::TooLarge { api_key: ApiKey::Fetch, len })?;
    let mut segments = Segments {
        buf: BytesMut::with_capacity(measure.buffered),
        segments: Vec::with_capacity(measure.segments),
    };
    // The same input cannot be declined the second time; if it somehow
    // were, the fallback is still correct.
    if write_frame(&mut segments, version, correlation_id, len_i32, body).is_none() {
        return Ok(None);
    }
    Ok(Some(Frame::from_segments(segments.finish())))
}

/// Where `write_frame` puts bytes.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
    fn records(&mut self, records: &Bytes);
}

/// Counts what `Segments` would hold.
#[derive(Default)]
struct Measure {
    total: usize,
    /// Bytes in the buffer (all but the records sent as segments).
    buffered: usize,
    segments: usize,
}

impl Sink for Measure {
    fn put(&mut self, bytes: &[u8]) {
        self.total += bytes.len();
        self.buffered += bytes.len();
    }

    fn records(&mut self, records: &Bytes) {
        self.total += records.len();
        if records.len() < INLINE_RECORDS_BYTES_MAX {
            self.buffered += records.len();
        } else {
            // The buffer before it, then the records.
            self.segments += 2;
        }
    }
}

struct Segments {
    /// The bytes since the last records segment; split off, not copied,
    /// when the next one starts.
    buf: BytesMut,
    segments: Vec<Bytes>,
}

impl Segments {
    fn finish(mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() {
            self.segments.push(self.buf.freeze());
        }
        self.segments
    }
}

impl Sink for Segments {
    fn put(&mut self, bytes: &[u8]) {
        self.buf.put_slice(bytes);
    }

    fn records(&mut self, records: &Bytes) {
        if records.len() < INLINE_RECORDS_BYTES_MAX {
            self.buf.put_slice(records);
            return;
        }
        if !self.buf.is_empty() {
            self.segments.push(self.buf.split().freeze());
        }
        self.segments.push(records.clone());
    }
}

/// The whole frame, length prefix first. `None`: decline (see the module
/// documentation).
fn write_frame<S: Sink>(
    s: &mut S,
    version: i16,
    correlation_id: i32,
    len: i32,
    body: &FetchResponse,
) -> Option<()> {
    if !body.unknown_tagged_fields.is_empty() || !body.node_endpoints.is_empty() {
        return None;
    }
    let flexible = version >= FLEXIBLE_FROM;
    s.put(&len.to_be_bytes());
    s.put(&correlation_id.to_be_bytes());
    if ApiKey::Fetch.response_header_version(version) >= 1 {
        s.put(&NO_TAGGED_FIELDS);
    }
    s.put(&body.throttle_time_ms.to_be_bytes());
    if version >= 7 {
        s.put(&body.error_code.to_be_bytes());
        s.put(&body.session_id.to_be_bytes());
    } else if body.session_id != 0 {
        return None;
    }
    put_length(s, flexible, Some(body.responses.len()))?;
    for topic in &body.responses {
        write_topic(s, version, topic)?;
    }
    if flexible {
        s.put(&NO_TAGGED_FIELDS);
    }
    Some(())
}

fn write_topic<S: Sink>(s: &mut S, version: i16, topic: &FetchableTopicResponse) -> Option<()> {
    if !topic.unknown_tagged_fields.is_empty() {
        return None;
    }
    let flexible = version >= FLEXIBLE_FROM;
    let name = topic.topic.0.as_bytes();
    if version >= TOPIC_IDS_FROM {
        // A name the version cannot carry is kafka-protocol's to refuse.
        if !name.is_empty() {
            return None;
        }
        s.put(topic.topic_id.as_bytes());
    } else {
        // Topic ids are carried from version 13 only.
        if !topic.topic_id.is_nil() {
            return None;
        }
        if flexible {
            put_varint_length(s, Some(name.len()))?;
        } else {
            s.put(&i16::try_from(name.len()).ok()?.to_be_bytes());
        }
        s.put(name);
    }
    put_length(s, flexible, Some(topic.partitions.len()))?;
    for partition in &topic.partitions {
        write_partition(s, version, partition)?;
    }
    if flexible {
        s.put(&NO_TAGGED_FIELDS);
    }
    Some(())
}

fn write_partition<S: Sink>(s: &mut S, version: i16, p: &PartitionData) -> Option<()> {
    let tagged = p.diverging_epoch != Default::default()
        || p.current_leader != Default::default()
        || p.snapshot_id != Default::default()
        || !p.unknown_tagged_fields.is_empty();
    if tagged {
        return None;
    }
    let flexible = version >= FLEXIBLE_FROM;
    s.put(&p.partition_index.to_be_bytes());
    s.put(&p.error_code.to_be_bytes());
    s.put(&p.high_watermark.to_be_bytes());
    s.put(&p.last_stable_offset.to_be_bytes());
    if version >= 5 {
        s.put(&p.log_start_offset.to_be_bytes());
    }
    put_length(s, flexible, p.aborted_transactions.as_ref().map(Vec::len))?;
    for aborted in p.aborted_transactions.iter().flatten() {
        if !aborted.unknown_tagged_fields.is_empty() {
            return None;
        }
        s.put(&aborted.producer_id.0.to_be_bytes());
        s.put(&aborted.first_offset.to_be_bytes());
        if flexible {
            s.put(&NO_TAGGED_FIELDS);
        }
    }
    if version >= 11 {
        s.put(&p.preferred_read_replica.0.to_be_bytes());
    } else if p.preferred_read_replica.0 != -1 {
        return None;
    }
    put_length(s, flexible, p.records.as_ref().map(Bytes::len))?;
    if let Some(records) = &p.records {
        s.records(records);
    }
    if flexible {
        s.put(&NO_TAGGED_FIELDS);
    }
    Some(())
}

/// The length of an array or of bytes, `None` for null: an i32 (-1 for
/// null), or in flexible versions a varint.
fn put_length<S: Sink>(s: &mut S, flexible: bool, len: Option<usize>) -> Option<()> {
    if flexible {
        return put_varint_length(s, len);
    }
    let len = match len {
        Some(len) => i32::try_from(len).ok()?,
        None => -1,
    };
    s.put(&len.to_be_bytes());
    Some(())
}

/// A flexible version's length: unsigned varint of length + 1, 0 for null.
fn put_varint_length<S: Sink>(s: &mut S, len: Option<usize>) -> Option<()> {
    let value = match len {
        // kafka-protocol refuses u32::MAX itself, as length + 1 overflows.
        Some(len) => u32::try_from(len).ok().filter(|&len| len < u32::MAX)? + 1,
        None => 0,
    };
    put_unsigned_varint(s, value);
    Some(())
}

fn put_unsigned_varint<S: Sink>(s: &mut S, mut value: u32) {
    let mut bytes = [0u8; 5];
    let mut n = 0;
    while value >= 0x80 {
        bytes[n] = (value as u8) | 0x80;
        value >>= 7;
        n += 1;
    }
    bytes[n] = value as u8;
    s.put(&bytes[..=n]);
}

#[cfg(test)]
mod tests;
