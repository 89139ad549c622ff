//! The Prometheus endpoint: GET /metrics answers with the request, network,
//! partition and storage series; any other request gets 404.

mod server_support;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use server_support::{batch, data_dir, http, start, Client};

fn produce_request(records: Bytes) -> ProduceRequest {
    ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("metered")))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))]),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_requests_partitions_and_storage() {
    let dir = data_dir("metrics");
    let server = start(dir.path()).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("metered"))))]));
    assert_eq!(client.call(9, &metadata).await.topics[0].error_code, 0);
    for _ in 0..3 {
        let response = client.call(9, &produce_request(batch(2, "m"))).await;
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
    let page = http(server.metrics_addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("Content-Type: text/plain; version=0.0.4"), "{page}");
    for expected in [
        "ringtail_requests_total{api=\"Produce\"} 3\n",
        "ringtail_requests_total{api=\"Metadata\"} 1\n",
        "ringtail_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 3\n",
        "ringtail_request_duration_seconds_count{api=\"Produce\"} 3\n",
        // Each response was written before the client could read it.
        "ringtail_request_total_seconds_count{api=\"Produce\"} 3\n",
        "ringtail_request_total_seconds_count{api=\"Metadata\"} 1\n",
        "ringtail_partition_log_end_offset{topic=\"metered\",partition=\"0\"} 6\n",
        "ringtail_partition_high_watermark{topic=\"metered\",partition=\"0\"} 6\n",
        "ringtail_partition_segments{topic=\"metered\",partition=\"0\"} 1\n",
        "ringtail_partition_isr_size{topic=\"metered\",partition=\"0\"} 1\n",
        "ringtail_under_replicated_partitions 0\n",
        "ringtail_connections 1\n",
        "# TYPE ringtail_fsync_duration_seconds histogram\n",
    ] {
        assert!(page.contains(expected), "missing {expected:?} in\n{page}");
    }
    let backend = format!("ringtail_io_backend_info{{backend=\"{}\"}} 1\n", server.io_backend);
    assert!(page.contains(&backend), "{page}");
    let received = page.lines().find(|l| l.starts_with("ringtail_network_received_bytes_total ")).unwrap();
    assert!(received.split(' ').nth(1).unwrap().parse::<u64>().unwrap() > 0);
    // flush=always: every acknowledged produce was fsynced.
    let fsyncs = page.lines().find(|l| l.starts_with("ringtail_fsync_duration_seconds_count ")).unwrap();
    assert!(fsyncs.split(' ').nth(1).unwrap().parse::<u64>().unwrap() >= 1, "{fsyncs}");
    let free = page.lines().find(|l| l.starts_with("ringtail_data_dir_free_bytes ")).expect("free bytes");
    assert!(free.split(' ').nth(1).unwrap().parse::<u64>().unwrap() > 0, "{free}");

    assert!(http(server.metrics_addr, "GET / HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
    assert!(http(server.metrics_addr, "POST /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
    assert!(http(server.metrics_addr, "nonsense\r\n\r\n").await.starts_with("HTTP/1.1 400"));
    server.shutdown().await.unwrap();
}

/// Past `metrics_partition_series_max` partitions, a scrape no longer grows
/// with them: per-topic sums replace the per-partition series, and past it
/// in topics too, broker-wide totals do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_series_are_bounded() {
    let dir = data_dir("metrics-bounded");
    let mut cfg = server_support::config(dir.path());
    cfg.limits.metrics_partition_series_max = 4;
    let server = ringtail_server::serve::start(cfg).await.unwrap();
    let mut client = Client::connect(server.kafka_addr).await;
    let create = |names: &[&'static str]| {
        CreateTopicsRequest::default().with_topics(
            names
                .iter()
                .map(|n| {
                    create_topics_request::CreatableTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str(n)))
                        .with_num_partitions(2)
                        .with_replication_factor(-1)
                })
                .collect(),
        )
    };
    let scrape = || http(server.metrics_addr, "GET /metrics HTTP/1.0\r\n\r\n");
    assert!(client.call(5, &create(&["a", "b"])).await.topics.iter().all(|t| t.error_code == 0));
    let four = scrape().await;
    assert!(four.contains("ringtail_partition_size_bytes{topic=\"b\",partition=\"1\"}"), "{four}");
    assert!(four.contains("\nringtail_partition_series_omitted 0\n"), "{four}");

    assert!(client.call(5, &create(&["c"])).await.topics.iter().all(|t| t.error_code == 0));
    let six = scrape().await;
    assert!(!six.contains("ringtail_partition_size_bytes{"), "{six}");
    assert!(!six.contains("ringtail_partition_isr_size{"), "{six}");
    assert!(six.contains("\nringtail_partition_series_omitted 1\n"), "{six}");
    assert!(six.contains("\nringtail_topic_segments{topic=\"c\"} 2\n"), "{six}");
    assert!(six.contains("\nringtail_partitions{replica=\"any\"} 6\n"), "{six}");

    let more: Vec<&'static str> = vec!["d", "e"];
    assert!(client.call(5, &create(&more)).await.topics.iter().all(|t| t.error_code == 0));
    let ten = scrape().await;
    assert!(!ten.contains("ringtail_topic_segments{"), "{ten}");
    assert!(ten.contains("\nringtail_topic_segments 10\n"), "{ten}");
    server.shutdown().await.unwrap();
}
