//! Mutual TLS on the controller listener: two `ringtail serve` processes,
//! each a voter and a broker, with `--controller-tls-cert/key/ca` from one
//! CA. The quorum forms and carries a topic's creation over TLS;
//! `ringtail cluster describe` answers with a certificate and not without;
//! a plaintext request to a voter (a DeleteTopic, as anyone on the network
//! could send before) is dropped unanswered and changes nothing; a peer
//! with a certificate of another CA is refused.

mod cluster_support;
mod server_support;

use cluster_support::{await_topic, cluster_nodes, create, start_all, Node, BINARY, CONVERGE_WAIT};
use ringtail_server::config::parse_controllers;
use ringtail_server::quorum::client::QuorumClient;
use ringtail_server::quorum::tls::{ControllerTls, ControllerTlsFiles};
use ringtail_server::quorum::wire::{encode, Ask, Frame, Request};
use server_support::tls::{write_files, Ca};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A peer certificate from `ca` for 127.0.0.1, its files in `dir`.
fn peer_files(ca: &Ca, dir: &Path) -> ControllerTlsFiles {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key, _) = write_files(dir, &ca.sign_peer(&["127.0.0.1"]), None);
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    ControllerTlsFiles { cert, key, ca: ca_file }
}

fn tls_args(files: &ControllerTlsFiles) -> Vec<String> {
    let path = |p: &Path| p.to_str().unwrap().to_string();
    vec![
        "--controller-tls-cert".into(),
        path(&files.cert),
        "--controller-tls-key".into(),
        path(&files.key),
        "--controller-tls-ca".into(),
        path(&files.ca),
    ]
}

fn describe(voters: &str, tls: &[String]) -> (bool, String) {
    let out = Command::new(BINARY)
        .args(["cluster", "describe", "--controllers", voters])
        .args(tls)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn voter_addresses(voters: &str) -> BTreeMap<u64, SocketAddr> {
    let parsed = parse_controllers(voters).unwrap();
    parsed.iter().map(|v| (v.node_id as u64, v.address.to_string().parse().unwrap())).collect()
}

async fn topic_exists(node: &Node, topic: &str) {
    let led = |t: &ringtail_client::TopicInfo| t.partitions.first().is_some_and(|p| p.leader >= 0);
    await_topic(node, topic, CONVERGE_WAIT, "the topic, led", led).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_listener_takes_only_peers_of_the_clusters_ca() {
    let root = tempfile::tempdir().unwrap();
    let ca = Ca::new("cluster CA");
    let (mut nodes, voters) = cluster_nodes(root.path(), 2, 2);
    for node in &mut nodes {
        let files = peer_files(&ca, &root.path().join(format!("tls{}", node.id)));
        node.extra_args = tls_args(&files);
    }
    start_all(&mut nodes, &voters);
    create(&nodes[0], "kept", 1, 2).await;
    topic_exists(&nodes[1], "kept").await;

    let admin_files = peer_files(&ca, &root.path().join("admin"));
    let (ok, text) = describe(&voters, &tls_args(&admin_files));
    assert!(ok && text.contains("Controller leader: ") && !text.contains("none"), "{text}");
    let (ok, text) = describe(&voters, &[]);
    assert!(!ok && text.contains("no controller answered"), "without a certificate: {text}");

    // Plaintext frames, as the controller listener took them before: the
    // voter expects a TLS handshake, drops the connection, and answers
    // nothing.
    for addr in voter_addresses(&voters).values() {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let delete = Frame::Request(Request { id: 1, ask: Ask::DeleteTopic { name: "kept".into() } });
        stream.write_all(&encode(&delete)).await.unwrap();
        let mut reply = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut reply)).await;
        assert!(read.is_ok(), "the voter at {addr} kept a plaintext connection open");
        assert!(reply.iter().all(|b| *b != b'{'), "a plaintext request was answered: {reply:?}");
    }

    // A certificate of another CA does not get in either.
    let rogue_files = peer_files(&Ca::new("another CA"), &root.path().join("rogue"));
    let rogue = ControllerTls::load(&rogue_files, &parse_controllers(&voters).unwrap()).unwrap();
    let client =
        QuorumClient::new(voter_addresses(&voters), Duration::from_secs(2)).with_tls(Some(Arc::new(rogue)));
    for id in voter_addresses(&voters).keys() {
        let answer = client.call_one(*id, Ask::DeleteTopic { name: "kept".into() }).await;
        assert!(answer.is_none(), "voter {id} answered a peer of another CA: {answer:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for node in &nodes {
        topic_exists(node, "kept").await;
    }
}
