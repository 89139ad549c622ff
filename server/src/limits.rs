//! Every bound the server puts on what clients can make it hold or do, in
//! one place. Each has a named default; `Limits` carries them so that tests
//! can shrink them.

/// Largest request frame accepted (Kafka's `socket.request.max.bytes`),
/// checked before a byte of the body is buffered.
pub const FRAME_SIZE_BYTES_MAX: usize = 100 * 1024 * 1024;
/// Requests one connection may have in flight at once; the connection stops
/// reading while it is at the limit. Responses still leave in request order.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 32;
/// Request bytes buffered across all connections: frames wait for room
/// before their body is read, so many large produces cannot exhaust memory.
pub const REQUEST_BYTES_IN_FLIGHT_MAX: usize = 512 * 1024 * 1024;
/// A request body must arrive within this grace plus one second per
/// `REQUEST_UPLOAD_BYTES_PER_SEC_MIN` of its length, or the connection is
/// closed: a client that announces a large frame and then trickles (or
/// sends nothing) cannot hold its share of the byte budget for long.
pub const REQUEST_BODY_GRACE_MS: u64 = 10_000;
/// The slowest upload a request body may have (1 MiB/s: a 100 MiB frame
/// has 110 s, a 1 MiB one 11 s).
pub const REQUEST_UPLOAD_BYTES_PER_SEC_MIN: u64 = 1024 * 1024;
/// Array elements one request may declare in total. kafka-protocol builds a
/// struct of tens of bytes per element, so a frame of small elements would
/// otherwise decode into many times its size.
pub const REQUEST_ARRAY_ELEMENTS_MAX: usize = 200_000;
/// Open client connections; the accept loop waits for a free slot beyond it.
pub const CONNECTIONS_MAX: usize = 4096;
/// Open client connections from one IP address (Kafka's
/// `max.connections.per.ip`); more are closed as soon as accepted, so one
/// host cannot take every slot.
pub const CONNECTIONS_PER_ADDRESS_MAX: usize = 1024;
/// A new connection must send its first request within this long.
pub const FIRST_REQUEST_MS_MAX: u64 = 10_000;
/// A response write that makes no progress for this long closes the
/// connection: a client that stops reading does not pin its responses.
pub const RESPONSE_WRITE_STALL_MS_MAX: u64 = 60_000;
/// A connection that sends nothing for this long is closed.
pub const CONNECTION_IDLE_MS_MAX: u64 = 10 * 60 * 1000;
/// Longest a fetch long-polls, whatever its `max_wait_ms` asks.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;
/// Record bytes one fetch response may carry, whatever its `max_bytes`
/// asks (Kafka's broker-side `fetch.max.bytes` default, 55 MiB).
pub const FETCH_RESPONSE_BYTES_MAX: usize = 55 * 1024 * 1024;
/// How long shutdown waits for in-flight requests before closing the broker.
pub const SHUTDOWN_DRAIN_MS_MAX: u64 = 10_000;
/// Partitions above which `/metrics` stops giving each partition its own
/// series (a scrape's size, and a Prometheus server's memory, would grow
/// with them) and gives per-topic sums instead; above it in topics, only
/// broker-wide totals.
pub const METRICS_PARTITION_SERIES_MAX: usize = 2_000;
/// Concurrent connections to the metrics endpoint.
pub const METRICS_CONNECTIONS_MAX: usize = 16;
/// Largest HTTP request head the metrics endpoint reads.
pub const METRICS_REQUEST_BYTES_MAX: usize = 8 * 1024;
/// Time a metrics client has to send its request head.
pub const METRICS_REQUEST_MS_MAX: u64 = 5_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub frame_size_bytes_max: usize,
    pub requests_in_flight_max: usize,
    pub request_bytes_in_flight_max: usize,
    pub request_array_elements_max: usize,
    pub request_body_grace_ms: u64,
    pub request_upload_bytes_per_sec_min: u64,
    pub connections_max: usize,
    pub connections_per_address_max: usize,
    pub first_request_ms_max: u64,
    pub response_write_stall_ms_max: u64,
    pub connection_idle_ms_max: u64,
    pub fetch_wait_ms_max: u64,
    pub fetch_response_bytes_max: usize,
    pub shutdown_drain_ms_max: u64,
    pub metrics_partition_series_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            frame_size_bytes_max: FRAME_SIZE_BYTES_MAX,
            requests_in_flight_max: REQUESTS_IN_FLIGHT_MAX,
            request_bytes_in_flight_max: REQUEST_BYTES_IN_FLIGHT_MAX,
            request_array_elements_max: REQUEST_ARRAY_ELEMENTS_MAX,
            request_body_grace_ms: REQUEST_BODY_GRACE_MS,
            request_upload_bytes_per_sec_min: REQUEST_UPLOAD_BYTES_PER_SEC_MIN,
            connections_max: CONNECTIONS_MAX,
            connections_per_address_max: CONNECTIONS_PER_ADDRESS_MAX,
            first_request_ms_max: FIRST_REQUEST_MS_MAX,
            response_write_stall_ms_max: RESPONSE_WRITE_STALL_MS_MAX,
            connection_idle_ms_max: CONNECTION_IDLE_MS_MAX,
            fetch_wait_ms_max: FETCH_WAIT_MS_MAX,
            fetch_response_bytes_max: FETCH_RESPONSE_BYTES_MAX,
            shutdown_drain_ms_max: SHUTDOWN_DRAIN_MS_MAX,
            metrics_partition_series_max: METRICS_PARTITION_SERIES_MAX,
        }
    }
}

impl Limits {
    /// How long a request body of `len` bytes may take to arrive.
    pub fn body_deadline(&self, len: usize) -> std::time::Duration {
        let upload_ms = (len as u64).saturating_mul(1000) / self.request_upload_bytes_per_sec_min;
        std::time::Duration::from_millis(self.request_body_grace_ms.saturating_add(upload_ms))
    }

    /// Checks that the limits can all be met together.
    pub fn validate(&self) -> Result<(), String> {
        if self.frame_size_bytes_max < crate::protocol::header::REQUEST_HEADER_BYTES_MIN {
            return Err(format!(
                "frame_size_bytes_max {} cannot hold a request header",
                self.frame_size_bytes_max
            ));
        }
        if self.frame_size_bytes_max > i32::MAX as usize {
            return Err(format!(
                "frame_size_bytes_max {} exceeds Kafka's i32 length",
                self.frame_size_bytes_max
            ));
        }
        // A frame must fit in the shared budget, or reading it would wait
        // forever.
        if self.request_bytes_in_flight_max < self.frame_size_bytes_max {
            return Err(format!(
                "request_bytes_in_flight_max {} must be at least frame_size_bytes_max {}",
                self.request_bytes_in_flight_max, self.frame_size_bytes_max
            ));
        }
        if self.request_upload_bytes_per_sec_min == 0 {
            return Err("request_upload_bytes_per_sec_min must be positive".into());
        }
        if self.requests_in_flight_max == 0
            || self.connections_max == 0
            || self.connections_per_address_max == 0
        {
            return Err(
                "requests_in_flight_max, connections_max and connections_per_address_max must be positive"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_consistent() {
        Limits::default().validate().unwrap();
    }

    #[test]
    fn a_frame_larger_than_the_budget_is_refused() {
        let limits = Limits { request_bytes_in_flight_max: FRAME_SIZE_BYTES_MAX - 1, ..Limits::default() };
        assert!(limits.validate().is_err());
    }
}
