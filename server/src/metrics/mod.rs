//! Prometheus metrics: counters updated on the request path, and a text
//! rendering that adds the broker's partition state at scrape time.
//!
//! - `histogram`: fixed-bucket latency histograms.
//! - `http`: the minimal HTTP/1.1 listener serving `GET /metrics`.
//! - `group_lag`: consumer group lag from committed offsets.
//! - `process_memory`: resident set, memory limit, the cache's budget.

mod group_lag;
pub mod histogram;
pub mod http;
mod process_memory;

use crate::metered_disk::{MeteredDisk, ServerBroker};
use crate::protocol::versions::{index_of, SUPPORTED};
use histogram::Histogram;
use kafka_protocol::messages::ApiKey;
use ringtail_engine::broker::Partition;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A counter of the storage backend: name, help, value.
pub type IoCounter = (&'static str, &'static str, u64);

/// What a scrape samples from outside `Metrics`.
pub struct Sampled {
    /// The storage backend's own counters (name, help, value), e.g.
    /// io_uring submissions.
    pub io_counters: Vec<IoCounter>,
    /// The data directory's disk's, when known.
    pub free_bytes: Option<u64>,
    /// The request budget's bytes taken (`net::budget`).
    pub request_bytes_held: usize,
}

/// What the server counts. Shared by every connection; all atomics.
#[derive(Debug)]
pub struct Metrics {
    io_backend: &'static str,
    /// `Limits::metrics_partition_series_max`.
    pub partition_series_max: AtomicUsize,
    /// Request latency per implemented API, in `SUPPORTED` order.
    requests: [Histogram; SUPPORTED.len()],
    /// Time from a request's arrival to its response leaving for the
    /// socket, per API: the handler, the wait for earlier responses on the
    /// connection (Kafka answers in request order) and the write.
    responses: [Histogram; SUPPORTED.len()],
    /// Requests whose response carried an error, per API.
    request_errors: [AtomicU64; SUPPORTED.len()],
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub connections_open: AtomicI64,
    pub connections_accepted: AtomicU64,
    /// Connections closed because a frame or request was malformed or
    /// asked for an API or version we do not implement.
    pub connections_closed_by_protocol_error: AtomicU64,
    /// Closed because a request body arrived below the minimum rate.
    pub connections_closed_slow_upload: AtomicU64,
    /// Closed at once: too many from one address.
    pub connections_refused_per_address: AtomicU64,
    /// Connections to an SSL listener whose TLS handshake failed or did
    /// not come in time.
    pub tls_handshakes_failed: AtomicU64,
    pub sasl_authentications: AtomicU64,
    pub sasl_authentication_failures: AtomicU64,
    /// Requests (or parts of them) the authorizer refused.
    pub authorization_denials: AtomicU64,
    /// Responses held back for a user over its quota.
    pub quota_throttled_requests: AtomicU64,
    /// fdatasync latency of the data files (see `metered_disk`).
    pub fsync: Histogram,
}

impl Metrics {
    pub fn new(io_backend: &'static str) -> Arc<Metrics> {
        Arc::new(Metrics {
            io_backend,
            partition_series_max: AtomicUsize::new(crate::limits::METRICS_PARTITION_SERIES_MAX),
            requests: std::array::from_fn(|_| Default::default()),
            responses: std::array::from_fn(|_| Default::default()),
            request_errors: std::array::from_fn(|_| Default::default()),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_closed_by_protocol_error: AtomicU64::new(0),
            connections_closed_slow_upload: AtomicU64::new(0),
            connections_refused_per_address: AtomicU64::new(0),
            tls_handshakes_failed: AtomicU64::new(0),
            sasl_authentications: AtomicU64::new(0),
            sasl_authentication_failures: AtomicU64::new(0),
            authorization_denials: AtomicU64::new(0),
            quota_throttled_requests: AtomicU64::new(0),
            fsync: Histogram::default(),
        })
    }

    pub fn observe_request(&self, api_key: ApiKey, elapsed: Duration, failed: bool) {
        if let Some(i) = index_of(api_key) {
            self.requests[i].observe(elapsed);
            if failed {
                self.request_errors[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A response (or, for acks=0, its absence) has left for the socket
    /// `elapsed` after its request arrived.
    pub fn observe_response(&self, api_key: ApiKey, elapsed: Duration) {
        if let Some(i) = index_of(api_key) {
            self.responses[i].observe(elapsed);
        }
    }

    /// The Prometheus text exposition of everything, broker state and
    /// what was `sampled` at scrape time included.
    pub fn render(&self, broker: &ServerBroker, sampled: &Sampled) -> String {
        let Sampled { io_counters, free_bytes, request_bytes_held } = sampled;
        let mut out = String::with_capacity(16 * 1024);
        self.render_requests(&mut out);
        self.render_network(&mut out);
        let series_max = self.partition_series_max.load(Ordering::Relaxed);
        render_partitions(&mut out, broker, series_max);
        group_lag::render(&mut out, broker, series_max);
        render_log_cache(&mut out, broker);
        process_memory::render(&mut out, broker);
        header(&mut out, "ringtail_io_backend_info", "gauge", "The storage I/O backend in use.");
        let _ = writeln!(out, "ringtail_io_backend_info{{backend=\"{}\"}} 1", self.io_backend);
        header(&mut out, "ringtail_fsync_duration_seconds", "histogram", "fdatasync latency of data files.");
        self.fsync.render(&mut out, "ringtail_fsync_duration_seconds", "");
        for (name, help, value) in io_counters {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        if let Some(free) = free_bytes {
            let name = "ringtail_data_dir_free_bytes";
            header(&mut out, name, "gauge", "Bytes still free for the broker on the data directory's disk.");
            let _ = writeln!(out, "{name} {free}");
        }
        let name = "ringtail_request_bytes_held";
        header(
            &mut out,
            name,
            "gauge",
            "Bytes of request frames in memory (read, or held by their handlers).",
        );
        let _ = writeln!(out, "{name} {request_bytes_held}");
        out
    }

    fn render_requests(&self, out: &mut String) {
        header(out, "ringtail_requests_total", "counter", "Requests answered, by API.");
        for (i, s) in SUPPORTED.iter().enumerate() {
            let _ =
                writeln!(out, "ringtail_requests_total{{api=\"{:?}\"}} {}", s.key, self.requests[i].count());
        }
        header(out, "ringtail_request_errors_total", "counter", "Requests answered with an error, by API.");
        for (i, s) in SUPPORTED.iter().enumerate() {
            let errors = self.request_errors[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "ringtail_request_errors_total{{api=\"{:?}\"}} {errors}", s.key);
        }
        header(
            out,
            "ringtail_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its response being ready, by API (fetch long polls included).",
        );
        for (i, s) in SUPPORTED.iter().enumerate() {
            self.requests[i].render(
                out,
                "ringtail_request_duration_seconds",
                &format!("api=\"{:?}\"", s.key),
            );
        }
        header(
            out,
            "ringtail_request_total_seconds",
            "histogram",
            "Time from a request's arrival to its response being written to the socket, by API: \
             ringtail_request_duration_seconds plus the wait for earlier responses on the connection.",
        );
        for (i, s) in SUPPORTED.iter().enumerate() {
            self.responses[i].render(out, "ringtail_request_total_seconds", &format!("api=\"{:?}\"", s.key));
        }
    }

    fn render_network(&self, out: &mut String) {
        let counters = [
            (
                "ringtail_network_received_bytes_total",
                "Bytes of Kafka requests received.",
                &self.bytes_received,
            ),
            ("ringtail_network_sent_bytes_total", "Bytes of Kafka responses sent.", &self.bytes_sent),
            (
                "ringtail_connections_accepted_total",
                "Kafka connections accepted.",
                &self.connections_accepted,
            ),
            (
                "ringtail_connections_protocol_errors_total",
                "Kafka connections closed for a malformed or unsupported request.",
                &self.connections_closed_by_protocol_error,
            ),
            (
                "ringtail_connections_slow_upload_total",
                "Kafka connections closed because a request body arrived below the minimum rate.",
                &self.connections_closed_slow_upload,
            ),
            (
                "ringtail_connections_refused_per_address_total",
                "Kafka connections closed at once because their address had too many open.",
                &self.connections_refused_per_address,
            ),
            (
                "ringtail_tls_handshakes_failed_total",
                "Connections to SSL listeners closed because their TLS handshake failed or timed out.",
                &self.tls_handshakes_failed,
            ),
            (
                "ringtail_sasl_authentications_total",
                "Successful SASL authentications.",
                &self.sasl_authentications,
            ),
            (
                "ringtail_sasl_authentication_failures_total",
                "Failed SASL authentications (each closes its connection).",
                &self.sasl_authentication_failures,
            ),
            (
                "ringtail_authorization_denials_total",
                "Resources a request named that its principal may not use (each answered *_AUTHORIZATION_FAILED).",
                &self.authorization_denials,
            ),
            (
                "ringtail_quota_throttled_requests_total",
                "Produce and fetch responses held back because their user was over its quota.",
                &self.quota_throttled_requests,
            ),
        ];
        for (name, help, value) in counters {
            header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        header(out, "ringtail_connections", "gauge", "Open Kafka connections.");
        let _ = writeln!(out, "ringtail_connections {}", self.connections_open.load(Ordering::Relaxed));
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Prometheus label values escape backslash, quote and newline. Topic names
/// cannot hold them, but the rendering must not depend on that.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn render_log_cache(out: &mut String, broker: &ServerBroker) {
    let stats = broker.cache_stats();
    let rows: [(&str, &str, &str, u64); 6] = [
        (
            "ringtail_log_cache_capacity_bytes",
            "gauge",
            "Memory budget of the log cache in force (below the configured one under memory pressure).",
            stats.capacity_bytes as u64,
        ),
        (
            "ringtail_log_cache_bytes",
            "gauge",
            "Recently written log bytes held in memory.",
            stats.bytes as u64,
        ),
        ("ringtail_log_cache_hits_total", "counter", "Log reads served from the cache.", stats.hits),
        ("ringtail_log_cache_misses_total", "counter", "Log reads that went to the disk.", stats.misses),
        (
            "ringtail_open_segment_files",
            "gauge",
            "Sealed segment files held open (at most --open-segments-max).",
            stats.open_segment_files as u64,
        ),
        (
            "ringtail_segment_file_opens_total",
            "counter",
            "Sealed segment files opened again to be read.",
            stats.segment_file_opens,
        ),
    ];
    for (name, kind, help, value) in rows {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

fn render_partitions(out: &mut String, broker: &ServerBroker, series_max: usize) {
    let topics = broker.topics();
    let partitions = broker.hosted_partitions();
    let all_partitions: usize = topics.values().map(|t| t.partitions.len()).sum();
    header(out, "ringtail_partitions", "gauge", "Partitions of all topics, and those with a replica here.");
    let _ = writeln!(out, "ringtail_partitions{{replica=\"any\"}} {all_partitions}");
    let _ = writeln!(out, "ringtail_partitions{{replica=\"here\"}} {}", partitions.len());
    let per_partition = all_partitions.max(partitions.len()) <= series_max;
    header(
        out,
        "ringtail_partition_series_omitted",
        "gauge",
        "1 when there are too many partitions for a series each (see the README's limits); per-topic sums instead.",
    );
    let _ = writeln!(out, "ringtail_partition_series_omitted {}", u8::from(!per_partition));
    if !per_partition {
        render_topic_sums(out, &partitions, topics.len() <= series_max);
    }
    type Gauge = (
        &'static str,
        &'static str,
        fn(&ringtail_engine::broker::Partition<crate::metered_disk::MeteredDisk>) -> u64,
    );
    let gauges: [Gauge; 5] = [
        ("ringtail_partition_log_end_offset", "Next offset the partition will write.", |p| {
            p.log.log_end_offset()
        }),
        ("ringtail_partition_high_watermark", "Offset below which consumers read.", |p| p.high_watermark()),
        ("ringtail_partition_log_start_offset", "First offset kept after retention.", |p| {
            p.log.log_start_offset()
        }),
        ("ringtail_partition_segments", "Segment files of the partition.", |p| {
            p.log.segment_stats().0 as u64
        }),
        ("ringtail_partition_size_bytes", "Bytes of the partition's segments.", |p| p.log.segment_stats().1),
    ];
    for (name, help, value) in gauges.into_iter().filter(|_| per_partition) {
        header(out, name, "gauge", help);
        for p in &partitions {
            let (topic, partition) = (escape(&p.tp.topic), p.tp.partition);
            let _ = writeln!(out, "{name}{{topic=\"{topic}\",partition=\"{partition}\"}} {}", value(p));
        }
    }
    if per_partition {
        header(out, "ringtail_partition_isr_size", "gauge", "In-sync replicas of the partition.");
    }
    let mut under_replicated = 0;
    for (name, topic) in &topics {
        for (i, assignment) in topic.partitions.iter().enumerate() {
            if per_partition {
                let _ = writeln!(
                    out,
                    "ringtail_partition_isr_size{{topic=\"{}\",partition=\"{i}\"}} {}",
                    escape(name),
                    assignment.isr.len()
                );
            }
            if assignment.isr.len() < assignment.replicas.len() {
                under_replicated += 1;
            }
        }
    }
    header(
        out,
        "ringtail_under_replicated_partitions",
        "gauge",
        "Partitions whose ISR is smaller than their replica set.",
    );
    let _ = writeln!(out, "ringtail_under_replicated_partitions {under_replicated}");
    header(
        out,
        "ringtail_offline_partitions",
        "gauge",
        "Partition replicas here whose log was found damaged at start-up and is kept closed.",
    );
    let _ = writeln!(out, "ringtail_offline_partitions {}", broker.offline_partitions().len());
    header(out, "ringtail_topics", "gauge", "Topics known to this broker.");
    let _ = writeln!(out, "ringtail_topics {}", topics.len());
}

/// Per-topic sums of the partitions hosted here (`by_topic`), or only the
/// broker-wide ones.
fn render_topic_sums(out: &mut String, partitions: &[Arc<Partition<MeteredDisk>>], by_topic: bool) {
    let mut sums: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for p in partitions {
        let (segments, bytes) = p.log.segment_stats();
        let key = if by_topic { p.tp.topic.as_str() } else { "" };
        let sum = sums.entry(key).or_default();
        sum.0 += segments as u64;
        sum.1 += bytes;
    }
    header(
        out,
        "ringtail_topic_segments",
        "gauge",
        "Segment files of the topic's partitions hosted here (all topics: no label).",
    );
    for (topic, (segments, _)) in &sums {
        let _ = writeln!(out, "ringtail_topic_segments{} {segments}", topic_label(topic));
    }
    header(
        out,
        "ringtail_topic_size_bytes",
        "gauge",
        "Bytes of the topic's partitions hosted here (all topics: no label).",
    );
    for (topic, (_, bytes)) in &sums {
        let _ = writeln!(out, "ringtail_topic_size_bytes{} {bytes}", topic_label(topic));
    }
}

fn topic_label(topic: &str) -> String {
    if topic.is_empty() {
        String::new()
    } else {
        format!("{{topic=\"{}\"}}", escape(topic))
    }
}
