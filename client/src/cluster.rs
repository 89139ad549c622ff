//! `Client`: the cluster as a whole. It keeps the metadata it last saw, one
//! connection per broker address, and routes each partition's requests to
//! that partition's leader, refreshing metadata when a broker says it is
//! not (or no longer) the one to ask.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Mutex;

use super::config::ClientConfig;
use super::connection::Connection;
use super::error::{check, code, ClientError, Result};
use super::metadata::{ClusterMetadata, PartitionInfo, TopicInfo};

pub struct Client {
    config: ClientConfig,
    bootstrap: Vec<String>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    metadata: ClusterMetadata,
    /// By address, so the bootstrap connection is reused once the broker
    /// behind it is known by node id.
    connections: BTreeMap<String, Arc<Connection>>,
    /// Each consumer group's coordinator address, as FindCoordinator said.
    coordinators: BTreeMap<String, String>,
}

impl Client {
    /// Connects to the first reachable of the comma-separated `bootstrap`
    /// addresses and learns the cluster's brokers.
    pub async fn connect(bootstrap: &str, config: ClientConfig) -> Result<Client> {
        let bootstrap: Vec<String> =
            bootstrap.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if bootstrap.is_empty() {
            return Err(ClientError::NoBootstrap);
        }
        let client = Client { config, bootstrap, state: Mutex::new(State::default()) };
        client.fetch_metadata(Some(&[])).await?;
        Ok(client)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The metadata as last fetched.
    pub async fn cached_metadata(&self) -> ClusterMetadata {
        self.state.lock().await.metadata.clone()
    }

    /// Asks a broker for metadata about `topics` (`None`: all topics;
    /// empty: brokers only) and merges it into the cache. Lets the broker
    /// create named topics only if `allow_auto_topic_creation` is set.
    pub async fn fetch_metadata(&self, topics: Option<&[&str]>) -> Result<ClusterMetadata> {
        let connection = self.any_connection().await?;
        let allow_auto_create = self.config.allow_auto_topic_creation;
        let response = connection
            .request(|version| {
                let topics = topics.map(|names| {
                    names
                        .iter()
                        .map(|n| {
                            MetadataRequestTopic::default()
                                .with_name(Some(TopicName(StrBytes::from_string((*n).to_owned()))))
                        })
                        .collect()
                });
                let request = MetadataRequest::default().with_topics(topics);
                // The field exists from v4; before it, brokers decide alone.
                if version >= 4 {
                    request.with_allow_auto_topic_creation(allow_auto_create)
                } else {
                    request
                }
            })
            .await?;
        check(response.error_code, None, || format!("Metadata from {}", connection.addr()))?;
        let fresh = ClusterMetadata::from_response(&response);
        let mut state = self.state.lock().await;
        state.metadata.merge(fresh.clone());
        Ok(fresh)
    }

    /// Fresh metadata for one topic; an error if the broker reports one
    /// for the topic (e.g. UNKNOWN_TOPIC_OR_PARTITION).
    pub async fn refresh_topic(&self, topic: &str) -> Result<TopicInfo> {
        let fresh = self.fetch_metadata(Some(&[topic])).await?;
        let info = fresh.topics.get(topic).cloned().ok_or_else(|| {
            ClientError::kafka(format!("topic {topic}"), code::UNKNOWN_TOPIC_OR_PARTITION, None)
        })?;
        check(info.error_code, None, || format!("topic {topic}"))?;
        Ok(info)
    }

    /// The topic's metadata from the cache, fetched if not there yet.
    pub async fn topic(&self, topic: &str) -> Result<TopicInfo> {
        let cached = self.state.lock().await.metadata.topics.get(topic).cloned();
        match cached {
            Some(info) if usable(&info) => Ok(info),
            _ => self.refresh_topic(topic).await,
        }
    }

    /// A connection to any broker: a known one, else a bootstrap address.
    pub(crate) async fn any_connection(&self) -> Result<Arc<Connection>> {
        let mut candidates: Vec<String> = {
            let state = self.state.lock().await;
            let open = state.connections.iter().find(|(_, c)| !c.is_closed());
            if let Some((_, connection)) = open {
                return Ok(Arc::clone(connection));
            }
            state.metadata.brokers.values().map(|b| b.addr()).collect()
        };
        candidates.extend(self.bootstrap.iter().cloned());
        let mut last_error = ClientError::NoBootstrap;
        for addr in candidates {
            match self.connection_to(&addr).await {
                Ok(connection) => return Ok(connection),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The open connection to `addr`, or a new one.
    pub(crate) async fn connection_to(&self, addr: &str) -> Result<Arc<Connection>> {
        // Holding the lock while connecting makes concurrent callers share
        // one new connection instead of racing to open several.
        let mut state = self.state.lock().await;
        if let Some(connection) = state.connections.get(addr) {
            if !connection.is_closed() {
                return Ok(Arc::clone(connection));
            }
        }
        let connection = Arc::new(Connection::connect(addr, &self.config).await?);
        state.connections.insert(addr.to_owned(), Arc::clone(&connection));
        Ok(connection)
    }

    /// The connection to broker `node_id`.
    pub(crate) async fn broker_connection(&self, node_id: i32) -> Result<Arc<Connection>> {
        let addr = self.state.lock().await.metadata.brokers.get(&node_id).map(|b| b.addr());
        match addr {
            Some(addr) => self.connection_to(&addr).await,
            None => Err(ClientError::kafka(
                format!("broker {node_id} is not in the cluster metadata"),
                code::LEADER_NOT_AVAILABLE,
                None,
            )),
        }
    }

    /// The coordinator address last found for `group`.
    pub(crate) async fn cached_coordinator(&self, group: &str) -> Option<String> {
        self.state.lock().await.coordinators.get(group).cloned()
    }

    /// Remembers (`Some`) or forgets (`None`) `group`'s coordinator.
    pub(crate) async fn set_coordinator(&self, group: &str, addr: Option<String>) {
        let mut state = self.state.lock().await;
        match addr {
            Some(addr) => state.coordinators.insert(group.to_owned(), addr),
            None => state.coordinators.remove(group),
        };
    }

    /// The partition's metadata, checked to exist and to have a leader.
    pub async fn partition(&self, topic: &str, partition: i32) -> Result<PartitionInfo> {
        // Looked up in place: every produce and fetch comes here, and a
        // clone of the whole topic costs as much as its partitions.
        let cached = {
            let state = self.state.lock().await;
            state.metadata.topics.get(topic).filter(|info| usable(info)).map(|info| found(info, partition))
        };
        let (p, count) = match cached {
            Some(found) => found,
            None => found(&self.refresh_topic(topic).await?, partition),
        };
        let p =
            p.ok_or_else(|| ClientError::NoSuchPartition { topic: topic.to_owned(), partition, count })?;
        if p.leader < 0 {
            return Err(ClientError::kafka(format!("{topic}-{partition}"), code::LEADER_NOT_AVAILABLE, None));
        }
        Ok(p)
    }

    /// The connection to the leader of `topic`-`partition`.
    pub(crate) async fn leader_connection(&self, topic: &str, partition: i32) -> Result<Arc<Connection>> {
        Ok(self.leader_and_epoch(topic, partition).await?.0)
    }

    /// The connection to the leader of `topic`-`partition`, and the leader
    /// epoch the metadata gives it.
    pub(crate) async fn leader_and_epoch(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<Connection>, i32)> {
        let p = self.partition(topic, partition).await?;
        Ok((self.broker_connection(p.leader).await?, p.leader_epoch))
    }

    /// The connection admin requests go to: the controller if the metadata
    /// names one we can reach, else any broker (KRaft brokers forward).
    pub(crate) async fn controller_connection(&self) -> Result<Arc<Connection>> {
        let controller = self.state.lock().await.metadata.controller_id;
        if controller >= 0 {
            if let Ok(connection) = self.broker_connection(controller).await {
                return Ok(connection);
            }
        }
        self.any_connection().await
    }

    /// Runs `op` until it succeeds, fails for good, or runs out of
    /// attempts. Stale metadata (wrong leader, unknown topic or partition)
    /// means the broker refused the request, so trying again after a
    /// metadata refresh is always safe. A broken connection is retried only
    /// if `idempotent`: a write may have been applied before the break.
    pub async fn with_retries<T, F, Fut>(&self, topic: Option<&str>, idempotent: bool, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            let error = match op().await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            let retriable = error.is_stale_metadata()
                || error.kafka_code() == Some(code::NOT_CONTROLLER)
                || (idempotent && error.is_connection_failure());
            if !retriable || attempt >= self.config.attempts_max {
                return Err(error);
            }
            attempt += 1;
            tokio::time::sleep(self.config.backoff(attempt)).await;
            // A failed refresh is not the error to report: the next attempt
            // will fail with the real one if the cluster is still unhappy.
            let _ = match topic {
                Some(topic) => self.fetch_metadata(Some(&[topic])).await.map(drop),
                None => self.fetch_metadata(Some(&[])).await.map(drop),
            };
        }
    }
}

/// Whether cached metadata for a topic can be used without a refresh.
fn usable(info: &TopicInfo) -> bool {
    info.error_code == code::NONE && !info.partitions.is_empty()
}

/// The topic's `partition`, and how many partitions the topic has.
fn found(info: &TopicInfo, partition: i32) -> (Option<PartitionInfo>, usize) {
    (info.partition(partition).cloned(), info.partitions.len())
}
