//! A response body in; a length-prefixed frame out, with the response
//! header version the API and version call for (ApiVersions always v0, so
//! that a client can read it before it knows which versions we speak).
//!
//! `encode_frame` is what the connection sends: Fetch responses go through
//! `fetch_response`, which leaves their record batches where they are
//! instead of copying them into the frame; every other API is one buffer.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

/// Room for the length prefix and a flexible response header.
const FRAME_OVERHEAD_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("encoding {api_key:?} v{version} response: {error}")]
    Body { api_key: ApiKey, version: i16, error: String },
    #[error("{api_key:?} response of {len} bytes exceeds the protocol's i32 length")]
    TooLarge { api_key: ApiKey, len: usize },
}

/// A response frame as it goes on the wire: its segments, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    segments: Vec<Bytes>,
    len: usize,
}

impl Frame {
    pub fn single(bytes: Bytes) -> Frame {
        Frame { len: bytes.len(), segments: vec![bytes] }
    }

    /// `segments` must be the whole frame, length prefix first.
    pub fn from_segments(segments: Vec<Bytes>) -> Frame {
        Frame { len: segments.iter().map(Bytes::len).sum(), segments }
    }

    /// Bytes on the wire, length prefix included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn segments(&self) -> &[Bytes] {
        &self.segments
    }

    /// The frame in one buffer (a copy unless it has one segment).
    pub fn to_bytes(&self) -> Bytes {
        match self.segments.as_slice() {
            [one] => one.clone(),
            many => Bytes::from(many.concat()),
        }
    }
}

/// Encodes `body` as the response to request `correlation_id`, as the
/// connection writes it.
pub fn encode_frame(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Frame, EncodeError> {
    if let ResponseKind::Fetch(fetch) = body {
        if let Some(frame) = super::fetch_response::encode(version, correlation_id, fetch)? {
            return Ok(frame);
        }
    }
    encode(api_key, version, correlation_id, body).map(Frame::single)
}

/// Encodes `body` as the response to request `correlation_id`, in one
/// buffer, through kafka-protocol's encoders.
pub fn encode(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let error = |e: String| EncodeError::Body { api_key, version, error: e };
    // Fetch responses `fetch_response` leaves to this path may still carry
    // record batches: size the buffer once rather than grow (and copy) it
    // repeatedly.
    let body_bytes = match body {
        ResponseKind::Fetch(fetch) => fetch.compute_size(version).map_err(|e| error(e.to_string()))?,
        _ => 0,
    };
    let mut buf = BytesMut::with_capacity(FRAME_OVERHEAD_BYTES + body_bytes);
    buf.put_i32(0); // the length, filled in below
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api_key.response_header_version(version))
        .map_err(|e| error(e.to_string()))?;
    body.encode(&mut buf, version).map_err(|e| error(e.to_string()))?;
    let len = buf.len() - 4;
    let len_i32 = i32::try_from(len).map_err(|_| EncodeError::TooLarge { api_key, len })?;
    buf[..4].copy_from_slice(&len_i32.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsResponse;

    #[test]
    fn api_versions_uses_header_v0_even_when_flexible() {
        let body = ResponseKind::ApiVersions(ApiVersionsResponse::default());
        let frame = encode(ApiKey::ApiVersions, 3, 5, &body).unwrap();
        let len = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        assert_eq!(&frame[4..8], &5i32.to_be_bytes());
        // Header v0 has no tagged fields: the body's error code follows.
        assert_eq!(&frame[8..10], &0i16.to_be_bytes());
    }
}
