//! A simulated client's connection to the broker: each `Request` of the
//! workload becomes one attempt of the project's Kafka client
//! (`ringtail-client`), whose frames cross madsim's simulated TCP to the
//! server's own listener and handlers. A request that times out, or whose
//! connection breaks, is an unknown outcome (`None`), as over a real
//! network; the workload decides whether to try again.

use crate::checker::Epochs;
use crate::ops::{Request, Response};
use crate::rng::Rng;
use crate::stats::Counters;
use crate::taint::Taints;
use ringtail_client::assignor::{decode_subscription, MemberSubscription, CONSUMER_PROTOCOL_TYPE};
use ringtail_client::group::{self, JoinRequest, Membership};
use ringtail_client::{
    Acks, Client as KafkaClient, ClientConfig, ClientError, FetchOptions, FetchPosition, NewTopic, OffsetSpec,
};
use ringtail_engine::error::ErrorCode;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BROKER_PORT: u16 = 9092;
/// The least time a connection's set-up (TCP, ApiVersions, Metadata) gets:
/// the swarm's tiniest timeouts are for the requests themselves, and a
/// client that can never connect would test nothing.
const SETUP_TIMEOUT_MIN: Duration = Duration::from_millis(1_000);

/// Requests delivered twice: a copy sent on a connection of its own a
/// little later, as a client's retry that crosses the original would be
/// (TCP never duplicates by itself). Its answer goes nowhere.
pub struct Duplicates {
    pub rng: Rng,
    pub rate: f64,
    pub counters: Arc<Counters>,
}

/// One simulated client: a Kafka client per request timeout in use (the
/// timeout is the client's), made on first use and again after a failed
/// connect.
pub struct Client {
    broker: SocketAddr,
    client_id: String,
    timeout: Duration,
    clients: BTreeMap<Duration, Arc<KafkaClient>>,
    /// How long a fetch may wait for records at the broker (long poll).
    fetch_wait: Duration,
    taints: Arc<Mutex<Taints>>,
    /// The loss epochs around the last answered request.
    last_epochs: Epochs,
    duplicates: Option<Duplicates>,
}

impl Client {
    pub fn new(
        broker: SocketAddr,
        client_id: String,
        timeout: Duration,
        taints: Arc<Mutex<Taints>>,
        duplicates: Option<Duplicates>,
    ) -> Client {
        Client {
            duplicates,
            broker,
            client_id,
            timeout,
            clients: BTreeMap::new(),
            fetch_wait: Duration::ZERO,
            taints,
            last_epochs: Epochs::default(),
        }
    }

    /// The loss epochs when the last answered request was sent and when its
    /// answer came: the broker produced the answer somewhere in between.
    pub fn last_epochs(&self) -> Epochs {
        self.last_epochs
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Fetches wait at the broker up to this long for records to arrive.
    pub fn set_fetch_wait(&mut self, wait: Duration) {
        self.fetch_wait = wait;
    }

    fn loss_epoch(&self) -> u64 {
        self.taints.lock().unwrap_or_else(|e| e.into_inner()).losses
    }

    async fn kafka(&mut self, timeout: Duration) -> Option<Arc<KafkaClient>> {
        if let Some(client) = self.clients.get(&timeout) {
            return Some(client.clone());
        }
        let setup = timeout.max(SETUP_TIMEOUT_MIN);
        let config = ClientConfig {
            client_id: self.client_id.clone(),
            connect_timeout: setup,
            // The request's own timeout is `call`'s; this one only ends
            // what outlives it by far.
            request_timeout: setup,
            // One attempt per request: the workload retries, and the
            // checker sees every outcome.
            attempts_max: 1,
            ..ClientConfig::default()
        };
        let bootstrap = self.broker.to_string();
        let connect = KafkaClient::connect(&bootstrap, config);
        let client = madsim::time::timeout(setup, connect).await.ok()?.ok()?;
        let client = Arc::new(client);
        self.clients.insert(timeout, client.clone());
        Some(client)
    }

    /// Sends a request that gets no answer (produce with acks=0).
    pub async fn send_only(&mut self, request: Request) {
        let _ = self.call(request).await;
    }

    /// Sends a request and waits for its answer; `None` when the outcome
    /// is unknown (timeout, broken connection).
    pub async fn call(&mut self, request: Request) -> Option<Response> {
        let timeout = self.timeout;
        self.call_within(request, timeout).await
    }

    /// Sends a copy of `request` later, on a connection of its own.
    fn maybe_duplicate(&mut self, request: &Request, timeout: Duration) {
        let Some(d) = &mut self.duplicates else { return };
        if !d.rng.chance(d.rate) {
            return;
        }
        d.counters.fault("dup");
        let delay = Duration::from_micros(d.rng.range(0, 20_000));
        let mut copy =
            Client::new(self.broker, format!("{}-dup", self.client_id), timeout, self.taints.clone(), None);
        copy.fetch_wait = self.fetch_wait;
        let request = request.clone();
        madsim::task::spawn(async move {
            madsim::time::sleep(delay).await;
            let _ = copy.call_within(request, timeout).await;
        });
    }

    /// `call` with its own timeout (a JoinGroup waits for the rebalance).
    pub async fn call_within(&mut self, request: Request, timeout: Duration) -> Option<Response> {
        let lo = self.loss_epoch();
        self.maybe_duplicate(&request, timeout);
        let client = self.kafka(timeout).await?;
        // A fetch may wait at the broker before it answers.
        let bound = timeout + self.fetch_wait;
        let outcome = madsim::time::timeout(bound, run(&client, request, self.fetch_wait)).await;
        let answer = match outcome {
            Ok(Ok(response)) => Some(response),
            Ok(Err(e)) => member_id_required(&e).or_else(|| {
                let code = e.kafka_code()?;
                Some(Response::Error { code, message: e.to_string(), log_range: None })
            }),
            Err(_) => None,
        };
        if answer.is_none() {
            // A connection with a request of unknown fate: start afresh.
            self.clients.remove(&timeout);
        } else {
            self.last_epochs = Epochs { lo, hi: self.loss_epoch() };
        }
        answer
    }
}

fn member_id_required(e: &ClientError) -> Option<Response> {
    match e {
        ClientError::MemberIdRequired { member_id, .. } => Some(Response::Joined {
            error: ErrorCode::MemberIdRequired.code(),
            generation: -1,
            leader: String::new(),
            member_id: member_id.clone(),
            protocol: None,
            members: Vec::new(),
        }),
        _ => None,
    }
}

fn acks_of(acks: i8) -> Acks {
    match acks {
        0 => Acks::None,
        1 => Acks::Leader,
        _ => Acks::All,
    }
}

fn offset_spec(timestamp: i64) -> OffsetSpec {
    match timestamp {
        -2 => OffsetSpec::Earliest,
        -1 => OffsetSpec::Latest,
        t => OffsetSpec::Timestamp(t),
    }
}

/// Kafka's OFFSET_OUT_OF_RANGE: the checker is told the log's range.
const OFFSET_OUT_OF_RANGE: i16 = ErrorCode::OffsetOutOfRange as i16;

async fn run(client: &KafkaClient, request: Request, fetch_wait: Duration) -> Result<Response, ClientError> {
    match request {
        Request::CreateTopic { name, partitions, configs } => {
            let topic =
                NewTopic { name, partitions: Some(partitions as i32), replication_factor: None, configs };
            client.create_topic(&topic).await.map(|()| Response::Created)
        }
        Request::DeleteTopic { name } => client.delete_topic(&name).await.map(|()| Response::Deleted),
        Request::Produce { topic, partition, acks, records } => {
            let ack = client.produce_batch(&topic, partition, records, acks_of(acks)).await?;
            Ok(Response::Produced {
                base_offset: u64::try_from(ack.base_offset).unwrap_or(0),
                log_start_offset: u64::try_from(ack.log_start_offset).unwrap_or(0),
            })
        }
        Request::Fetch { topic, partition, offset, max_bytes } => {
            let max_bytes = i32::try_from(max_bytes).unwrap_or(i32::MAX);
            let options = FetchOptions {
                max_wait: fetch_wait,
                min_bytes: 1,
                max_bytes,
                partition_max_bytes: max_bytes,
            };
            let position = FetchPosition { partition, offset };
            match client.fetch_batches(&topic, &[position], &options).await {
                Ok(mut fetched) if !fetched.is_empty() => {
                    let f = fetched.swap_remove(0);
                    Ok(Response::Fetched {
                        records: f.bytes,
                        high_watermark: u64::try_from(f.high_watermark).unwrap_or(0),
                        log_start_offset: u64::try_from(f.log_start_offset).unwrap_or(0),
                    })
                }
                Ok(_) => Err(ClientError::Protocol {
                    addr: "broker".into(),
                    reason: format!("a fetch of {topic}-{partition} came back with no partition"),
                }),
                Err(e) if e.kafka_code() == Some(OFFSET_OUT_OF_RANGE) => {
                    // Kafka's answer names no range: ask for it, so the
                    // checker can judge the refusal (a log that shrank
                    // below what a reader had read is a violation).
                    let start = client.list_offset(&topic, partition, OffsetSpec::Earliest).await?;
                    let end = client.list_offset(&topic, partition, OffsetSpec::Latest).await?;
                    let range = (u64::try_from(start).unwrap_or(0), u64::try_from(end).unwrap_or(0));
                    Ok(Response::Error {
                        code: OFFSET_OUT_OF_RANGE,
                        message: e.to_string(),
                        log_range: Some(range),
                    })
                }
                Err(e) => Err(e),
            }
        }
        Request::InitProducerId => {
            let identity = client.init_producer_id().await?;
            Ok(Response::ProducerId { id: identity.producer_id, epoch: identity.producer_epoch })
        }
        Request::ListOffsets { topic, partition, timestamp } => {
            let offset = client.list_offset(&topic, partition, offset_spec(timestamp)).await?;
            Ok(Response::Offset { offset })
        }
        Request::FindCoordinator { group } => {
            let found = client.find_coordinator(&group).await?;
            Ok(Response::Coordinator { node_id: found.node_id })
        }
        Request::JoinGroup {
            group,
            member_id,
            instance_id,
            session_timeout_ms,
            rebalance_timeout_ms,
            protocols,
        } => {
            let connection = client.coordinator_connection(&group).await?;
            let join = JoinRequest {
                group,
                member_id,
                group_instance_id: instance_id,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocol_type: CONSUMER_PROTOCOL_TYPE.into(),
                protocols,
            };
            let joined = group::join_group(&connection, &join).await?;
            Ok(Response::Joined {
                error: 0,
                generation: joined.generation,
                leader: joined.leader,
                member_id: joined.member_id,
                protocol: joined.protocol_name,
                members: joined
                    .members
                    .into_iter()
                    .map(|m| MemberSubscription {
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        // An unreadable subscription (the checker judges what
                        // the coordinator passed on) subscribes to nothing.
                        subscription: decode_subscription(&m.metadata).unwrap_or_default(),
                    })
                    .collect(),
            })
        }
        Request::SyncGroup { group, generation, member_id, instance_id, protocol, assignments } => {
            let connection = client.coordinator_connection(&group).await?;
            let membership = Membership {
                protocol_name: protocol,
                ..membership(group, member_id, instance_id, generation)
            };
            let assignment = group::sync_group(&connection, &membership, &assignments).await?;
            Ok(Response::Synced { error: 0, assignment })
        }
        Request::Heartbeat { group, generation, member_id, instance_id } => {
            let connection = client.coordinator_connection(&group).await?;
            group::heartbeat(&connection, &membership(group, member_id, instance_id, generation)).await?;
            Ok(Response::GroupOk)
        }
        Request::LeaveGroup { group, member_id, instance_id } => {
            let connection = client.coordinator_connection(&group).await?;
            group::leave_group(&connection, &group, &member_id, instance_id.as_deref()).await?;
            Ok(Response::GroupOk)
        }
        Request::OffsetCommit { group, generation, member_id, instance_id, offsets } => {
            let count = offsets.len();
            let offsets = offsets.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
            client.commit_offsets(&membership(group, member_id, instance_id, generation), &offsets).await?;
            Ok(Response::Committed { errors: vec![0; count] })
        }
        Request::OffsetFetch { group, partitions } => {
            let mut asked: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in &partitions {
                asked.entry(topic.clone()).or_default().push(*partition);
            }
            let committed = client.fetch_committed(&group, Some(&asked)).await?;
            let offsets = partitions
                .into_iter()
                .map(|(t, p)| {
                    let offset = committed.get(&(t.clone(), p)).copied().unwrap_or(-1);
                    (t, p, offset, 0)
                })
                .collect();
            Ok(Response::Offsets { offsets })
        }
    }
}

fn membership(group: String, member_id: String, instance_id: Option<String>, generation: i32) -> Membership {
    Membership {
        group,
        member_id,
        group_instance_id: instance_id,
        generation,
        protocol_type: CONSUMER_PROTOCOL_TYPE.into(),
        protocol_name: None,
    }
}
