//! Authorization against a running server with `authorizer = "acl"`: the
//! plaintext listener's User:ANONYMOUS is the super user (the loopback
//! admin), users authenticate with SCRAM on a SASL listener, and each is
//! allowed what its ACLs say and nothing else. A refused request gets
//! Kafka's *_AUTHORIZATION_FAILED code and changes nothing.

mod server_support;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use ringtail_engine::security::scram::ScramMechanism;
use ringtail_server::config::{self, ServeArgs};
use ringtail_server::serve::{self, RunningServer};
use server_support::sasl::{authenticate, listener, set_password};
use server_support::{batch, data_dir, http, Client};
use std::path::Path;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const SECURITY_DISABLED: i16 = 54;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// A server whose plaintext listener's clients are super users, with a
/// SASL_PLAINTEXT listener "sasl" offering SCRAM and (for librdkafka,
/// built here without the OpenSSL its SCRAM needs) PLAIN.
async fn start(dir: &Path, authorizer: &str) -> RunningServer {
    let file = dir.join("ringtail.toml");
    let text = format!(
        "data-dir = {:?}\nlisten = \"127.0.0.1:0\"\nmetrics-listen = \"127.0.0.1:0\"\n\
         authorizer = {authorizer:?}\nsuper-users = [\"User:ANONYMOUS\"]\n\
         [[listener]]\nname = \"sasl\"\naddress = \"127.0.0.1:0\"\nsecurity-protocol = \"SASL_PLAINTEXT\"\n\
         sasl-mechanisms = [\"SCRAM-SHA-512\", \"PLAIN\"]\nsasl-plain-without-tls = true\n",
        dir.join("data")
    );
    std::fs::write(&file, text).unwrap();
    let config = config::resolve(&ServeArgs { config: Some(file), ..ServeArgs::default() }).unwrap();
    serve::start(config).await.unwrap()
}

fn allow(resource_type: i8, name: &str, principal: &str, operation: i8) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(3) // LITERAL
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(3) // ALLOW
}

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const READ: i8 = 3;
const WRITE: i8 = 4;

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
                .with_records(Some(batch(2, "acl")))],
        ),
    ])
}

fn fetch(topic: &str) -> FetchRequest {
    let partition = fetch_request::FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(0)
        .with_partition_max_bytes(1 << 20);
    FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic(TopicName(s(topic))).with_partitions(vec![partition]),
    ])
}

fn metadata(topics: Option<&[&str]>) -> MetadataRequest {
    MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(topics.map(|names| {
        names
            .iter()
            .map(|n| metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s(n)))))
            .collect()
    }))
}

/// The log end offset of partition 0, as the admin sees it.
async fn log_end(admin: &mut Client, topic: &str) -> i64 {
    let request =
        ListOffsetsRequest::default().with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let response = admin.call(5, &request).await;
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

/// DescribeAcls' filter for every ACL.
fn every_acl() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

fn names(response: &MetadataResponse) -> Vec<String> {
    response.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_principal_is_allowed_what_its_acls_say_and_nothing_else() {
    let dir = data_dir("acls");
    let server = start(dir.path(), "acl").await;
    let sasl = listener(&server, "sasl");
    let mut admin = Client::connect(server.kafka_addr).await;
    set_password(&server, "alice", ScramMechanism::Sha512, "alice pw").await;
    set_password(&server, "bob", ScramMechanism::Sha512, "bob pw").await;
    for topic in ["orders", "secret"] {
        assert_eq!(admin.call(7, &create_topic(topic)).await.topics[0].error_code, 0);
    }
    let produced = admin.call(9, &produce("secret")).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let acls = CreateAclsRequest::default().with_creations(vec![
        allow(TOPIC, "orders", "User:alice", WRITE),
        allow(TOPIC, "orders", "User:alice", READ),
        allow(GROUP, "billing", "User:alice", READ),
    ]);
    let created = admin.call(3, &acls).await;
    assert!(created.results.iter().all(|r| r.error_code == 0), "{:?}", created.results);

    let mut alice = Client::connect(sasl).await;
    assert_eq!(authenticate(&mut alice, ScramMechanism::Sha512, "alice", "alice pw").await, Ok(()));

    // Metadata: only what alice may describe is listed; the rest, named, is refused.
    assert_eq!(names(&alice.call(9, &metadata(None)).await), ["orders"]);
    let named = alice.call(9, &metadata(Some(&["secret"]))).await;
    assert_eq!(named.topics[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    assert!(named.topics[0].partitions.is_empty(), "nothing about it is told");

    // Produce and fetch: allowed on orders, refused on secret, which is left as it was.
    let produced = alice.call(9, &produce("orders")).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let before = log_end(&mut admin, "secret").await;
    let refused = alice.call(9, &produce("secret")).await;
    assert_eq!(refused.responses[0].partition_responses[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(log_end(&mut admin, "secret").await, before, "nothing was written");
    let fetched = alice.call(11, &fetch("orders")).await;
    let p = &fetched.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()));
    let refused = alice.call(11, &fetch("secret")).await;
    let p = &refused.responses[0].partitions[0];
    assert_eq!(p.error_code, TOPIC_AUTHORIZATION_FAILED);
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()), "nothing was read");

    // Topic and cluster administration.
    let created = alice.call(7, &create_topic("alices-own")).await;
    assert_eq!(created.topics[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    let deleted =
        alice.call(4, &DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s("orders"))])).await;
    assert_eq!(deleted.responses[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(names(&admin.call(9, &metadata(None)).await), ["orders", "secret"], "none created or deleted");
    let escalate = alice
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![allow(TOPIC, "secret", "User:alice", READ)]),
        )
        .await;
    assert_eq!(escalate.results[0].error_code, CLUSTER_AUTHORIZATION_FAILED);
    let listed = admin.call(3, &every_acl()).await;
    assert_eq!(listed.error_code, 0);
    assert_eq!(listed.resources.iter().map(|r| r.acls.len()).sum::<usize>(), 3, "alice added none");
    let described = alice.call(0, &DescribeUserScramCredentialsRequest::default()).await;
    assert_eq!(described.error_code, CLUSTER_AUTHORIZATION_FAILED);

    // Groups: billing is alice's, others are not.
    let find = |group: &str| FindCoordinatorRequest::default().with_key(s(group));
    assert_eq!(alice.call(3, &find("billing")).await.error_code, 0);
    assert_eq!(alice.call(3, &find("payroll")).await.error_code, GROUP_AUTHORIZATION_FAILED);
    let commit = |group: &str| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("orders")))
                .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)])])
    };
    let committed = alice.call(8, &commit("billing")).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    let committed = alice.call(8, &commit("payroll")).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, GROUP_AUTHORIZATION_FAILED);
    let offsets = admin
        .call(7, &OffsetFetchRequest::default().with_group_id(GroupId(s("payroll"))).with_topics(None))
        .await;
    assert!(offsets.topics.is_empty(), "nothing was committed for payroll: {offsets:?}");

    // An idempotent producer needs WRITE somewhere: alice has it, bob not.
    assert_eq!(
        alice.call(4, &InitProducerIdRequest::default().with_transactional_id(None)).await.error_code,
        0
    );
    let mut bob = Client::connect(sasl).await;
    assert_eq!(authenticate(&mut bob, ScramMechanism::Sha512, "bob", "bob pw").await, Ok(()));
    assert_eq!(
        bob.call(4, &InitProducerIdRequest::default().with_transactional_id(None)).await.error_code,
        CLUSTER_AUTHORIZATION_FAILED
    );
    let refused = bob.call(9, &produce("orders")).await;
    assert_eq!(refused.responses[0].partition_responses[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    assert!(names(&bob.call(9, &metadata(None)).await).is_empty(), "bob sees no topic");

    // Removing alice's WRITE takes effect on her open connection.
    let delete =
        DeleteAclsRequest::default().with_filters(vec![delete_acls_request::DeleteAclsFilter::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(s("orders")))
            .with_pattern_type_filter(3)
            .with_principal_filter(Some(s("User:alice")))
            .with_host_filter(None)
            .with_operation(WRITE)
            .with_permission_type(1)]);
    let deleted = admin.call(3, &delete).await;
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1, "{deleted:?}");
    let refused = alice.call(9, &produce("orders")).await;
    assert_eq!(refused.responses[0].partition_responses[0].error_code, TOPIC_AUTHORIZATION_FAILED);

    let metrics = http(server.metrics_addr, "GET /metrics HTTP/1.0\r\n\r\n").await;
    let denials = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ringtail_authorization_denials_total "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(denials.is_some_and(|d| d >= 10), "{metrics}");
    server.shutdown().await.unwrap();
}

/// ACLs survive a restart, and without an authorizer the ACL APIs answer
/// SECURITY_DISABLED, as Kafka's: ACLs set then would protect nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_persist_and_need_an_authorizer() {
    let dir = data_dir("acls-restart");
    let server = start(dir.path(), "acl").await;
    let mut admin = Client::connect(server.kafka_addr).await;
    let created = admin
        .call(2, &CreateAclsRequest::default().with_creations(vec![allow(TOPIC, "t", "User:carol", READ)]))
        .await;
    assert_eq!(created.results[0].error_code, 0);
    drop(admin);
    server.shutdown().await.unwrap();

    let server = start(dir.path(), "acl").await;
    let mut admin = Client::connect(server.kafka_addr).await;
    let all = every_acl();
    let listed = admin.call(2, &all).await;
    assert_eq!(listed.resources.len(), 1);
    assert_eq!(listed.resources[0].resource_name.as_str(), "t");
    assert_eq!(listed.resources[0].acls[0].principal.as_str(), "User:carol");
    drop(admin);
    server.shutdown().await.unwrap();

    let server = start(dir.path(), "none").await;
    let mut admin = Client::connect(server.kafka_addr).await;
    let listed = admin.call(2, &all).await;
    assert_eq!(listed.error_code, SECURITY_DISABLED);
    let created = admin
        .call(2, &CreateAclsRequest::default().with_creations(vec![allow(TOPIC, "u", "User:carol", READ)]))
        .await;
    assert_eq!(created.results[0].error_code, SECURITY_DISABLED);
    // Everyone may do everything.
    assert_eq!(admin.call(7, &create_topic("open")).await.topics[0].error_code, 0);
    server.shutdown().await.unwrap();
}

fn rdkafka_config(addr: std::net::SocketAddr, user: &str, password: &str) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", addr.to_string())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("message.timeout.ms", "10000")
        .set("socket.timeout.ms", "10000");
    config
}

/// librdkafka, an unchanged Kafka client, authenticates with PLAIN and is
/// held to its principal's ACLs: it produces where it may write and gets
/// TopicAuthorizationFailed where it may not, and a wrong password gets it
/// nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_is_held_to_its_principals_acls() {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use std::time::Duration;

    let dir = data_dir("acls-rdkafka");
    let server = start(dir.path(), "acl").await;
    let sasl = listener(&server, "sasl");
    let mut admin = Client::connect(server.kafka_addr).await;
    set_password(&server, "dora", ScramMechanism::Sha512, "dora pw").await;
    for topic in ["allowed", "forbidden"] {
        assert_eq!(admin.call(7, &create_topic(topic)).await.topics[0].error_code, 0);
    }
    let acls = CreateAclsRequest::default().with_creations(vec![allow(TOPIC, "allowed", "User:dora", WRITE)]);
    assert_eq!(admin.call(3, &acls).await.results[0].error_code, 0);

    let producer: FutureProducer = rdkafka_config(sasl, "dora", "dora pw").create().unwrap();
    let send = |topic: &'static str| {
        let producer = producer.clone();
        async move {
            let record = FutureRecord::to(topic).key("k").payload("v");
            producer.send(record, Duration::from_secs(10)).await.map(|d| d.offset).map_err(|(e, _)| e)
        }
    };
    assert_eq!(send("allowed").await.expect("dora may write to allowed"), 0);
    match send("forbidden").await {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)) => {}
        other => panic!("expected TopicAuthorizationFailed, got {other:?}"),
    }
    assert_eq!(log_end(&mut admin, "forbidden").await, 0, "nothing was written");

    let intruder: FutureProducer = rdkafka_config(sasl, "dora", "not her password").create().unwrap();
    let record = FutureRecord::to("allowed").key("k").payload("v");
    let refused = intruder.send(record, Duration::from_secs(5)).await;
    assert!(refused.is_err(), "a wrong password produced: {refused:?}");
    assert_eq!(log_end(&mut admin, "allowed").await, 1, "only dora's record");
    let metrics = http(server.metrics_addr, "GET /metrics HTTP/1.0\r\n\r\n").await;
    assert!(!metrics.contains("ringtail_sasl_authentication_failures_total 0\n"), "{metrics}");
    drop((producer, intruder));
    server.shutdown().await.unwrap();
}

/// A server with an SSL listener `mtls` that takes client certificates
/// of the client CA, the acl authorizer, and `top` at the config's top
/// level; the server's CA and the client CA.
async fn start_mtls(
    dir: &Path,
    top: &str,
) -> (RunningServer, server_support::tls::Ca, server_support::tls::Ca) {
    use rcgen::ExtendedKeyUsagePurpose::ServerAuth;
    use server_support::tls::{write_files, Ca};
    let (ca, clients) = (Ca::new("ringtail test CA"), Ca::new("ringtail client CA"));
    let (cert, key, client_ca) = write_files(dir, &ca.sign(&["localhost"], ServerAuth), Some(&clients));
    let file = dir.join("ringtail.toml");
    let text = format!(
        "data-dir = {:?}\nlisten = \"127.0.0.1:0\"\nmetrics-listen = \"127.0.0.1:0\"\n\
         authorizer = \"acl\"\nsuper-users = [\"User:ANONYMOUS\"]\n{top}\n\
         [[listener]]\nname = \"mtls\"\naddress = \"127.0.0.1:0\"\nsecurity-protocol = \"SSL\"\n\
         tls-cert = {cert:?}\ntls-key = {key:?}\ntls-client-ca = {:?}\n",
        dir.join("data"),
        client_ca.unwrap()
    );
    std::fs::write(&file, text).unwrap();
    let config = config::resolve(&ServeArgs { config: Some(file), ..ServeArgs::default() }).unwrap();
    (serve::start(config).await.unwrap(), ca, clients)
}

/// On an SSL listener with client certificates, the client is the
/// certificate's subject (`User:CN=...,O=...`, as Kafka names it), and
/// ACLs on that principal decide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_names_the_principal() {
    use rcgen::ExtendedKeyUsagePurpose::ClientAuth;
    use server_support::tls::{connector, tls_connect};

    let dir = data_dir("acls-certificates");
    let (server, ca, clients) = start_mtls(dir.path(), "").await;
    let mtls = listener(&server, "mtls");
    let mut admin = Client::connect(server.kafka_addr).await;
    assert_eq!(admin.call(7, &create_topic("certified")).await.topics[0].error_code, 0);
    let principal = "User:CN=erin,O=Ringtail\\, Inc.";
    let acls = CreateAclsRequest::default().with_creations(vec![allow(TOPIC, "certified", principal, WRITE)]);
    assert_eq!(admin.call(3, &acls).await.results[0].error_code, 0);

    let erin = clients.sign_for(&["erin"], Some("Ringtail, Inc."), ClientAuth);
    let mut client = tls_connect(mtls, &connector(&ca, Some(&erin))).await.unwrap();
    let produced = client.call(9, &produce("certified")).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0, "{principal} may write");

    let frank = clients.sign_for(&["frank"], Some("Ringtail, Inc."), ClientAuth);
    let mut client = tls_connect(mtls, &connector(&ca, Some(&frank))).await.unwrap();
    let refused = client.call(9, &produce("certified")).await;
    assert_eq!(refused.responses[0].partition_responses[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(log_end(&mut admin, "certified").await, 2, "erin's two records only");
    server.shutdown().await.unwrap();
}

/// With ssl-principal-mapping-rules, the first matching rule names the
/// principal (here the common name, upper-cased), and a certificate no
/// rule matches is refused: its connection is closed unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_rules_name_the_principal_or_refuse_the_certificate() {
    use rcgen::ExtendedKeyUsagePurpose::ClientAuth;
    use server_support::tls::{connector, tls_connect};

    let dir = data_dir("acls-certificate-rules");
    let rules = "ssl-principal-mapping-rules = \"RULE:^CN=(.*?),O=Ringtail.*$/$1/U\"";
    let (server, ca, clients) = start_mtls(dir.path(), rules).await;
    let mtls = listener(&server, "mtls");
    let mut admin = Client::connect(server.kafka_addr).await;
    assert_eq!(admin.call(7, &create_topic("mapped")).await.topics[0].error_code, 0);
    let acls = CreateAclsRequest::default().with_creations(vec![allow(TOPIC, "mapped", "User:ERIN", WRITE)]);
    assert_eq!(admin.call(3, &acls).await.results[0].error_code, 0);

    let erin = clients.sign_for(&["erin"], Some("Ringtail, Inc."), ClientAuth);
    let mut client = tls_connect(mtls, &connector(&ca, Some(&erin))).await.unwrap();
    let produced = client.call(9, &produce("mapped")).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0, "User:ERIN may write");

    let stranger = clients.sign_for(&["zed"], None, ClientAuth);
    let refused = match tls_connect(mtls, &connector(&ca, Some(&stranger))).await {
        Err(_) => true,
        Ok(mut client) => client.is_closed_by_server().await,
    };
    assert!(refused, "a certificate no rule names was served");
    assert_eq!(log_end(&mut admin, "mapped").await, 2, "erin's two records only");
    server.shutdown().await.unwrap();
}
