//! Request frames and inputs built for the seed corpus
//! (`examples/gen_seeds.rs`).

use super::{MODE_STREAM, T0};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};
use ringtail_engine::log::records::BatchBuilder;

/// A request frame (no length prefix): header with client id "fuzz", then
/// the body, as `version` of `api_key`.
pub fn request_frame<T: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")))
        .encode(&mut buf, api_key.request_header_version(version))
        .expect("encode a request header");
    body.encode(&mut buf, version).expect("encode a request body");
    buf.to_vec()
}

/// An input of one frame body.
pub fn single(frame: &[u8], mode: u8) -> Vec<u8> {
    [&[mode & !MODE_STREAM][..], frame].concat()
}

/// An input of a stream of length-prefixed frames.
pub fn stream(frames: &[Vec<u8>], mode: u8) -> Vec<u8> {
    let mut out = vec![mode | MODE_STREAM];
    for f in frames {
        out.put_i32(f.len() as i32);
        out.extend_from_slice(f);
    }
    out
}

/// A valid batch for seeds: `records` records.
pub fn seed_batch(records: i64) -> Bytes {
    let mut b = BatchBuilder::new(0, T0);
    for r in 0..records {
        b.push(Some(Bytes::from(format!("k{r}"))), Some(Bytes::from(format!("v{r}"))), T0 + r);
    }
    b.build()
}
