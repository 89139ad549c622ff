//! SASL/SCRAM against a running server: a SASL_PLAINTEXT and a SASL_SSL
//! listener beside the default one; credentials stored through Kafka's
//! AlterUserScramCredentials; the right password lets a client in, and a
//! wrong password, an unknown user, a mechanism the user has no credential
//! for, or a request before authenticating are refused and closed, with
//! nothing served.

mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rcgen::ExtendedKeyUsagePurpose;
use ringtail_engine::security::scram::ScramMechanism;
use ringtail_server::config::{self, ServeArgs};
use ringtail_server::serve::{self, RunningServer};
use server_support::sasl::{authenticate, authenticate_for, listener, set_password};
use server_support::tls::{connector, tls_connect, write_files, Ca};
use server_support::{batch, data_dir, http, Client};
use std::path::Path;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

async fn start(dir: &Path, ca: &Ca) -> RunningServer {
    start_with(dir, ca, "").await
}

/// `start`, with `top` added to the config file's top level.
async fn start_with(dir: &Path, ca: &Ca, top: &str) -> RunningServer {
    let (cert, key, _) =
        write_files(dir, &ca.sign(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth), None);
    let file = dir.join("ringtail.toml");
    let text = format!(
        "data-dir = {:?}\nlisten = \"127.0.0.1:0\"\nmetrics-listen = \"127.0.0.1:0\"\n{top}\n\
         [[listener]]\nname = \"sasl\"\naddress = \"127.0.0.1:0\"\nsecurity-protocol = \"SASL_PLAINTEXT\"\n\
         [[listener]]\nname = \"secure\"\naddress = \"127.0.0.1:0\"\nsecurity-protocol = \"SASL_SSL\"\n\
         sasl-mechanisms = [\"SCRAM-SHA-512\"]\ntls-cert = {cert:?}\ntls-key = {key:?}\n",
        dir.join("data")
    );
    std::fs::write(&file, text).unwrap();
    let config = config::resolve(&ServeArgs { config: Some(file), ..ServeArgs::default() }).unwrap();
    serve::start(config).await.unwrap()
}

fn create_topic(topic: &str) -> CreateTopicsRequest {
    CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
        .with_name(TopicName(s(topic)))
        .with_num_partitions(1)
        .with_replication_factor(-1)])
}

fn produce(topic: &str) -> ProduceRequest {
    ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(TopicName(s(topic))).with_partition_data(
            vec![produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(2, "sasl")))],
        ),
    ])
}

const SASL_AUTHENTICATION_FAILED: i16 = 58;
const ILLEGAL_SASL_STATE: i16 = 34;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_lets_in_who_knows_the_password_and_no_one_else() {
    let dir = data_dir("sasl");
    let ca = Ca::new("ringtail test CA");
    let server = start(dir.path(), &ca).await;
    assert!(server.ready_line().contains("listener sasl (SASL_PLAINTEXT)"), "{}", server.ready_line());
    set_password(&server, "alice", ScramMechanism::Sha512, "right horse").await;
    let sasl = listener(&server, "sasl");

    // In, then served.
    let mut client = Client::connect(sasl).await;
    let versions = client.call(3, &ApiVersionsRequest::default()).await;
    assert!(versions.api_keys.iter().any(|k| k.api_key == 36), "SaslAuthenticate advertised");
    assert_eq!(authenticate(&mut client, ScramMechanism::Sha512, "alice", "right horse").await, Ok(()));
    let metadata = client.call(9, &MetadataRequest::default()).await;
    assert_eq!(metadata.brokers[0].port, i32::from(sasl.port()), "Metadata names the SASL listener");
    assert_eq!(client.call(7, &create_topic("after-sasl")).await.topics[0].error_code, 0);
    let produced = client.call(9, &produce("after-sasl")).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);

    // Refused, each on a connection that is then closed.
    for (mechanism, user, password) in [
        (ScramMechanism::Sha512, "alice", "wrong horse"),
        (ScramMechanism::Sha512, "mallory", "right horse"),
        (ScramMechanism::Sha256, "alice", "right horse"),
    ] {
        let mut client = Client::connect(sasl).await;
        let refused = authenticate(&mut client, mechanism, user, password).await;
        assert_eq!(refused, Err(SASL_AUTHENTICATION_FAILED), "{mechanism} {user} {password}");
        assert!(client.is_closed_by_server().await, "{mechanism} {user}: closed after failing");
    }

    // A request before authenticating is not served, and nothing it asked
    // for happens.
    let mut early = Client::connect(sasl).await;
    early.send(7, &create_topic("before-sasl")).await;
    assert!(early.read_frame().await.is_none(), "closed without an answer");
    let mut plain = Client::connect(server.kafka_addr).await;
    let metadata = plain.call(9, &MetadataRequest::default().with_topics(None)).await;
    let names: Vec<_> =
        metadata.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.as_str().to_string())).collect();
    assert!(
        names.contains(&"after-sasl".to_string()) && !names.contains(&"before-sasl".to_string()),
        "{names:?}"
    );

    // SASL on the plaintext listener is out of turn.
    let handshake = plain.call(1, &SaslHandshakeRequest::default().with_mechanism(s("SCRAM-SHA-512"))).await;
    assert_eq!(handshake.error_code, ILLEGAL_SASL_STATE);
    assert!(plain.is_closed_by_server().await);

    let metrics = http(server.metrics_addr, "GET /metrics HTTP/1.0\r\n\r\n").await;
    assert!(metrics.contains("ringtail_sasl_authentications_total 1"), "{metrics}");
    assert!(metrics.contains("ringtail_sasl_authentication_failures_total 3"), "{metrics}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_512_over_tls() {
    let dir = data_dir("sasl-ssl");
    let ca = Ca::new("ringtail test CA");
    let server = start(dir.path(), &ca).await;
    set_password(&server, "bob", ScramMechanism::Sha512, "over tls").await;
    let secure = listener(&server, "secure");
    let mut client = tls_connect(secure, &connector(&ca, None)).await.unwrap();
    assert_eq!(authenticate(&mut client, ScramMechanism::Sha512, "bob", "over tls").await, Ok(()));
    assert_eq!(client.call(7, &create_topic("tls-and-sasl")).await.topics[0].error_code, 0);
    let produced = client.call(9, &produce("tls-and-sasl")).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    // SCRAM-SHA-256 is not enabled on this listener.
    let mut other = tls_connect(secure, &connector(&ca, None)).await.unwrap();
    assert_eq!(authenticate(&mut other, ScramMechanism::Sha256, "bob", "over tls").await, Err(33));
    server.shutdown().await.unwrap();
}

/// Runs the `ringtail` binary: (exit code, stdout, stderr).
fn ringtail(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ringtail"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (output.status.code().unwrap_or(-1), text(output.stdout), text(output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reaches_a_sasl_ssl_listener_with_a_command_config() {
    let dir = data_dir("sasl-cli");
    let ca = Ca::new("ringtail test CA");
    let server = start(dir.path(), &ca).await;
    set_password(&server, "carol", ScramMechanism::Sha512, "pass word").await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let properties = |password: &str| {
        let path = dir.path().join(format!("client-{}.properties", password.len()));
        let text = format!(
            "security.protocol=SASL_SSL\nssl.ca.location={}\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.username=carol\nsasl.password={password}\n",
            ca_file.display()
        );
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (good, bad) = (properties("pass word"), properties("wrong"));
    let bootstrap = format!("localhost:{}", listener(&server, "secure").port());
    let secured = move |args: &[&str], config: &str| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--bootstrap", &bootstrap, "--command-config", config]);
        all.iter().map(|a| a.to_string()).collect::<Vec<String>>()
    };
    let run = |args: Vec<String>, stdin: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ringtail(&args, stdin)
    };
    let blocking = tokio::task::spawn_blocking(move || {
        let (code, _, stderr) = run(secured(&["topic", "create", "cli-secured"], &good), "");
        assert_eq!(code, 0, "{stderr}");
        let (code, _, stderr) = run(secured(&["produce", "cli-secured"], &good), "one\ntwo\n");
        assert_eq!(code, 0, "{stderr}");
        let (code, stdout, stderr) =
            run(secured(&["consume", "cli-secured", "--from", "earliest", "--count", "2"], &good), "");
        assert_eq!((code, stdout.as_str()), (0, "one\ntwo\n"), "{stderr}");
        let (code, _, stderr) = run(secured(&["topic", "list"], &bad), "");
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("SASL_AUTHENTICATION_FAILED"), "{stderr}");
    });
    blocking.await.unwrap();
    server.shutdown().await.unwrap();
}

/// The CLI logs in with PLAIN (`sasl.mechanism=PLAIN`) over TLS, on a
/// listener that enables it; the password is checked against the user's
/// SCRAM credential, and a wrong one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_logs_in_with_plain_over_tls() {
    let dir = data_dir("sasl-plain-cli");
    let ca = Ca::new("ringtail test CA");
    let (cert, key, _) = write_files(
        dir.path(),
        &ca.sign(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth),
        None,
    );
    let file = dir.path().join("ringtail.toml");
    let text = format!(
        "data-dir = {:?}\nlisten = \"127.0.0.1:0\"\nmetrics-listen = \"127.0.0.1:0\"\n\
         [[listener]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\nsecurity-protocol = \"SASL_SSL\"\n\
         sasl-mechanisms = [\"PLAIN\"]\ntls-cert = {cert:?}\ntls-key = {key:?}\n",
        dir.path().join("data")
    );
    std::fs::write(&file, text).unwrap();
    let config = config::resolve(&ServeArgs { config: Some(file), ..ServeArgs::default() }).unwrap();
    let server = serve::start(config).await.unwrap();
    set_password(&server, "dave", ScramMechanism::Sha256, "pass word").await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let properties = |password: &str| {
        let path = dir.path().join(format!("plain-{}.properties", password.len()));
        let text = format!(
            "security.protocol=SASL_SSL\nssl.ca.location={}\nsasl.mechanism=PLAIN\n\
             sasl.username=dave\nsasl.password={password}\n",
            ca_file.display()
        );
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (good, bad) = (properties("pass word"), properties("wrong"));
    let bootstrap = format!("localhost:{}", listener(&server, "plain").port());
    let blocking = tokio::task::spawn_blocking(move || {
        let args = |config: &str| {
            ["topic", "list", "--bootstrap", &bootstrap, "--command-config", config].map(String::from)
        };
        let (code, _, stderr) = ringtail(&args(&good).each_ref().map(String::as_str), "");
        assert_eq!(code, 0, "{stderr}");
        let (code, _, stderr) = ringtail(&args(&bad).each_ref().map(String::as_str), "");
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("SASL_AUTHENTICATION_FAILED"), "{stderr}");
    });
    blocking.await.unwrap();
    server.shutdown().await.unwrap();
}

/// KIP-368: with connections-max-reauth-ms a session lasts that long, the
/// client is told so, and renewing it on the connection (same mechanism,
/// same principal) keeps the connection served past the first expiry; an
/// expired session's next request closes the connection unanswered, and a
/// renewal as someone else or with another mechanism is refused and closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_unless_renewed_by_the_same_principal() {
    use std::time::{Duration, Instant};
    const LIFETIME_MS: i64 = 3000;
    let dir = data_dir("sasl-reauth");
    let ca = Ca::new("ringtail test CA");
    let server = start_with(dir.path(), &ca, &format!("connections-max-reauth-ms = {LIFETIME_MS}")).await;
    for (user, mechanism) in [
        ("alice", ScramMechanism::Sha512),
        ("alice", ScramMechanism::Sha256),
        ("bob", ScramMechanism::Sha512),
    ] {
        set_password(&server, user, mechanism, "pw").await;
    }
    let sasl = listener(&server, "sasl");

    let mut client = Client::connect(sasl).await;
    let started = Instant::now();
    assert_eq!(authenticate_for(&mut client, ScramMechanism::Sha512, "alice", "pw").await, Ok(LIFETIME_MS));
    assert!(client.call(9, &MetadataRequest::default()).await.brokers.len() == 1);
    tokio::time::sleep_until((started + Duration::from_millis(1500)).into()).await;
    assert_eq!(authenticate_for(&mut client, ScramMechanism::Sha512, "alice", "pw").await, Ok(LIFETIME_MS));
    // Past the first session's end, inside the renewed one's.
    tokio::time::sleep_until((started + Duration::from_millis(3500)).into()).await;
    assert!(
        client.call(9, &MetadataRequest::default()).await.brokers.len() == 1,
        "the renewed session serves on"
    );
    tokio::time::sleep_until((started + Duration::from_millis(5500)).into()).await;
    client.send(9, &MetadataRequest::default()).await;
    assert!(client.read_frame().await.is_none(), "an expired session is closed unanswered");

    let mut client = Client::connect(sasl).await;
    assert_eq!(authenticate(&mut client, ScramMechanism::Sha512, "alice", "pw").await, Ok(()));
    assert_eq!(
        authenticate(&mut client, ScramMechanism::Sha512, "bob", "pw").await,
        Err(SASL_AUTHENTICATION_FAILED)
    );
    assert!(client.is_closed_by_server().await, "a renewal as another principal closes the connection");

    let mut client = Client::connect(sasl).await;
    assert_eq!(authenticate(&mut client, ScramMechanism::Sha512, "alice", "pw").await, Ok(()));
    assert_eq!(
        authenticate(&mut client, ScramMechanism::Sha256, "alice", "pw").await,
        Err(ILLEGAL_SASL_STATE)
    );
    assert!(client.is_closed_by_server().await, "a renewal with another mechanism closes the connection");
    server.shutdown().await.unwrap();
}
