//! A request frame in; a decoded request, or the reason to refuse it, out.
//! Nothing here does I/O, so every malformed input can be tested (and
//! fuzzed) without a socket.

use super::bounds::{self, BoundsError};
use super::header::{peek_prefix, REQUEST_HEADER_BYTES_MIN};
use super::schema::request_fields;
use super::versions::{self, is_supported};
use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use std::net::SocketAddr;

/// What a well-formed frame asks for.
// Moved once per request, never stored in bulk: boxing the large variant
// would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// A request of an implemented API and version, decoded.
    Request(Request),
    /// ApiVersions at a version we do not implement (a client newer than
    /// us). Kafka answers it at version 0 with UNSUPPORTED_VERSION and its
    /// own ranges, so the client can retry with one we know; its header and
    /// body, whose layout depends on that version, are not read.
    ApiVersionsUnsupported { correlation_id: i32 },
}

#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
    /// Bytes after the body that no field claimed (tolerated, as Kafka
    /// does; reported for logs).
    pub trailing_bytes: usize,
    /// The client's address, set by the connection (`None` from `parse`):
    /// JoinGroup records it as the member's host.
    pub peer: Option<SocketAddr>,
    /// The listener the request came in on, when that is not the default
    /// listener (`handlers::listener_address`).
    pub arrived_on: Option<std::sync::Arc<crate::handlers::listener_address::Route>>,
    /// Who sent it, set by the connection once the client is authenticated
    /// (`User:ANONYMOUS` from `parse`).
    pub caller: crate::security::authorize::Caller,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
}

/// Why a frame is refused. Kafka closes the connection on each of these:
/// without a parsed request there is no response the client could match.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("frame of {len} bytes is shorter than a request header ({REQUEST_HEADER_BYTES_MIN})")]
    TooShort { len: usize },
    #[error("unknown API key {api_key}")]
    UnknownApi { api_key: i16 },
    #[error("{api_key:?} version {version} is not implemented")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    #[error("malformed request header: {0}")]
    Header(String),
    #[error("malformed {api_key:?} v{version} request: {error}")]
    Bounds { api_key: ApiKey, version: i16, error: BoundsError },
    #[error("malformed {api_key:?} v{version} request: {error}")]
    Body { api_key: ApiKey, version: i16, error: String },
}

/// What the walk over a frame found, before anything is decoded.
#[derive(Clone, Copy, Debug)]
pub enum Checked {
    /// A request of an implemented API and version, its layout sound.
    Request(Layout),
    /// See `Parsed::ApiVersionsUnsupported`.
    ApiVersionsUnsupported { correlation_id: i32 },
}

#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub api_key: ApiKey,
    pub version: i16,
    header_version: i16,
    /// Bytes of the frame the header and body take; any after them are
    /// claimed by no field.
    pub extent: usize,
}

/// Parses one request frame (without its length prefix).
pub fn parse(frame: Bytes, elements_max: usize) -> Result<Parsed, ParseError> {
    match check(&frame, elements_max)? {
        Checked::Request(layout) => decode(frame, layout).map(Parsed::Request),
        Checked::ApiVersionsUnsupported { correlation_id } => {
            Ok(Parsed::ApiVersionsUnsupported { correlation_id })
        }
    }
}

/// Checks a frame's API, version and layout (`bounds`) without decoding it.
pub fn check(frame: &[u8], elements_max: usize) -> Result<Checked, ParseError> {
    let prefix = peek_prefix(frame).ok_or(ParseError::TooShort { len: frame.len() })?;
    let api_key =
        ApiKey::try_from(prefix.api_key).map_err(|()| ParseError::UnknownApi { api_key: prefix.api_key })?;
    let version = prefix.api_version;
    if !is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            return Ok(Checked::ApiVersionsUnsupported { correlation_id: prefix.correlation_id });
        }
        return Err(ParseError::UnsupportedVersion { api_key, version });
    }
    let header_version = api_key.request_header_version(version);
    // Every supported API has a schema; the lookup cannot miss, but a
    // missing one must refuse the request, never skip the check.
    let fields = request_fields(api_key).ok_or(ParseError::UnsupportedVersion { api_key, version })?;
    // The header and the body are walked before either is decoded.
    let extent = bounds::check_frame(header_version, fields, version, frame, elements_max)
        .map_err(|error| ParseError::Bounds { api_key, version, error })?;
    Ok(Checked::Request(Layout { api_key, version, header_version, extent }))
}

/// Decodes a frame `check` passed, or its first `layout.extent` bytes.
pub fn decode(frame: Bytes, layout: Layout) -> Result<Request, ParseError> {
    let Layout { api_key, version, header_version, .. } = layout;
    debug_assert!(frame.len() >= layout.extent);
    let mut buf = frame;
    let header =
        RequestHeader::decode(&mut buf, header_version).map_err(|e| ParseError::Header(e.to_string()))?;
    let body = RequestKind::decode(api_key, &mut buf, version).map_err(|e| ParseError::Body {
        api_key,
        version,
        error: e.to_string(),
    })?;
    debug_assert!(versions::supported(api_key).is_some());
    Ok(Request {
        api_key,
        header,
        body,
        trailing_bytes: buf.remaining(),
        peer: None,
        arrived_on: None,
        caller: crate::security::authorize::Caller::anonymous(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    const ELEMENTS_MAX: usize = 1000;

    fn frame<T: Encodable>(api_key: ApiKey, version: i16, body: &T) -> BytesMut {
        let mut buf = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        header.encode(&mut buf, api_key.request_header_version(version)).unwrap();
        body.encode(&mut buf, version).unwrap();
        buf
    }

    #[test]
    fn decodes_a_supported_request() {
        let body = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("t"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let Parsed::Request(r) = parse(frame(ApiKey::ApiVersions, 3, &body).freeze(), ELEMENTS_MAX).unwrap()
        else {
            panic!("not a request")
        };
        assert_eq!(r.header.correlation_id, 42);
        assert_eq!(r.trailing_bytes, 0);
        assert!(matches!(r.body, RequestKind::ApiVersions(_)));
    }

    /// Bytes after the body are found by the walk, so the request decodes
    /// the same from the frame or from its first `extent` bytes.
    #[test]
    fn padding_after_the_body_is_outside_the_extent() {
        let mut padded = frame(ApiKey::Metadata, 1, &MetadataRequest::default());
        let extent = padded.len();
        padded.extend_from_slice(&[0xab; 1000]);
        let padded = padded.freeze();
        let Checked::Request(layout) = check(&padded, ELEMENTS_MAX).unwrap() else { panic!("not a request") };
        assert_eq!(layout.extent, extent);
        assert_eq!(decode(padded.clone(), layout).unwrap().trailing_bytes, 1000);
        let kept = decode(padded.slice(..extent), layout).unwrap();
        assert_eq!(kept.trailing_bytes, 0);
        assert_eq!(kept.header.correlation_id, 42);
        assert!(matches!(kept.body, RequestKind::Metadata(_)));
    }

    #[test]
    fn a_too_new_api_versions_gets_the_fallback() {
        let mut f = BytesMut::new();
        f.extend_from_slice(&[0, 18, 0, 99, 0, 0, 0, 7]);
        f.extend_from_slice(b"whatever a future version holds");
        let parsed = parse(f.freeze(), ELEMENTS_MAX).unwrap();
        assert!(matches!(parsed, Parsed::ApiVersionsUnsupported { correlation_id: 7 }));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            parse(Bytes::from_static(&[0, 3, 0]), ELEMENTS_MAX),
            Err(ParseError::TooShort { len: 3 })
        ));
        let unknown = Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(parse(unknown, ELEMENTS_MAX), Err(ParseError::UnknownApi { .. })));
        let old = frame(ApiKey::Metadata, 13, &MetadataRequest::default()).freeze();
        assert!(matches!(parse(old, ELEMENTS_MAX), Err(ParseError::UnsupportedVersion { .. })));
        // A valid v1 header (client id "test") followed by a truncated body.
        let mut truncated = frame(ApiKey::Metadata, 1, &MetadataRequest::default());
        truncated.truncate(truncated.len() - 2);
        assert!(matches!(parse(truncated.freeze(), ELEMENTS_MAX), Err(ParseError::Bounds { .. })));
        // A header whose client id runs past the frame: the walk, which
        // covers the header too, refuses it before anything is decoded.
        let bad_header = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 50, b'x']);
        assert!(matches!(
            parse(bad_header, ELEMENTS_MAX),
            Err(ParseError::Bounds { error: BoundsError::Truncated { at: 10 }, .. })
        ));
        // A client id the walk passes but that is not UTF-8.
        let not_utf8 = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 1, 0xff, 0, 0, 0, 0]);
        assert!(matches!(parse(not_utf8, ELEMENTS_MAX), Err(ParseError::Header(_))));
    }
}
