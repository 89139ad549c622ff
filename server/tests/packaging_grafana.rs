//! packaging/grafana-dashboard.json: importable (a `${DS_PROMETHEUS}`
//! datasource input that every panel uses), and every metric its PromQL
//! queries is one a running server exports. A real client produces,
//! consumes in a group and commits, so that the per-API, per-partition and
//! consumer-group-lag series exist; the lag is checked against what was
//! produced after the commit.

mod server_support;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use server_support::{data_dir, http};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const DASHBOARD: &str = include_str!("../../packaging/grafana-dashboard.json");
const TOPIC: &str = "dash";
const GROUP: &str = "dash-group";
const DEADLINE: Duration = Duration::from_secs(60);

/// The strings holding PromQL: each target's `expr`, each templating
/// variable's `query` (a string or an object with one).
fn queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(s)) | ("query", Value::String(s)) => out.push(s.clone()),
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// Metric names in a PromQL expression: its identifiers that start with
/// `ringtail_` (label values are quoted and functions are not ours).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    for c in expr.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("ringtail_") {
                names.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

async fn produce(bootstrap: &str, count: usize, tag: &str) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    for i in 0..count {
        let value = format!("{tag} {i}");
        let record = FutureRecord::to(TOPIC).key("k").payload(&value).partition(0);
        producer.send(record, Duration::from_secs(30)).await.unwrap();
    }
}

/// Joins `GROUP`, reads `count` records and commits their offsets.
fn consume_and_commit(bootstrap: String, count: usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", GROUP)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let started = Instant::now();
    let mut read = 0;
    while read < count {
        assert!(started.elapsed() < DEADLINE, "read {read} of {count} records");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                assert!(message.payload().is_some());
                read += 1;
            }
            Some(Err(e)) => panic!("consume failed: {e}"),
            None => {}
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let inputs = dashboard["__inputs"].as_array().expect("__inputs, for Grafana's import");
    assert!(inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"));
    let panels = dashboard["panels"].as_array().expect("panels");
    let queried: Vec<&Value> = panels.iter().filter(|p| p["type"] != "row").collect();
    assert!(queried.len() >= 10, "{} panels", queried.len());
    for panel in &queried {
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", panel["title"]);
        assert!(!panel["targets"].as_array().expect("targets").is_empty(), "{}", panel["title"]);
    }
    let mut exprs = Vec::new();
    queries(&dashboard, &mut exprs);
    let names: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for expected in
        ["ringtail_consumer_group_lag", "ringtail_process_resident_bytes", "ringtail_requests_total"]
    {
        assert!(names.contains(expected), "the dashboard queries {expected}: {names:?}");
    }

    let dir = data_dir("grafana");
    let server = ringtail_server::serve::start(server_support::group_config(dir.path())).await.unwrap();
    let bootstrap = server.kafka_addr.to_string();
    produce(&bootstrap, 10, "first").await;
    let consuming = bootstrap.clone();
    tokio::task::spawn_blocking(move || consume_and_commit(consuming, 10)).await.unwrap();
    produce(&bootstrap, 5, "after the commit").await;

    let page = http(server.metrics_addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    let samples: BTreeSet<&str> = page
        .lines()
        .filter(|l| l.starts_with("ringtail_"))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = names.iter().filter(|n| !samples.contains(n.as_str())).collect();
    assert!(missing.is_empty(), "queried by the dashboard but not exported: {missing:?}\n{page}");

    // Committed at 10, high watermark 15.
    let lag =
        format!("ringtail_consumer_group_lag{{group=\"{GROUP}\",topic=\"{TOPIC}\",partition=\"0\"}} 5\n");
    assert!(page.contains(&lag), "missing {lag:?} in\n{page}");
    let sum = format!("ringtail_consumer_group_lag_sum{{group=\"{GROUP}\"}} 5\n");
    assert!(page.contains(&sum), "missing {sum:?} in\n{page}");
    let resident = page.lines().find(|l| l.starts_with("ringtail_process_resident_bytes ")).unwrap();
    assert!(resident.split(' ').nth(1).unwrap().parse::<u64>().unwrap() > 1 << 20, "{resident}");
    server.shutdown().await.unwrap();
}
