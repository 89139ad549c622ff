//! Kafka's framing, without I/O: a request becomes one length-prefixed
//! frame; a response frame's length is checked before anything is read for
//! it, and its header and body are decoded at the version that was asked.
//!
//! ```text
//! request:  length i32 | api_key i16 | api_version i16 | correlation_id i32 | client_id | [tags] | body
//! response: length i32 | correlation_id i32 | [tags] | body
//! ```
//!
//! The header versions (whether the tagged-field section exists) depend on
//! the API and its version; kafka-protocol's `ApiKey` knows which.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

/// The length prefix of every frame.
pub const FRAME_LENGTH_BYTES: usize = 4;
/// A response frame holds at least its correlation id.
const RESPONSE_FRAME_BYTES_MIN: usize = 4;

/// The name of an API key for messages, e.g. `Metadata`.
pub fn api_name(api_key: i16) -> String {
    match ApiKey::try_from(api_key) {
        Ok(key) => format!("{key:?}"),
        Err(()) => format!("API {api_key}"),
    }
}

/// Where the correlation id sits in a request frame: after the length
/// prefix, the API key and the API version, in every header version.
const REQUEST_CORRELATION_ID_AT: usize = FRAME_LENGTH_BYTES + 4;

/// Encodes `request` at `version` as a complete frame, length included.
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Result<BytesMut, String> {
    let api_key = ApiKey::try_from(R::KEY).map_err(|()| format!("unknown API key {}", R::KEY))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_owned())));
    let header_version = api_key.request_header_version(version);
    let header_bytes = header.compute_size(header_version).map_err(|e| e.to_string())?;
    let body_bytes = request.compute_size(version).map_err(|e| e.to_string())?;
    let length = header_bytes + body_bytes;
    let length_i32 = i32::try_from(length).map_err(|_| format!("request of {length} bytes is too large"))?;

    let mut buf = BytesMut::with_capacity(FRAME_LENGTH_BYTES + length);
    buf.put_i32(length_i32);
    header.encode(&mut buf, header_version).map_err(|e| e.to_string())?;
    request.encode(&mut buf, version).map_err(|e| e.to_string())?;
    // compute_size and encode come from the same generated code; a mismatch
    // would desynchronise the stream, so check rather than trust.
    if buf.len() != FRAME_LENGTH_BYTES + length {
        return Err(format!("encoded {} bytes, expected {}", buf.len(), FRAME_LENGTH_BYTES + length));
    }
    Ok(buf)
}

/// Rewrites the correlation id of an encoded request frame, so a frame can
/// be encoded before its place in the connection's sequence is known.
pub fn set_correlation_id(frame: &mut [u8], correlation_id: i32) {
    frame[REQUEST_CORRELATION_ID_AT..REQUEST_CORRELATION_ID_AT + 4]
        .copy_from_slice(&correlation_id.to_be_bytes());
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    TooLarge { len_bytes: u64 },
    TooShort { len_bytes: u64 },
}

/// Checks a response frame's length prefix against `frame_bytes_max`, so
/// no length a peer sent is allocated unchecked. Returns the body length.
pub fn response_length(
    prefix: [u8; FRAME_LENGTH_BYTES],
    frame_bytes_max: usize,
) -> Result<usize, FrameError> {
    let declared = i32::from_be_bytes(prefix);
    let len_bytes = u64::try_from(declared).map_err(|_| FrameError::TooShort { len_bytes: 0 })?;
    let len = usize::try_from(declared).map_err(|_| FrameError::TooLarge { len_bytes })?;
    if len < RESPONSE_FRAME_BYTES_MIN {
        return Err(FrameError::TooShort { len_bytes });
    }
    if len > frame_bytes_max {
        return Err(FrameError::TooLarge { len_bytes });
    }
    Ok(len)
}

/// The correlation id at the start of a response frame (after the length).
pub fn correlation_id(frame: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// Decodes a response frame (without its length prefix) to `R::Response`
/// at `version`. Returns the correlation id from the header with it.
pub fn decode_response<R: Request>(frame: Bytes, version: i16) -> Result<(i32, R::Response), String> {
    let api_key = ApiKey::try_from(R::KEY).map_err(|()| format!("unknown API key {}", R::KEY))?;
    let mut buf = frame;
    let header = ResponseHeader::decode(&mut buf, api_key.response_header_version(version))
        .map_err(|e| format!("bad response header: {e}"))?;
    let body = R::Response::decode(&mut buf, version)
        .map_err(|e| format!("bad {} v{version} response: {e}", api_name(R::KEY)))?;
    Ok((header.correlation_id, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    use kafka_protocol::protocol::decode_request_header_from_buffer;

    /// A request frame carries its own length, then a header a broker
    /// decodes to the same API, version and correlation id (set after
    /// encoding, as the connection does).
    #[test]
    fn request_frame_round_trips_through_a_broker_decoder() {
        for version in [1, 9, 12] {
            let mut frame = encode_request(&MetadataRequest::default().with_topics(None), version, 0, "t")
                .expect("encodes");
            set_correlation_id(&mut frame, 77);
            let frame = frame.freeze();
            let declared = i32::from_be_bytes(frame[..4].try_into().expect("4 bytes"));
            assert_eq!(declared as usize, frame.len() - 4);
            let mut rest = frame.slice(4..);
            let header = decode_request_header_from_buffer(&mut rest).expect("header");
            assert_eq!(header.request_api_key, 3);
            assert_eq!(header.request_api_version, version);
            assert_eq!(header.correlation_id, 77);
            let body = MetadataRequest::decode(&mut rest, version).expect("body");
            assert_eq!(body.topics, None);
        }
    }

    #[test]
    fn response_lengths_are_bounded_before_allocation() {
        assert_eq!(response_length(10i32.to_be_bytes(), 100), Ok(10));
        assert_eq!(response_length(100i32.to_be_bytes(), 100), Ok(100));
        assert_eq!(response_length(101i32.to_be_bytes(), 100), Err(FrameError::TooLarge { len_bytes: 101 }));
        assert_eq!(
            response_length(i32::MAX.to_be_bytes(), 1 << 20),
            Err(FrameError::TooLarge { len_bytes: i32::MAX as u64 })
        );
        assert_eq!(response_length(3i32.to_be_bytes(), 100), Err(FrameError::TooShort { len_bytes: 3 }));
        assert_eq!(response_length((-5i32).to_be_bytes(), 100), Err(FrameError::TooShort { len_bytes: 0 }));
    }

    #[test]
    fn response_decodes_with_flexible_and_classic_headers() {
        for version in [1i16, 9, 13] {
            let response = MetadataResponse::default().with_controller_id(3.into());
            let header_version = ApiKey::Metadata.response_header_version(version);
            let mut buf = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(5)
                .encode(&mut buf, header_version)
                .expect("header");
            response.encode(&mut buf, version).expect("body");
            let frame = buf.freeze();
            assert_eq!(correlation_id(&frame), Some(5));
            let (id, decoded) = decode_response::<MetadataRequest>(frame, version).expect("decodes");
            assert_eq!(id, 5);
            assert_eq!(decoded.controller_id, 3);
        }
    }

    #[test]
    fn truncated_responses_are_errors_not_panics() {
        assert_eq!(correlation_id(&[0, 0, 1]), None);
        let err = decode_response::<MetadataRequest>(Bytes::from_static(&[0, 0, 0, 1, 0, 0]), 1).unwrap_err();
        assert!(err.contains("Metadata"), "{err}");
    }
}
