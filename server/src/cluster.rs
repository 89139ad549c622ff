//! A server that is a member of a cluster (`--controllers`): its
//! controller voter if it is one, and its broker's side of the quorum:
//! registering and heartbeating (so it is unfenced and stays so),
//! following the metadata image, and the `ControllerLink` its topic,
//! partition, config, leader, producer-id and security changes go through.
//!
//! Start-up waits until the broker has followed a first image: a broker
//! answers clients from the cluster's metadata, never from a stale or
//! foreign one (a data directory of another cluster is refused then).

use crate::clock::MonotonicClock;
use crate::config::{Controller as Voter, InterBroker, ServeConfig};
use crate::metered_disk::{MeteredDisk, ServerBroker};
use crate::quorum::client::QuorumClient;
use crate::quorum::tls::ControllerTls;
use crate::quorum::voter;
use crate::quorum::wire::{Ask, Outcome};
use crate::replication::{self, FetcherConfig};
use crate::security::authorize::AuthorizerKind;
use crate::serve::ServeError;
use ringtail_client::ClientConfig;
use ringtail_engine::broker::{
    ControllerLink, ElectionType, FollowError, IsrChange, LinkFuture, PartitionElection, Wanted,
};
use ringtail_engine::clock::Clock;
use ringtail_engine::controller::{Endpoint, QuorumConfig, QuorumNode};
use ringtail_engine::entropy::Entropy;
use ringtail_engine::error::{BrokerError, ErrorCode};
use ringtail_engine::security::state::SecurityChange;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long one request to a voter may take before the next is tried.
const VOTER_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Heartbeats per broker session (the controller's is 9 s).
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(1_000);
/// How often the image is fetched when nothing asks for it sooner.
const IMAGE_POLL: Duration = Duration::from_millis(200);
/// Pause before asking again after the quorum could not be reached.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// How long a topic change waits to commit and reach this broker's image.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(15);

/// The tasks of a cluster member; `stop` ends them.
pub struct Membership {
    voter: Option<JoinHandle<std::io::Error>>,
    session: JoinHandle<()>,
    follower: JoinHandle<FollowError>,
    /// The replica fetchers, and the leaders' ISR changes.
    replication: [JoinHandle<()>; 2],
    /// Resolves with the first failed (poisoned) log it finds.
    logs: JoinHandle<String>,
    /// How this broker asks the quorum for changes, and the incarnation it
    /// registered: for its controlled shutdown.
    link: Arc<Link>,
    incarnation: u64,
}

impl Membership {
    /// Resolves when the member can go on no longer: its voter's disk
    /// failed, a partition's log failed, or its data directory belongs to
    /// another cluster.
    pub async fn failed(&mut self) -> ServeError {
        let voter = async {
            match &mut self.voter {
                Some(voter) => voter.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            failed = voter => match failed {
                Ok(e) => ServeError::Quorum(format!("the controller voter stopped: {e}")),
                Err(e) => ServeError::Task(e.to_string()),
            },
            failed = &mut self.follower => match failed {
                Ok(e) => ServeError::Quorum(e.to_string()),
                Err(e) => ServeError::Task(e.to_string()),
            },
            failed = &mut self.logs => match failed {
                Ok(e) => ServeError::LogFailed(e),
                Err(e) => ServeError::Task(e.to_string()),
            },
        }
    }

    /// Kafka's controlled shutdown, before the server stops serving: stops
    /// heartbeating (a fenced broker that heartbeats is let back in), then
    /// asks the controller to fence this incarnation now, which moves its
    /// leaderships to other ISR members and takes it out of every ISR.
    /// Returns once this broker's image shows that (its partitions lead no
    /// more: acks=all waits end with NOT_LEADER_OR_FOLLOWER and clients find
    /// the new leaders), or after `timeout`; without it the partitions would
    /// stay led by a stopped broker until its session lapsed.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        self.session.abort();
        let ask = Ask::ControlledShutdown { node_id: self.link.node_id, incarnation: self.incarnation };
        match tokio::time::timeout(timeout, self.link.change(ask)).await {
            Ok(Ok(())) => tracing::info!("controlled shutdown: leaderships moved to other in-sync replicas"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "controlled shutdown refused; partitions move once the session lapses")
            }
            Err(_) => tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "controlled shutdown not answered in time; partitions move once the session lapses"
            ),
        }
    }

    pub fn stop(self) {
        if let Some(voter) = self.voter {
            voter.abort();
        }
        self.session.abort();
        self.follower.abort();
        self.logs.abort();
        for task in self.replication {
            task.abort();
        }
    }
}

/// Joins the cluster: starts this node's voter (if it is one), registers
/// the broker, and returns once the broker has followed the quorum's first
/// image.
pub async fn join(
    config: &ServeConfig,
    broker: Arc<ServerBroker>,
    disk: MeteredDisk,
    endpoints: Vec<Endpoint>,
    entropy: Arc<dyn Entropy>,
) -> Result<Membership, ServeError> {
    let security = config.inter_broker.security().map_err(ServeError::Quorum)?;
    let principal = InterBroker::principal(&security);
    if config.authorizer == AuthorizerKind::Acl && !config.super_users.contains(&principal) {
        tracing::warn!(
            principal,
            "followers fetch as a principal that is no super user: it needs ClusterAction on the cluster \
             (ringtail acl add --cluster --operation ClusterAction --principal ...), or nothing replicates"
        );
    }
    let fetcher = FetcherConfig {
        listener: config.inter_broker.listener.clone(),
        client: ClientConfig { security, ..ClientConfig::default() },
    };
    let voters = resolve_voters(&config.controllers).await?;
    let tls = match &config.controller_tls {
        None => None,
        Some(files) => Some(Arc::new(ControllerTls::load(files, &config.controllers).map_err(|e| {
            ServeError::Tls { listener: "controller".into(), key: e.field, problem: e.problem }
        })?)),
    };
    let voter = match config.controllers.iter().find(|v| v.node_id == config.node_id) {
        // Raft's ticks and the brokers' sessions count monotonic time: a
        // stepped wall clock must not fence every broker at once or stall
        // elections.
        Some(me) => Some(
            start_voter(
                config,
                me,
                &voters,
                disk,
                Arc::new(MonotonicClock::new()),
                entropy.clone(),
                tls.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let client = Arc::new(QuorumClient::new(voters, VOTER_TIMEOUT).with_tls(tls));
    let wake = Arc::new(Notify::new());
    let link = Arc::new(Link {
        client: client.clone(),
        broker: broker.clone(),
        wake: wake.clone(),
        node_id: config.node_id,
    });
    broker.attach_controller(link.clone());
    let (registered_tx, mut registered) = ringtail_engine::watch::channel(0);
    let incarnation = entropy.next_u64();
    broker.set_incarnation(incarnation);
    let session =
        tokio::spawn(keep_session(client.clone(), config.node_id, endpoints, incarnation, registered_tx));
    let follower = tokio::spawn(follow(client, broker.clone(), wake));
    let replication = [
        tokio::spawn(replication::run(broker.clone(), fetcher)),
        tokio::spawn(replication::tick_isr(broker.clone())),
    ];
    let logs = tokio::spawn(first_failed_log(broker.clone()));
    let mut membership = Membership { voter, session, follower, replication, logs, link, incarnation };
    // Ready once the image followed holds this start's registration (so
    // it is no stale image a voter replayed from its disk) and this broker
    // is alive in it: then a topic created next may place replicas here.
    let (followed, me, live) = (broker.followed_index(), config.node_id, broker.clone());
    let caught_up = async move {
        let Ok(index) = registered.wait_for(|index| *index > 0).await else {
            return std::future::pending().await;
        };
        let mut followed = followed;
        let _ = followed.wait_for(|at| *at >= index && live.brokers().iter().any(|b| b.node_id == me)).await;
    };
    tracing::info!(voters = config.controllers.len(), "waiting for the metadata quorum");
    tokio::select! {
        biased;
        _ = caught_up => {}
        failed = membership.failed() => {
            membership.stop();
            return Err(failed);
        }
    }
    tracing::info!(cluster = %broker.cluster_id(), controller = broker.controller_id(), "following the metadata quorum");
    Ok(membership)
}

async fn resolve_voters(controllers: &[Voter]) -> Result<BTreeMap<u64, SocketAddr>, ServeError> {
    let mut voters = BTreeMap::new();
    for voter in controllers {
        let address = voter.address.to_string();
        let resolved = tokio::net::lookup_host(&address).await.ok().and_then(|mut a| a.next());
        let Some(resolved) = resolved else {
            return Err(ServeError::Quorum(format!("cannot resolve controller {}@{address}", voter.node_id)));
        };
        voters.insert(voter.node_id as u64, resolved);
    }
    Ok(voters)
}

async fn start_voter(
    config: &ServeConfig,
    me: &Voter,
    voters: &BTreeMap<u64, SocketAddr>,
    disk: MeteredDisk,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    tls: Option<Arc<ControllerTls>>,
) -> Result<JoinHandle<std::io::Error>, ServeError> {
    // The address the peers were told, unless --controller-listen says
    // where to bind (0.0.0.0, say).
    let listen = config.controller_listen.as_ref().unwrap_or(&me.address);
    let listener = TcpListener::bind(listen.to_string()).await.map_err(|source| ServeError::Bind {
        what: "the controller",
        address: listen.to_string(),
        source,
    })?;
    let mut quorum = QuorumConfig::new(me.node_id as u64, voters.keys().copied().collect());
    quorum.leader_rebalance_interval_ms = config.leader_rebalance_interval_ms;
    let node = QuorumNode::open(disk, &config.data_dir, quorum, entropy)
        .await
        .map_err(|e| ServeError::Quorum(format!("opening the metadata quorum's log: {e}")))?;
    let peers = voters.iter().filter(|(id, _)| **id != me.node_id as u64).map(|(id, a)| (*id, *a)).collect();
    Ok(tokio::spawn(voter::run(node, listener, peers, clock, None, tls)))
}

/// How often a member looks for a failed log.
const FAILED_LOG_POLL: Duration = Duration::from_millis(500);

/// Resolves with the first poisoned log of a hosted partition. A member
/// does not reopen one in place (single-node mode does): recovery may cut
/// an unsynced tail its followers already copied, and leading on at the
/// same epoch would let the logs differ where no truncation looks (C4). A
/// restart registers a new incarnation, so the controller moves its
/// leaderships first.
async fn first_failed_log(broker: Arc<ServerBroker>) -> String {
    loop {
        tokio::time::sleep(FAILED_LOG_POLL).await;
        for p in broker.hosted_partitions() {
            if let Some(poisoned) = p.log.poisoned() {
                return format!("the log of {} failed: {poisoned}", p.tp);
            }
        }
    }
}

/// Registers (a new incarnation per start), then heartbeats; registers
/// again if the quorum no longer knows this incarnation.
async fn keep_session(
    client: Arc<QuorumClient>,
    node_id: i32,
    endpoints: Vec<Endpoint>,
    incarnation: u64,
    registered_at: ringtail_engine::watch::Sender<u64>,
) {
    let register = Ask::RegisterBroker { node_id, incarnation, endpoints };
    let mut registered = false;
    let mut fenced = true;
    loop {
        if !registered {
            match client.call(register.clone()).await {
                Some(Outcome::Committed(index)) => {
                    tracing::info!(node_id, incarnation, "registered with the metadata quorum");
                    registered = true;
                    registered_at.send_if_modified(|at| {
                        let first = *at == 0;
                        *at = (*at).max(index);
                        first
                    });
                }
                other => {
                    tracing::debug!(?other, "registration not taken yet");
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            }
        }
        match client.call(Ask::BrokerHeartbeat { node_id, incarnation }).await {
            Some(Outcome::Heartbeat { fenced: now }) => {
                if now != fenced {
                    tracing::info!(
                        node_id,
                        fenced = now,
                        "broker {}",
                        if now { "fenced" } else { "unfenced" }
                    );
                }
                fenced = now;
            }
            Some(Outcome::Refused { code, message, .. }) if code == ErrorCode::StaleBrokerEpoch.code() => {
                tracing::warn!(node_id, %message, "registering again");
                registered = false;
                continue;
            }
            other => tracing::debug!(?other, "heartbeat not answered"),
        }
        tokio::time::sleep(HEARTBEAT_INTERVAL).await;
    }
}

/// Fetches the image whenever it may have moved (every `IMAGE_POLL`, or
/// sooner when woken) and has the broker follow it. Ends only on an image
/// the broker must not follow (another cluster's).
async fn follow(client: Arc<QuorumClient>, broker: Arc<ServerBroker>, wake: Arc<Notify>) -> FollowError {
    let mut after = 0;
    loop {
        match client.call(Ask::Image { after }).await {
            Some(Outcome::Image { applied, leader, image }) => {
                let leader = leader.map(|id| id as i32);
                match image {
                    Some(image) => match broker.follow_image(&image, applied, leader).await {
                        Ok(()) => after = after.max(applied),
                        Err(e @ FollowError::OtherCluster { .. }) => return e,
                        Err(e) => tracing::error!(error = %e, "following the metadata image failed"),
                    },
                    None => broker.note_controller(leader),
                }
            }
            other => tracing::debug!(?other, "the metadata image could not be fetched"),
        }
        let _ = tokio::time::timeout(IMAGE_POLL, wake.notified()).await;
    }
}

/// The broker's way to the quorum.
struct Link {
    client: Arc<QuorumClient>,
    broker: Arc<ServerBroker>,
    wake: Arc<Notify>,
    node_id: i32,
}

impl Link {
    /// Proposes a change; returns once this broker's image holds it.
    async fn change(&self, ask: Ask) -> Result<(), BrokerError> {
        match self.client.call(ask).await {
            Some(Outcome::Committed(index)) => self.followed(index).await,
            other => Err(refusal(other)),
        }
    }

    /// Returns once this broker's image is at `index` (C3).
    async fn followed(&self, index: u64) -> Result<(), BrokerError> {
        self.wake.notify_one();
        let mut followed = self.broker.followed_index();
        let reached = tokio::time::timeout(CHANGE_TIMEOUT, followed.wait_for(|at| *at >= index))
            .await
            .is_ok_and(|waited| waited.is_ok());
        if !reached {
            return Err(BrokerError::new(
                ErrorCode::RequestTimedOut,
                format!("committed at {index}, but not yet in this broker's metadata"),
            ));
        }
        Ok(())
    }
}

impl ControllerLink for Link {
    fn create_topic(
        &self,
        name: String,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> LinkFuture<'_, ()> {
        Box::pin(self.change(Ask::CreateTopic { name, partitions, replication_factor, configs }))
    }

    fn delete_topic(&self, name: String) -> LinkFuture<'_, ()> {
        Box::pin(self.change(Ask::DeleteTopic { name }))
    }

    fn create_partitions(&self, name: String, count: i32) -> LinkFuture<'_, ()> {
        Box::pin(self.change(Ask::CreatePartitions { name, count }))
    }

    fn alter_topic_configs(
        &self,
        name: String,
        expected: BTreeMap<String, String>,
        configs: BTreeMap<String, String>,
    ) -> LinkFuture<'_, ()> {
        Box::pin(self.change(Ask::AlterTopicConfigs { name, expected, configs }))
    }

    fn change_security(&self, changes: Vec<SecurityChange>) -> LinkFuture<'_, ()> {
        Box::pin(self.change(Ask::ChangeSecurity { changes }))
    }

    fn alter_partition(&self, change: IsrChange) -> LinkFuture<'_, ()> {
        Box::pin(self.change(Ask::AlterPartition { node_id: self.node_id, change }))
    }

    fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Wanted,
    ) -> LinkFuture<'_, Vec<PartitionElection>> {
        Box::pin(async move {
            match self.client.call(Ask::ElectLeaders { election, partitions }).await {
                Some(Outcome::Elected { index, outcomes }) => {
                    self.followed(index).await?;
                    Ok(outcomes)
                }
                other => Err(refusal(other)),
            }
        })
    }

    fn allocate_producer_ids(&self) -> LinkFuture<'_, (i64, i64)> {
        Box::pin(async move {
            match self.client.call(Ask::AllocateProducerIds { node_id: self.node_id }).await {
                Some(Outcome::ProducerIds { first, count }) => Ok((first, count)),
                other => Err(refusal(other)),
            }
        })
    }
}

/// What a request the quorum did not carry out answers with.
fn refusal(outcome: Option<Outcome>) -> BrokerError {
    match outcome {
        Some(Outcome::Refused { code, message, .. }) => {
            BrokerError::new(ErrorCode::from_code(code).unwrap_or(ErrorCode::UnknownServerError), message)
        }
        None => BrokerError::new(ErrorCode::NotController, "no controller of the quorum answered"),
        Some(other) => {
            BrokerError::new(ErrorCode::UnknownServerError, format!("unexpected answer {other:?}"))
        }
    }
}
