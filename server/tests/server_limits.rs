//! The named limits, shrunk so that tests can reach them: idle connections
//! are closed, connections beyond the limit wait for a slot, frames above
//! the size limit close the connection, and a connection at its in-flight
//! limit still answers everything in order.

mod server_support;

use kafka_protocol::messages::*;
use ringtail_server::serve::{self, RunningServer};
use server_support::{config, data_dir, Client};
use std::time::{Duration, Instant};

async fn start_with(
    dir: &std::path::Path,
    change: impl FnOnce(&mut ringtail_server::limits::Limits),
) -> RunningServer {
    let mut cfg = config(dir);
    change(&mut cfg.limits);
    serve::start(cfg).await.unwrap()
}

async fn api_versions_ok(client: &mut Client) -> bool {
    client.call(3, &ApiVersionsRequest::default()).await.error_code == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let dir = data_dir("idle");
    let server = start_with(dir.path(), |l| l.connection_idle_ms_max = 200).await;
    let mut client = Client::connect(server.kafka_addr).await;
    assert!(api_versions_ok(&mut client).await);
    let started = Instant::now();
    assert!(client.is_closed_by_server().await);
    assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_for_a_slot() {
    let dir = data_dir("connections");
    let server = start_with(dir.path(), |l| l.connections_max = 1).await;
    let mut first = Client::connect(server.kafka_addr).await;
    assert!(api_versions_ok(&mut first).await);
    // The second connects (the kernel's backlog) but is not served...
    let mut second = Client::connect(server.kafka_addr).await;
    let id = second.send(3, &ApiVersionsRequest::default()).await;
    let waiting = tokio::time::timeout(Duration::from_millis(300), second.read_frame()).await;
    assert!(waiting.is_err(), "served beyond the connection limit");
    // ...until the first leaves.
    drop(first);
    assert_eq!(second.receive::<ApiVersionsRequest>(3, id).await.error_code, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_above_the_size_limit_close_the_connection() {
    let dir = data_dir("frame-size");
    let server = start_with(dir.path(), |l| l.frame_size_bytes_max = 64).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let big = ApiVersionsRequest::default()
        .with_client_software_name(kafka_protocol::protocol::StrBytes::from_string("x".repeat(100)));
    client.send(3, &big).await;
    assert!(client.is_closed_by_server().await);
    let mut fresh = Client::connect(server.kafka_addr).await;
    assert!(api_versions_ok(&mut fresh).await);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_at_its_in_flight_limit_answers_in_order() {
    let dir = data_dir("in-flight");
    let server = start_with(dir.path(), |l| l.requests_in_flight_max = 2).await;
    let mut client = Client::connect(server.kafka_addr).await;
    const REQUESTS: usize = 50;
    let mut ids = Vec::new();
    for _ in 0..REQUESTS {
        ids.push(client.send(3, &ApiVersionsRequest::default()).await);
    }
    for id in ids {
        assert_eq!(client.receive::<ApiVersionsRequest>(3, id).await.error_code, 0);
    }
    server.shutdown().await.unwrap();
}

/// Connections that announce large frames and send no body hold their
/// share of the byte budget only until their body deadline; meanwhile a
/// large frame waiting for room does not hold up anyone else's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_announced_but_never_sent_stall_nobody() {
    const MIB: usize = 1024 * 1024;
    let dir = data_dir("stall");
    let server = start_with(dir.path(), |l| {
        l.frame_size_bytes_max = MIB;
        l.request_bytes_in_flight_max = 4 * MIB + MIB / 2;
        l.request_body_grace_ms = 2_000;
    })
    .await;
    let announce = |len: usize| (len as i32).to_be_bytes();
    // Four take 4 MiB of the 4.5; a fifth waits for a whole 1 MiB.
    let mut stallers = Vec::new();
    for _ in 0..5 {
        let mut staller = Client::connect(server.kafka_addr).await;
        staller.send_raw(&announce(MIB)).await;
        stallers.push(staller);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut client = Client::connect(server.kafka_addr).await;
    for _ in 0..10 {
        assert!(api_versions_ok(&mut client).await);
    }
    let served = started.elapsed();
    assert!(served < Duration::from_millis(1_500), "a small request waited {served:?} behind the stallers");
    // Each staller is closed once its body is past due (2 s + 1 s per MiB).
    for staller in &mut stallers {
        assert!(staller.is_closed_by_server().await);
    }
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let metrics = server_support::http(server.metrics_addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(metrics.contains("ringtail_connections_slow_upload_total 5"), "{metrics}");
    assert!(api_versions_ok(&mut client).await);
    server.shutdown().await.unwrap();
}
