//! The replica fetcher: this broker's followers pull from their leaders
//! over the leaders' Kafka listeners, with Kafka's own requests, as Kafka's
//! followers do. One task per leader broker carries every partition this
//! broker follows from it in one Fetch (marked with this broker's id, so
//! the leader counts it toward the ISR and the high watermark).
//!
//! Before fetching under a new leader epoch, a partition asks the leader
//! where its latest epoch ends (OffsetForLeaderEpoch) and truncates what
//! diverged (`replica::truncation`). Appends and truncations go through the
//! broker, which refuses them once the partition no longer follows that
//! leader at that epoch: nothing fetched from an old leader reaches the
//! log of a new one.

use crate::metered_disk::{MeteredDisk, ServerBroker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use ringtail_client::{ClientConfig, Connection};
use ringtail_engine::broker::Partition;
use ringtail_engine::log::TopicPartition;
use ringtail_engine::replica::{truncation, Truncation};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a follower's fetch waits at the leader for new records.
const FETCH_MAX_WAIT_MS: i32 = 500;
const FETCH_MAX_BYTES: i32 = 16 * 1024 * 1024;
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;
/// How often the set of leaders followed is looked at again.
const LEADERS_POLL: Duration = Duration::from_millis(200);
/// Pause after a failed round (no connection, a refused request).
const BACKOFF: Duration = Duration::from_millis(200);
/// Fetch v12: the newest this server speaks (the leader is one of ours).
const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;

type Followed = Arc<Partition<MeteredDisk>>;

/// Aborts its fetchers when dropped (the cluster membership stops).
#[derive(Default)]
struct Fetchers(BTreeMap<i32, JoinHandle<()>>);

impl Drop for Fetchers {
    fn drop(&mut self) {
        for task in self.0.values() {
            task.abort();
        }
    }
}

/// How often leaders look for ISR changes to ask for.
const ISR_TICK: Duration = Duration::from_millis(500);

/// Asks the quorum for the ISR changes this broker's leaders want, until
/// aborted.
pub async fn tick_isr(broker: Arc<ServerBroker>) {
    loop {
        tokio::time::sleep(ISR_TICK).await;
        broker.replication_tick().await;
    }
}

/// How followers reach their leaders (`config::inter_broker`): the
/// listener's name, and the client settings (security) for it.
#[derive(Clone, Debug)]
pub struct FetcherConfig {
    pub listener: String,
    pub client: ClientConfig,
}

/// Keeps one fetcher running per leader this broker follows, until aborted.
pub async fn run(broker: Arc<ServerBroker>, config: FetcherConfig) {
    let mut fetchers = Fetchers::default();
    loop {
        let leaders: BTreeSet<i32> =
            broker.hosted_partitions().iter().filter_map(|p| p.follows().map(|(leader, _)| leader)).collect();
        fetchers.0.retain(|_, task| !task.is_finished());
        for leader in leaders {
            fetchers
                .0
                .entry(leader)
                .or_insert_with(|| tokio::spawn(fetch_from(broker.clone(), leader, config.clone())));
        }
        tokio::time::sleep(LEADERS_POLL).await;
    }
}

/// Replicates every partition followed from `leader`; returns when there
/// is none left.
async fn fetch_from(broker: Arc<ServerBroker>, leader: i32, config: FetcherConfig) {
    let me = broker.node_id();
    // The leader epoch each partition last truncated for.
    let mut truncated: BTreeMap<TopicPartition, i32> = BTreeMap::new();
    let mut connection: Option<Connection> = None;
    // The last reason the leader could not be reached or refused a fetch,
    // warned about once: a wrong password or a missing ACL would otherwise
    // stop replication in silence.
    let mut unreachable: Option<String> = None;
    let mut failing: Option<String> = None;
    loop {
        let followed: Vec<(Followed, i32)> = broker
            .hosted_partitions()
            .into_iter()
            .filter_map(|p| p.follows().filter(|(l, _)| *l == leader).map(|(_, epoch)| (p, epoch)))
            .collect();
        if followed.is_empty() {
            return;
        }
        let conn = match &connection {
            Some(c) if !c.is_closed() => c,
            _ => match connect(&broker, leader, &config, &mut unreachable).await {
                Some(c) => connection.insert(c),
                None => {
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            },
        };
        let mut ready = Vec::new();
        for (p, epoch) in followed {
            if truncated.get(&p.tp) == Some(&epoch) {
                ready.push((p, epoch));
                continue;
            }
            match truncate(&broker, conn, &p, leader, epoch).await {
                Ok(()) => {
                    truncated.insert(p.tp.clone(), epoch);
                    ready.push((p, epoch));
                }
                Err(e) => {
                    tracing::info!(partition = %p.tp, leader, error = %e, "truncation before fetching failed")
                }
            }
        }
        if ready.is_empty() {
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        match fetch_round(&broker, conn, leader, me, &ready).await {
            Ok(()) => failing = None,
            Err(e) => {
                if failing.as_ref() != Some(&e) {
                    tracing::warn!(leader, error = %e, "replica fetch failed");
                }
                failing = Some(e);
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// A connection to `leader` on the inter-broker listener. A failure is
/// warned about when it differs from the last (a wrong password or a
/// missing listener would otherwise fail every round in silence).
async fn connect(
    broker: &ServerBroker,
    leader: i32,
    config: &FetcherConfig,
    unreachable: &mut Option<String>,
) -> Option<Connection> {
    let endpoints = broker.listener_endpoints(&config.listener);
    let result = match endpoints.into_iter().find(|b| b.node_id == leader) {
        None => Err(format!("the leader has no listener {} (or is not live)", config.listener)),
        Some(endpoint) => {
            let address = format!("{}:{}", endpoint.host, endpoint.port);
            let client = ClientConfig {
                client_id: format!("ringtail-replica-{}", broker.node_id()),
                ..config.client.clone()
            };
            Connection::connect(&address, &client).await.map_err(|e| format!("{address}: {e}"))
        }
    };
    match result {
        Ok(c) => {
            *unreachable = None;
            Some(c)
        }
        Err(e) => {
            if unreachable.as_ref() != Some(&e) {
                tracing::warn!(leader, listener = config.listener, error = %e, "cannot reach the leader to fetch");
            }
            *unreachable = Some(e);
            None
        }
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Asks where this log's latest epoch ends at the leader and cuts what
/// diverged, until the two agree (`Truncation::ToThenAskAgain` repeats).
async fn truncate(
    broker: &ServerBroker,
    conn: &Connection,
    p: &Followed,
    leader: i32,
    epoch: i32,
) -> Result<(), String> {
    loop {
        let epochs = p.log.leader_epochs();
        let log_end = p.log.log_end_offset();
        let Some((asked, _)) = epochs.latest() else {
            return Ok(()); // an empty log, or one with no epochs: nothing can have diverged
        };
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(broker.node_id()))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(topic_name(&p.tp.topic))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(p.tp.partition)
                    .with_current_leader_epoch(epoch)
                    .with_leader_epoch(asked)])]);
        let response =
            conn.send(&request, OFFSET_FOR_LEADER_EPOCH_VERSION).await.map_err(|e| e.to_string())?;
        let answer = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or("an answer without the partition")?;
        if answer.error_code != 0 {
            return Err(format!("OffsetForLeaderEpoch: error {}", answer.error_code));
        }
        let leaders = (answer.leader_epoch >= 0 && answer.end_offset >= 0)
            .then_some((answer.leader_epoch, answer.end_offset as u64));
        let decision = truncation(&epochs, log_end, asked, leaders, p.high_watermark());
        let (offset, again) = match decision {
            Truncation::To(offset) => (offset, false),
            Truncation::ToThenAskAgain(offset) => (offset, true),
        };
        broker.truncate_follower(p, leader, epoch, offset).await.map_err(|e| e.to_string())?;
        if !again {
            return Ok(());
        }
    }
}

/// One Fetch for every ready partition, and its records appended.
async fn fetch_round(
    broker: &ServerBroker,
    conn: &Connection,
    leader: i32,
    me: i32,
    ready: &[(Followed, i32)],
) -> Result<(), String> {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (p, epoch) in ready {
        topics.entry(p.tp.topic.as_str()).or_default().push(
            FetchPartition::default()
                .with_partition(p.tp.partition)
                .with_current_leader_epoch(*epoch)
                .with_fetch_offset(p.log.log_end_offset() as i64)
                .with_log_start_offset(p.log.log_start_offset() as i64)
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(me))
        .with_max_wait_ms(FETCH_MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    FetchTopic::default().with_topic(topic_name(name)).with_partitions(partitions)
                })
                .collect(),
        );
    let response = conn.send(&request, FETCH_VERSION).await.map_err(|e| e.to_string())?;
    if response.error_code != 0 {
        return Err(format!("fetch: {}", ringtail_client::kafka_error_name(response.error_code)));
    }
    let by_tp: BTreeMap<TopicPartition, &(Followed, i32)> =
        ready.iter().map(|r| (r.0.tp.clone(), r)).collect();
    for topic in &response.responses {
        for data in &topic.partitions {
            let tp = TopicPartition::new(topic.topic.0.as_str(), data.partition_index);
            let Some((p, epoch)) = by_tp.get(&tp).copied() else { continue };
            let leader_start = u64::try_from(data.log_start_offset).unwrap_or(0);
            if data.error_code == ResponseError::OffsetOutOfRange.code()
                && leader_start > p.log.log_end_offset()
            {
                tracing::warn!(partition = %tp, leader, leader_start, "the leader's log starts past this replica's end");
                if let Err(e) = broker.restart_follower_at(p, leader, *epoch, leader_start).await {
                    tracing::warn!(partition = %tp, leader, error = %e, "starting the log over failed");
                }
                continue;
            }
            if data.error_code != 0 {
                let error = ResponseError::try_from_code(data.error_code);
                tracing::debug!(partition = %tp, leader, ?error, "the leader refused a replica fetch");
                continue;
            }
            let records = data.records.clone().unwrap_or_default();
            let hw = u64::try_from(data.high_watermark).unwrap_or(0);
            if let Err(e) = p.append_as_follower(leader, *epoch, records, hw).await {
                tracing::info!(partition = %tp, leader, error = %e, "appending fetched records failed");
                continue;
            }
            // Records the leader deleted (retention, DeleteRecords) go here
            // too; the next fetch reports where this log starts now.
            if let Err(e) = broker.follow_log_start(p, leader, *epoch, leader_start).await {
                tracing::warn!(partition = %tp, leader, error = %e, "following the leader's log start failed");
            }
        }
    }
    Ok(())
}
