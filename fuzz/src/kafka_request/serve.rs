//! A connection's read loop over a stream, one frame through `parse`, the
//! handler and the checks, and the CRC fix-up of Produce record batches.

use super::allowed::Allowed;
use super::asked::Asked;
use super::checks::{check_changes, check_encoding, check_header, check_shape};
use super::fixture::Fixture;
use super::{FRAMES_MAX, HANDLER_TIMEOUT, VERBOSE};
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use ringtail_server::handlers::{self, Reply};
use ringtail_server::net::body_pool::BodyPool;
use ringtail_server::net::budget::RequestBudget;
use ringtail_server::net::frame::{body_length, read_prefix};
use ringtail_server::protocol::request::{parse, Parsed};

impl Fixture {
    /// A connection's read loop over `stream`, one request at a time.
    pub(super) async fn serve_stream(&self, stream: &[u8]) {
        let limits = self.ctx.limits;
        let mut reader = stream;
        let bodies = BodyPool::new(0);
        let budget = RequestBudget::new(limits.request_bytes_in_flight_max);
        for _ in 0..FRAMES_MAX {
            let prefix = match read_prefix(&mut reader).await {
                Ok(Some(prefix)) => prefix,
                Ok(None) | Err(_) => return,
            };
            let Ok(len) = body_length(prefix, limits.frame_size_bytes_max) else { return };
            if len > reader.len() {
                // The connection would wait for the rest, then close at the
                // end of the stream. (`BodyPool::read` reserves the announced
                // length first, by design, up to `frame_size_bytes_max`:
                // 100 MiB, above the fuzz allocation bound.)
                return;
            }
            let body = bodies.read(&mut reader, len).await.expect("a frame within the stream reads");
            assert_eq!(body.len(), len, "BodyPool::read returned another length than announced");
            let share = budget.try_take(len).expect("one frame fits the budget");
            let go_on = self.serve(body.into_bytes(share)).await;
            // Whatever the handler kept (group metadata, say) it copied: a
            // slice of the frame kept would hold the frame's share of the
            // request budget for good.
            assert_eq!(budget.held(), 0, "the request's bytes outlived its handler");
            if !go_on {
                return;
            }
        }
    }

    /// One frame. Returns whether the connection would read on.
    pub(super) async fn serve(&self, frame: Bytes) -> bool {
        // The correlation id as the client wrote it: bytes 4..8 in every
        // header version.
        let wire_id = frame.get(4..8).map(|b| i32::from_be_bytes(b.try_into().unwrap()));
        let request = match parse(frame, self.ctx.limits.request_array_elements_max) {
            Err(_) => return false,
            Ok(Parsed::ApiVersionsUnsupported { correlation_id }) => {
                assert_eq!(Some(correlation_id), wire_id, "fallback answer to another correlation id");
                let body = ResponseKind::ApiVersions(handlers::api_versions::unsupported_version());
                check_encoding(ApiKey::ApiVersions, 0, correlation_id, &body);
                return true;
            }
            Ok(Parsed::Request(request)) => request,
        };
        let mut request = request;
        if let (true, RequestKind::Produce(r)) = (self.fix_crc, &mut request.body) {
            for p in r.topic_data.iter_mut().flat_map(|t| t.partition_data.iter_mut()) {
                p.records = p.records.as_ref().map(|b| fix_crcs(b));
            }
        }
        check_header(&request);
        let (api_key, version) = (request.api_key, request.version());
        let correlation_id = request.header.correlation_id;
        assert_eq!(Some(correlation_id), wire_id, "the decoded header has another correlation id");
        let asked = Asked::of(&request);
        let before = self.snapshot().await;
        let reply = tokio::time::timeout(HANDLER_TIMEOUT, handlers::handle(&self.ctx, request))
            .await
            .unwrap_or_else(|_| panic!("{api_key:?} v{version} handler did not finish"));
        let after = self.snapshot().await;
        if VERBOSE.with(|v| v.get()) {
            println!("{api_key:?} v{version} -> {reply:?}");
        }
        let (allowed, go_on) = match &reply {
            Reply::Respond(body) => {
                check_encoding(api_key, version, correlation_id, body);
                check_shape(&asked, body);
                (self.allowed(&asked, body, version, &before, &after), true)
            }
            Reply::Nothing | Reply::Close(_) => {
                let Asked::Produce { acks: 0, partitions, .. } = &asked else {
                    panic!(
                        "{api_key:?} v{version} answered {reply:?}: only an acks=0 produce goes unanswered"
                    )
                };
                // Which partitions failed is not told: any may have changed.
                let allowed =
                    Allowed { produced: partitions.iter().cloned().collect(), ..Allowed::default() };
                (allowed, matches!(reply, Reply::Nothing))
            }
        };
        check_changes(&asked, &allowed, &before, &after);
        go_on
    }
}

/// `records` with the CRC of each v2 batch header found in it (walking by
/// the batch lengths) recomputed; the rest as it is.
pub fn fix_crcs(records: &[u8]) -> Bytes {
    let mut out = records.to_vec();
    let mut at = 0;
    while let Some(header) = out.get(at..at + 21) {
        let len = i32::from_be_bytes(header[8..12].try_into().unwrap());
        let Some(end) = usize::try_from(len).ok().and_then(|l| (at + 12).checked_add(l)) else { break };
        if header[16] != 2 || end > out.len() || end < at + 21 {
            break;
        }
        let crc = crc32c::crc32c(&out[at + 21..end]);
        out[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
    Bytes::from(out)
}
