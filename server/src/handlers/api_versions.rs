//! ApiVersions: the APIs and version ranges we implement.
//!
//! Kafka also rejects a v3+ request whose client software name or version
//! does not match its pattern; we accept any, since they only label the
//! client and refusing them would only break odd clients.

use crate::protocol::versions::SUPPORTED;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

pub fn handle(_request: &ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// The answer to an ApiVersions request at a version we do not know, sent
/// at version 0 whatever the request's.
pub fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys())
}

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|s| {
            ApiVersion::default().with_api_key(s.key as i16).with_min_version(s.min).with_max_version(s.max)
        })
        .collect()
}
