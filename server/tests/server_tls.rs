//! SSL listeners: Kafka over TLS beside the plaintext listener, Metadata
//! naming the listener's own address, plaintext clients refused without
//! harm to the listener, client certificates when a CA is set, certificate
//! reload, and configuration errors. Certificates are made per run (rcgen).

mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rcgen::ExtendedKeyUsagePurpose;
use ringtail_server::config::{self, ServeArgs};
use ringtail_server::serve::{self, RunningServer};
use server_support::tls::{connector, tls_connect, write_files, Ca};
use server_support::{batch, data_dir, http, Client, STEP_TIMEOUT};
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// `ringtail serve --config FILE` with FILE holding `extra`, plus test
/// addresses for everything.
fn resolve(dir: &Path, extra: &str) -> Result<config::ServeConfig, config::ConfigError> {
    let file = dir.join("ringtail.toml");
    let text = format!(
        "data-dir = {:?}\nlisten = \"127.0.0.1:0\"\nmetrics-listen = \"127.0.0.1:0\"\n{extra}",
        dir.join("data")
    );
    std::fs::write(&file, text).unwrap();
    config::resolve(&ServeArgs { config: Some(file), ..ServeArgs::default() })
}

fn ssl_listener(cert: &Path, key: &Path, client_ca: Option<&Path>) -> String {
    let ca = client_ca.map_or(String::new(), |ca| format!("tls-client-ca = {ca:?}\n"));
    format!(
        "[[listener]]\nname = \"secure\"\naddress = \"127.0.0.1:0\"\nsecurity-protocol = \"SSL\"\n\
         tls-cert = {cert:?}\ntls-key = {key:?}\n{ca}"
    )
}

async fn start(dir: &Path, extra: &str) -> RunningServer {
    serve::start(resolve(dir, extra).unwrap()).await.unwrap()
}

fn secure_addr(server: &RunningServer) -> SocketAddr {
    assert_eq!(server.listeners[0].name, "secure");
    server.listeners[0].addr
}

/// Whether a Metadata request over `connector` is answered (a refused
/// client certificate shows up, in TLS 1.3, on the first read).
async fn metadata_answered(addr: SocketAddr, connector: &TlsConnector) -> bool {
    let Ok(client) = tls_connect(addr, connector).await else { return false };
    let mut client = client;
    let frame = server_support::request_frame(ApiKey::Metadata, 9, 1, &MetadataRequest::default());
    client.send_raw(&frame).await;
    client.read_frame().await.is_some()
}

fn produce_request(value_prefix: &str) -> ProduceRequest {
    ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(TopicName(s("secrets"))).with_partition_data(
            vec![produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(3, value_prefix)))],
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_listener_serves_kafka_beside_plaintext() {
    let dir = data_dir("tls-serve");
    let ca = Ca::new("ringtail test CA");
    let (cert, key, _) = write_files(
        dir.path(),
        &ca.sign(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth),
        None,
    );
    let server = start(dir.path(), &ssl_listener(&cert, &key, None)).await;
    let secure = secure_addr(&server);
    assert!(
        server.ready_line().contains(&format!("listener secure (SSL) on {secure}")),
        "{}",
        server.ready_line()
    );

    let mut client = tls_connect(secure, &connector(&ca, None)).await.unwrap();
    let metadata = client.call(9, &MetadataRequest::default()).await;
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(
        (metadata.brokers[0].host.as_str(), metadata.brokers[0].port),
        ("127.0.0.1", i32::from(secure.port())),
        "Metadata over TLS names the TLS listener"
    );
    let topic = create_topics_request::CreatableTopic::default()
        .with_name(TopicName(s("secrets")))
        .with_num_partitions(1)
        .with_replication_factor(-1);
    let created = client.call(7, &CreateTopicsRequest::default().with_topics(vec![topic])).await;
    assert_eq!(created.topics[0].error_code, 0);
    let produced = client.call(9, &produce_request("tls")).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let coordinator = client.call(3, &FindCoordinatorRequest::default().with_key(s("g"))).await;
    assert_eq!((coordinator.error_code, coordinator.port), (0, i32::from(secure.port())));

    // The plaintext listener reads the same log and names its own address.
    let mut plain = Client::connect(server.kafka_addr).await;
    let metadata = plain.call(9, &MetadataRequest::default()).await;
    assert_eq!(metadata.brokers[0].port, i32::from(server.kafka_addr.port()));
    let fetch = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic(TopicName(s("secrets"))).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20),
        ]),
    ]);
    let fetched = plain.call(11, &fetch).await;
    let records = fetched.responses[0].partitions[0].records.clone().unwrap();
    assert!(records.windows(5).any(|w| w == b"tls-0"), "what came in over TLS is read back");
    let fetched = client.call(11, &fetch).await;
    assert_eq!(fetched.responses[0].partitions[0].high_watermark, 3);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_client_on_the_ssl_listener_is_refused_and_the_listener_serves_on() {
    let dir = data_dir("tls-plain-client");
    let ca = Ca::new("ringtail test CA");
    let (cert, key, _) =
        write_files(dir.path(), &ca.sign(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth), None);
    let server = start(dir.path(), &ssl_listener(&cert, &key, None)).await;
    let secure = secure_addr(&server);
    let mut plain = TcpStream::connect(secure).await.unwrap();
    plain
        .write_all(&server_support::request_frame(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default()))
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(STEP_TIMEOUT, async {
        let mut total = 0;
        loop {
            match plain.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .expect("the server closes the connection");
    assert!(read < 100, "no Kafka response in plaintext, at most a TLS alert ({read} bytes)");
    assert!(metadata_answered(secure, &connector(&ca, None)).await, "the listener still serves TLS clients");
    let metrics = http(server.metrics_addr, "GET /metrics HTTP/1.0\r\n\r\n").await;
    assert!(metrics.contains("ringtail_tls_handshakes_failed_total 1"), "{metrics}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_when_a_client_ca_is_set() {
    let dir = data_dir("tls-client-certs");
    let ca = Ca::new("ringtail test CA");
    let clients = Ca::new("ringtail client CA");
    let server_cert = ca.sign(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let (cert, key, client_ca) = write_files(dir.path(), &server_cert, Some(&clients));
    let server = start(dir.path(), &ssl_listener(&cert, &key, client_ca.as_deref())).await;
    let secure = secure_addr(&server);
    let trusted = clients.sign(&["alice"], ExtendedKeyUsagePurpose::ClientAuth);
    let stranger = Ca::new("someone else").sign(&["mallory"], ExtendedKeyUsagePurpose::ClientAuth);
    assert!(metadata_answered(secure, &connector(&ca, Some(&trusted))).await);
    assert!(!metadata_answered(secure, &connector(&ca, None)).await, "no certificate, no service");
    assert!(
        !metadata_answered(secure, &connector(&ca, Some(&stranger))).await,
        "a certificate the CA did not sign"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_takes_new_certificates_for_new_connections() {
    let dir = data_dir("tls-reload");
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (cert, key, _) =
        write_files(dir.path(), &old_ca.sign(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth), None);
    let server = start(dir.path(), &ssl_listener(&cert, &key, None)).await;
    let secure = secure_addr(&server);
    let mut open = tls_connect(secure, &connector(&old_ca, None)).await.unwrap();

    // A broken key file: the reload fails and the old certificate stays.
    std::fs::write(&key, "not a key").unwrap();
    server.reload_tls();
    assert!(metadata_answered(secure, &connector(&old_ca, None)).await);

    write_files(dir.path(), &new_ca.sign(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth), None);
    server.reload_tls();
    assert!(metadata_answered(secure, &connector(&new_ca, None)).await);
    assert!(!metadata_answered(secure, &connector(&old_ca, None)).await);
    let metadata = open.call(9, &MetadataRequest::default()).await;
    assert_eq!(metadata.brokers.len(), 1, "a connection made before the reload carries on");
    server.shutdown().await.unwrap();
}

#[test]
fn listener_mistakes_are_configuration_errors() {
    let dir = data_dir("tls-config");
    let ca = Ca::new("ringtail test CA");
    let (cert, key, _) =
        write_files(dir.path(), &ca.sign(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth), None);
    let problem = |extra: &str| {
        let e = resolve(dir.path(), extra).expect_err(extra);
        format!("{}: {}", e.key, e.problem)
    };
    let plain = "[[listener]]\nname = \"s\"\naddress = \"127.0.0.1:0\"\nsecurity-protocol = \"SASL_PLAINTEXT\"\nsasl-mechanisms = [\"PLAIN\"]\n";
    assert!(problem(plain).contains("PLAIN sends passwords in the clear"), "{}", problem(plain));
    let gssapi = plain.replace("[\"PLAIN\"]", "[\"GSSAPI\"]");
    assert!(problem(&gssapi).contains("GSSAPI\" is not supported"), "{}", problem(&gssapi));
    let plain_on_ssl = format!("{}sasl-plain-without-tls = true\n", ssl_listener(&cert, &key, None));
    assert!(problem(&plain_on_ssl).contains("only a SASL_PLAINTEXT listener"), "{}", problem(&plain_on_ssl));
    assert!(resolve(dir.path(), &format!("{plain}sasl-plain-without-tls = true\n")).is_ok());
    let sasl_ssl =
        "[[listener]]\nname = \"s\"\naddress = \"127.0.0.1:0\"\nsecurity-protocol = \"SASL_SSL\"\n";
    assert!(problem(sasl_ssl).starts_with("listener[0].tls-cert:"), "{}", problem(sasl_ssl));
    let no_key = format!("[[listener]]\nname = \"s\"\naddress = \"127.0.0.1:0\"\nsecurity-protocol = \"SSL\"\ntls-cert = {cert:?}\n");
    assert!(problem(&no_key).starts_with("listener[0].tls-key:"), "{}", problem(&no_key));
    let swapped = ssl_listener(&key, &cert, None);
    assert!(problem(&swapped).starts_with("listener[0].tls-cert:"), "{}", problem(&swapped));
    let taken = "[[listener]]\nname = \"plaintext\"\naddress = \"127.0.0.1:0\"\n";
    assert!(problem(taken).contains("taken"), "{}", problem(taken));
    let unknown = "[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:0\"\nport = 1\n";
    assert!(problem(unknown).starts_with("listener[0].port: unknown key"), "{}", problem(unknown));
    let tls_on_plain =
        format!("[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:0\"\ntls-cert = {cert:?}\n");
    assert!(
        problem(&tls_on_plain).contains("only an SSL or SASL_SSL listener"),
        "{}",
        problem(&tls_on_plain)
    );
    assert!(resolve(dir.path(), &ssl_listener(&cert, &key, None)).is_ok());
}
