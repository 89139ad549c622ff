//! Client settings: every timeout and buffer has a named limit.

use std::time::Duration;

/// Largest response frame the client accepts by default. A fetch asks for
/// at most `fetch_bytes_max` (default 50 MiB, as Kafka's `fetch.max.bytes`),
/// and a broker may exceed that by one batch, so this leaves room for both.
pub const RESPONSE_FRAME_BYTES_MAX_DEFAULT: usize = 128 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Sent in every request header; brokers log it.
    pub client_id: String,
    pub connect_timeout: Duration,
    /// From writing a request to reading its response; a connection whose
    /// request timed out is closed, since its position in the response
    /// stream can no longer be trusted to matter to anyone.
    pub request_timeout: Duration,
    /// Requests awaiting a response on one connection (pipelining depth).
    pub in_flight_max: usize,
    /// Responses longer than this are refused before anything is allocated.
    pub response_frame_bytes_max: usize,
    /// Attempts for an operation that fails with stale metadata (wrong
    /// leader, unknown topic) or, for reads, a broken connection.
    pub attempts_max: u32,
    /// Wait before the second attempt; doubles each time up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// Whether Metadata requests let the broker create a topic they name
    /// (if the broker allows it at all). Kafka's producers ask for this;
    /// admin commands and consumers here do not.
    pub allow_auto_topic_creation: bool,
    /// TLS and SASL; none by default.
    pub security: crate::security::Security,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            client_id: "ringtail-cli".to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            in_flight_max: 16,
            response_frame_bytes_max: RESPONSE_FRAME_BYTES_MAX_DEFAULT,
            attempts_max: 8,
            retry_backoff: Duration::from_millis(50),
            retry_backoff_max: Duration::from_secs(1),
            allow_auto_topic_creation: false,
            security: Default::default(),
        }
    }
}

impl ClientConfig {
    /// Backoff before attempt `attempt` (1-based; the first retry is attempt 2).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(2).min(16);
        self.retry_backoff.saturating_mul(1 << shift).min(self.retry_backoff_max)
    }
}
