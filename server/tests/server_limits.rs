//! The named limits, shrunk so that tests can reach them: idle connections
//! are closed, connections beyond the limit wait for a slot, frames above
//! the size limit close the connection, and a connection at its in-flight
//! limit still answers everything in order.

mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
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

/// A connection that never sends a request is closed after the first
/// request deadline; one that did send is held only to the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_must_send_its_first_request_soon() {
    let dir = data_dir("first-request");
    let server = start_with(dir.path(), |l| l.first_request_ms_max = 300).await;
    let mut talker = Client::connect(server.kafka_addr).await;
    assert!(api_versions_ok(&mut talker).await);
    let mut silent = Client::connect(server.kafka_addr).await;
    let started = Instant::now();
    assert!(silent.is_closed_by_server().await);
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(api_versions_ok(&mut talker).await, "a connection that spoke keeps the idle timeout");
    server.shutdown().await.unwrap();
}

/// Beyond the per-address cap a connection is closed at once; the others
/// are served, and a slot freed is taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_capped() {
    let dir = data_dir("per-address");
    let server = start_with(dir.path(), |l| l.connections_per_address_max = 2).await;
    let mut first = Client::connect(server.kafka_addr).await;
    let mut second = Client::connect(server.kafka_addr).await;
    assert!(api_versions_ok(&mut first).await && api_versions_ok(&mut second).await);
    let mut third = Client::connect(server.kafka_addr).await;
    assert!(third.is_closed_by_server().await);
    drop(first);
    // The server sees the first one go once it reads its end of stream.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = Client::connect(server.kafka_addr).await;
        again.send(3, &ApiVersionsRequest::default()).await;
        if again.read_frame().await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(api_versions_ok(&mut second).await);
    server.shutdown().await.unwrap();
}

/// A client that pipelines large fetches and never reads the answers is
/// disconnected once the socket takes nothing for the write-stall limit,
/// and other clients are served all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected() {
    let dir = data_dir("write-stall");
    let server = start_with(dir.path(), |l| l.response_write_stall_ms_max = 500).await;
    let mut client = Client::connect(server.kafka_addr).await;
    let topic = || TopicName(kafka_protocol::protocol::StrBytes::from_static_str("big"));
    let create =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(topic())
            .with_num_partitions(1)
            .with_replication_factor(-1)]);
    assert_eq!(client.call(7, &create).await.topics[0].error_code, 0);
    // About 1 MiB of records.
    let records = server_support::batch(1024, &"x".repeat(1000));
    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(topic()).with_partition_data(vec![
            produce_request::PartitionProduceData::default().with_index(0).with_records(Some(records)),
        ]),
    ]);
    let produced = client.call(9, &produce).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0, "{produced:?}");
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(2 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default().with_topic(topic()).with_partitions(vec![
            fetch_request::FetchPartition::default().with_partition(0).with_partition_max_bytes(2 << 20),
        ])]);
    // 64 fetches of 1 MiB each: far more than the socket buffers hold.
    let mut reader = Client::connect(server.kafka_addr).await;
    for _ in 0..64 {
        reader.send(12, &fetch).await;
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let started = Instant::now();
    assert!(api_versions_ok(&mut client).await);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // What the kernel buffered arrives, then the end of the stream.
    let drained = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end_bytes()).await.unwrap();
    assert!(drained < 64 << 20, "the server closed before writing all 64 answers ({drained} bytes)");
    server.shutdown().await.unwrap();
}

/// A client that creates topics without end (by CreateTopics and by naming
/// unknown topics in Metadata) stops at `--max-partitions` with
/// POLICY_VIOLATION, tiny segments are refused, and a librdkafka producer
/// is served as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_beyond_the_partition_limit_are_refused() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let dir = data_dir("max-partitions");
    let mut cfg = config(dir.path());
    cfg.topic_limits.partitions_max = 20;
    let server = serve::start(cfg).await.unwrap();
    let mut client = Client::connect(server.kafka_addr).await;
    let topic = |name: String, configs: Vec<(&str, &str)>| {
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name)))
            .with_num_partitions(1)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .into_iter()
                    .map(|(k, v)| {
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.into()))
                            .with_value(Some(StrBytes::from_string(v.into())))
                    })
                    .collect(),
            )
    };
    let tiny = CreateTopicsRequest::default()
        .with_topics(vec![topic("tiny".into(), vec![("segment.bytes", "1000")])]);
    assert_eq!(client.call(5, &tiny).await.topics[0].error_code, ResponseError::InvalidConfig.code());
    let request =
        CreateTopicsRequest::default().with_topics((0..30).map(|i| topic(format!("t{i}"), vec![])).collect());
    let codes: Vec<i16> = client.call(5, &request).await.topics.iter().map(|t| t.error_code).collect();
    let policy = ResponseError::PolicyViolation.code();
    assert_eq!(codes, [vec![0; 20], vec![policy; 10]].concat());
    let unknown = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("auto"))))]))
        .with_allow_auto_topic_creation(true);
    assert_eq!(client.call(9, &unknown).await.topics[0].error_code, policy, "auto-creation is capped too");

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", server.kafka_addr.to_string())
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let started = Instant::now();
    for i in 0..10 {
        let record = FutureRecord::<(), _>::to("t3").partition(0).payload("after");
        let delivery = producer.send(record, Duration::from_secs(20)).await.map_err(|(e, _)| e).unwrap();
        assert_eq!(delivery.offset, i);
    }
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    drop(producer);
    server.shutdown().await.unwrap();
}

/// Requests that wait hold none of the request byte budget once their
/// handler has what it needs: long-poll fetches padded to the frame limit
/// (the padding is cut off after the walk) and a JoinGroup parked for a
/// rebalance (its metadata copied). Before, these held 2.9 of the 3 MiB
/// budget, and librdkafka's produce waited behind them for the whole poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_requests_hold_no_request_budget() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    const MIB: usize = 1024 * 1024;
    const POLL_MS: i32 = 8_000;
    let dir = data_dir("waiting-budget");
    let mut cfg = server_support::group_config(dir.path());
    cfg.limits.frame_size_bytes_max = MIB;
    cfg.limits.request_bytes_in_flight_max = 3 * MIB;
    cfg.limits.fetch_wait_ms_max = POLL_MS as u64;
    let server = serve::start(cfg).await.unwrap();
    let mut admin = Client::connect(server.kafka_addr).await;
    let create =
        CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("quiet")))
            .with_num_partitions(1)
            .with_replication_factor(-1)]);
    assert_eq!(admin.call(5, &create).await.topics[0].error_code, 0);

    // Two fetches of an empty topic that wait for a MiB, each padded after
    // its body to the frame limit.
    let fetch = FetchRequest::default()
        .with_max_wait_ms(POLL_MS)
        .with_min_bytes(MIB as i32)
        .with_max_bytes(MIB as i32)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("quiet")))
            .with_partitions(vec![
                fetch_request::FetchPartition::default().with_partition_max_bytes(MIB as i32)
            ])]);
    let mut pollers = Vec::new();
    for _ in 0..2 {
        let mut frame = server_support::request_frame(ApiKey::Fetch, 4, 1, &fetch);
        frame.resize(4 + MIB, 0);
        frame[..4].copy_from_slice(&(MIB as i32).to_be_bytes());
        let mut poller = Client::connect(server.kafka_addr).await;
        poller.send_raw(&frame).await;
        pollers.push(poller);
    }
    // A member that joins and never syncs or heartbeats, then one whose
    // join (900 KiB of metadata) waits for it to rejoin or time out.
    let join = |metadata: Vec<u8>| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("parked")))
            .with_session_timeout_ms(POLL_MS)
            .with_rebalance_timeout_ms(60_000)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(metadata.into())])
    };
    let mut first = Client::connect(server.kafka_addr).await;
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("parked"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while first.call(1, &find).await.error_code != 0 {
        assert!(Instant::now() < deadline, "no coordinator for the group");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(first.call(3, &join(vec![1])).await.error_code, 0);
    let mut parked = Client::connect(server.kafka_addr).await;
    let parked_id = parked.send(3, &join(vec![7; 900 * 1024])).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = tokio::time::timeout(Duration::from_millis(100), parked.read_frame()).await;
    assert!(waiting.is_err(), "the second join should wait for the first member");

    let metrics = server_support::http(server.metrics_addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let held: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ringtail_request_bytes_held "))
        .expect("the gauge is exported")
        .parse()
        .unwrap();
    assert!(held < 64 * 1024, "waiting requests hold {held} bytes of the budget");

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", server.kafka_addr.to_string())
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let started = Instant::now();
    let value = vec![b'v'; 200 * 1024];
    let record = FutureRecord::<(), _>::to("quiet").partition(0).payload(&value);
    let delivered = producer.send(record, Duration::from_secs(20)).await.map_err(|(e, _)| e).unwrap();
    assert_eq!(delivered.offset, 0);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "librdkafka's produce waited {took:?}");

    // The padded fetches were decoded from their kept prefix: they answer
    // with the record, and the parked join is answered once the silent
    // member's session ends.
    for poller in &mut pollers {
        let answer = poller.receive::<FetchRequest>(4, 1).await;
        let records = answer.responses[0].partitions[0].records.as_ref().expect("records");
        assert!(records.len() > 200 * 1024, "{} bytes", records.len());
    }
    let answer =
        tokio::time::timeout(Duration::from_secs(30), parked.receive::<JoinGroupRequest>(3, parked_id))
            .await
            .expect("the parked join is answered");
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.members.len(), 1, "the silent member was dropped");
    drop(producer);
    server.shutdown().await.unwrap();
}

/// The `.log` files of `dir` this process holds open.
fn open_log_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir) && target.extension().is_some_and(|e| e == "log"))
        .count()
}

/// Sealed segments' files are opened when read and closed beyond
/// `--open-segments-max`: a topic of many small segments, read from the
/// start by librdkafka past the log cache, keeps its active segment and at
/// most two sealed ones open, and reads every record back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_segment_files_stay_within_their_bound() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    const RECORDS: usize = 60;
    let dir = data_dir("open-segments");
    let mut cfg = config(dir.path());
    cfg.topic_limits.segment_bytes_min = 0;
    cfg.topic_limits.open_segment_files_max = 2;
    cfg.log_cache_bytes = 0;
    let server = serve::start(cfg).await.unwrap();
    let bootstrap = server.kafka_addr.to_string();
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let topic = NewTopic::new("rolled", 1, TopicReplication::Fixed(1)).set("segment.bytes", "8192");
    let created = admin.create_topics([&topic], &AdminOptions::new()).await.unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "0")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    for i in 0..RECORDS {
        let value = format!("{i:04}-{}", "x".repeat(2000));
        let record = FutureRecord::<(), _>::to("rolled").partition(0).payload(&value);
        producer.send(record, Duration::from_secs(20)).await.map_err(|(e, _)| e).unwrap();
    }
    let segments = std::fs::read_dir(dir.path().join("rolled-0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count();
    assert!(segments >= 10, "only {segments} segments");

    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "unused")
        .set("enable.auto.commit", "false")
        .set("max.partition.fetch.bytes", "4096")
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment.add_partition_offset("rolled", 0, rdkafka::Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let (mut read, mut most_open) = (Vec::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.len() < RECORDS {
        assert!(Instant::now() < deadline, "read {} of {RECORDS}", read.len());
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.unwrap();
            read.push(String::from_utf8_lossy(&message.payload().unwrap()[..4]).into_owned());
        }
        most_open = most_open.max(open_log_files(&dir.path().join("rolled-0")));
    }
    let expected: Vec<String> = (0..RECORDS).map(|i| format!("{i:04}")).collect();
    assert_eq!(read, expected);
    assert!(most_open <= 1 + 2 + 1, "{most_open} .log files open (1 active, 2 sealed, 1 read in flight)");
    assert!(most_open >= 2, "sealed files were read through open descriptors");
    let metrics = server_support::http(server.metrics_addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(metrics.contains("ringtail_open_segment_files 2\n"), "{metrics}");
    let opens = metrics.lines().find_map(|l| l.strip_prefix("ringtail_segment_file_opens_total "));
    assert!(opens.is_some_and(|n| n.parse::<u64>().unwrap() >= 8), "{opens:?}");
    drop((consumer, producer, admin));
    server.shutdown().await.unwrap();
}
