//! `GroupMember`: one member of a consumer group, speaking Kafka's classic
//! (eager) rebalance protocol with the "consumer" protocol type and the
//! range assignor, so it can share a group with Java and librdkafka
//! consumers.
//!
//! `join` runs JoinGroup (again with the member id the coordinator hands
//! out on MEMBER_ID_REQUIRED), computes the assignment if this member is
//! the leader, runs SyncGroup, and starts heartbeating in the background
//! every `session_timeout / 3`. When a heartbeat or a commit learns that
//! the group is rebalancing or has moved past this member's generation
//! (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID), the
//! member is marked for rejoining: `rejoin_needed` turns true and
//! `wait_rejoin_needed` completes, and the owner calls `join` again.
//! Coordinator errors (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
//! COORDINATOR_LOAD_IN_PROGRESS) and broken connections make it find the
//! coordinator again, backing off.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringtail_engine::watch;
use tokio::task::JoinHandle;

use super::assignor::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription, range_assign, Assignment,
    MemberSubscription, Subscription, CONSUMER_PROTOCOL_TYPE, RANGE_ASSIGNOR,
};
use super::cluster::Client;
use super::error::{code, ClientError, Result};
use super::group::{self, CommittedOffsets, JoinOutcome, JoinRequest, Membership};

/// A member's timeouts, as Kafka's consumer configures them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    /// [session.timeout.ms] Without a heartbeat for this long, the
    /// coordinator removes the member.
    pub session_timeout: Duration,
    /// [max.poll.interval.ms] How long the coordinator waits for members
    /// to rejoin during a rebalance.
    pub rebalance_timeout: Duration,
    /// [group.instance.id] Static membership, if set.
    pub group_instance_id: Option<String>,
    /// How long `join` keeps trying while the coordinator is unavailable.
    pub join_patience: Duration,
}

impl Default for MemberConfig {
    fn default() -> Self {
        MemberConfig {
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            group_instance_id: None,
            join_patience: Duration::from_secs(60),
        }
    }
}

impl MemberConfig {
    pub fn heartbeat_interval(&self) -> Duration {
        (self.session_timeout / 3).max(Duration::from_millis(100))
    }
}

/// Why the member must rejoin; `None` while its generation is current.
type RejoinReason = Option<i16>;

pub struct GroupMember {
    client: Arc<Client>,
    group: String,
    topics: Vec<String>,
    config: MemberConfig,
    /// Empty until the coordinator assigns one.
    member_id: String,
    /// The current generation's membership, while there is one.
    membership: Option<Membership>,
    assignment: Assignment,
    /// Set by the heartbeat task or a refused commit.
    rejoin: watch::Sender<RejoinReason>,
    rejoin_rx: watch::Receiver<RejoinReason>,
    heartbeat: Option<JoinHandle<()>>,
}

impl GroupMember {
    pub fn new(client: Arc<Client>, group: &str, topics: Vec<String>, config: MemberConfig) -> GroupMember {
        let (rejoin, rejoin_rx) = watch::channel(None);
        GroupMember {
            client,
            group: group.to_owned(),
            topics,
            config,
            member_id: String::new(),
            membership: None,
            assignment: Assignment::new(),
            rejoin,
            rejoin_rx,
            heartbeat: None,
        }
    }

    /// The client the member talks through, shared for fetching.
    pub fn client(&self) -> Arc<Client> {
        Arc::clone(&self.client)
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The current generation, if the member is in one.
    pub fn generation(&self) -> Option<i32> {
        self.membership.as_ref().map(|m| m.generation)
    }

    /// This member's partitions in the current generation.
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// Whether the member must call `join` again before going on.
    pub fn rejoin_needed(&self) -> bool {
        self.membership.is_none() || self.rejoin_rx.borrow().is_some()
    }

    /// Completes once the member must rejoin (never, while it need not).
    pub async fn wait_rejoin_needed(&self) {
        let mut rx = self.rejoin_rx.clone();
        if self.membership.is_none() {
            return;
        }
        // An Err means the sender is gone, which cannot happen while self lives.
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Joins the group (again), and returns the new generation's assignment.
    pub async fn join(&mut self) -> Result<&Assignment> {
        self.stop_heartbeat();
        if let Some(reason) = *self.rejoin_rx.borrow() {
            if matches!(reason, code::UNKNOWN_MEMBER_ID | code::FENCED_INSTANCE_ID) {
                self.member_id.clear();
            }
        }
        self.membership = None;
        self.assignment.clear();
        let mut transient_since: Option<Instant> = None;
        let mut attempt = 1;
        loop {
            let error = match self.join_once().await {
                Ok(()) => break,
                Err(e) => e,
            };
            match &error {
                ClientError::MemberIdRequired { member_id, .. } => {
                    self.member_id.clone_from(member_id);
                    continue;
                }
                e if e.kafka_code() == Some(code::UNKNOWN_MEMBER_ID) => {
                    self.member_id.clear();
                    continue;
                }
                e if e.needs_rejoin() => continue,
                e if e.is_coordinator_error() || e.is_connection_failure() || e.is_stale_metadata() => {
                    self.client.forget_coordinator(&self.group).await;
                    let since = *transient_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.config.join_patience {
                        return Err(error);
                    }
                    attempt += 1;
                    tokio::time::sleep(self.client.config().backoff(attempt)).await;
                }
                _ => return Err(error),
            }
        }
        self.rejoin.send_replace(None);
        self.start_heartbeat();
        Ok(&self.assignment)
    }

    /// One JoinGroup and SyncGroup round.
    async fn join_once(&mut self) -> Result<()> {
        let connection = self.client.coordinator_connection(&self.group).await?;
        let metadata = encode_subscription(&Subscription::to(self.topics.clone()))
            .map_err(ClientError::InvalidArgument)?;
        let request = JoinRequest {
            group: self.group.clone(),
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            session_timeout_ms: millis_i32(self.config.session_timeout),
            rebalance_timeout_ms: millis_i32(self.config.rebalance_timeout),
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_owned(),
            protocols: vec![(RANGE_ASSIGNOR.to_owned(), metadata)],
        };
        let joined = group::join_group(&connection, &request).await?;
        self.member_id.clone_from(&joined.member_id);
        let membership = Membership {
            group: self.group.clone(),
            member_id: joined.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            generation: joined.generation,
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_owned(),
            protocol_name: joined.protocol_name.clone(),
        };
        let assignments = if joined.is_leader() { self.assign(&joined).await? } else { Vec::new() };
        let bytes = group::sync_group(&connection, &membership, &assignments).await?;
        let assignment = decode_assignment(&bytes).map_err(|reason| ClientError::Protocol {
            addr: connection.addr().to_owned(),
            reason: format!("assignment from group {}: {reason}", self.group),
        })?;
        self.assignment = assignment;
        self.membership = Some(membership);
        Ok(())
    }

    /// The leader's job: every member's partitions, by the range assignor.
    async fn assign(&self, joined: &JoinOutcome) -> Result<Vec<(String, Bytes)>> {
        if let Some(protocol) = &joined.protocol_name {
            if protocol != RANGE_ASSIGNOR {
                return Err(ClientError::InvalidArgument(format!(
                    "group {} chose assignor {protocol:?}; this client only has {RANGE_ASSIGNOR:?}",
                    self.group
                )));
            }
        }
        let mut members = Vec::with_capacity(joined.members.len());
        let mut topics = std::collections::BTreeSet::new();
        for m in &joined.members {
            // A member whose subscription cannot be read still gets an
            // (empty) assignment rather than failing the whole group.
            let subscription = decode_subscription(&m.metadata).unwrap_or_default();
            topics.extend(subscription.topics.iter().cloned());
            members.push(MemberSubscription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                subscription,
            });
        }
        let mut partition_counts = BTreeMap::new();
        for topic in topics {
            // Topics the cluster does not know are left unassigned, as Kafka does.
            match self.client.refresh_topic(&topic).await {
                Ok(info) => {
                    partition_counts.insert(topic, i32::try_from(info.partitions.len()).unwrap_or(i32::MAX));
                }
                Err(e) if e.kafka_code() == Some(code::UNKNOWN_TOPIC_OR_PARTITION) => {}
                Err(e) => return Err(e),
            }
        }
        range_assign(&members, &partition_counts)
            .into_iter()
            .map(|(member, assignment)| {
                let bytes = encode_assignment(&assignment).map_err(ClientError::InvalidArgument)?;
                Ok((member, bytes))
            })
            .collect()
    }

    /// The committed offsets of this member's partitions.
    pub async fn committed(&self) -> Result<CommittedOffsets> {
        self.client.fetch_committed(&self.group, Some(&self.assignment)).await
    }

    /// Commits `offsets` in the current generation. `Ok(false)`: the
    /// generation is over (the member is marked to rejoin), nothing was
    /// committed.
    pub async fn commit(&mut self, offsets: &CommittedOffsets) -> Result<bool> {
        let Some(membership) = &self.membership else { return Ok(false) };
        match self.client.commit_offsets(membership, offsets).await {
            Ok(()) => Ok(true),
            Err(e) if e.needs_rejoin() || e.kafka_code() == Some(code::FENCED_INSTANCE_ID) => {
                self.rejoin.send_replace(e.kafka_code());
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Leaves the group, so the others take over its partitions at once
    /// rather than after the session timeout. A static member does not
    /// leave (Kafka keeps its partitions for it until the session ends).
    pub async fn leave(&mut self) -> Result<()> {
        self.stop_heartbeat();
        self.membership = None;
        self.assignment.clear();
        if self.member_id.is_empty() || self.config.group_instance_id.is_some() {
            return Ok(());
        }
        let member_id = std::mem::take(&mut self.member_id);
        let group = self.group.clone();
        let result = self
            .client
            .with_coordinator(&group, |connection| {
                let (group, member_id) = (group.clone(), member_id.clone());
                async move { group::leave_group(&connection, &group, &member_id, None).await }
            })
            .await;
        match result {
            // Already gone: the goal is reached.
            Err(e) if e.kafka_code() == Some(code::UNKNOWN_MEMBER_ID) => Ok(()),
            other => other,
        }
    }

    fn start_heartbeat(&mut self) {
        let Some(membership) = self.membership.clone() else { return };
        let client = Arc::clone(&self.client);
        let rejoin = self.rejoin.clone();
        let interval = self.config.heartbeat_interval();
        self.heartbeat = Some(tokio::spawn(heartbeat_loop(client, membership, interval, rejoin)));
    }

    fn stop_heartbeat(&mut self) {
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

/// Heartbeats until the generation ends. Coordinator trouble is retried
/// sooner than the interval, so a moved coordinator is found in time.
async fn heartbeat_loop(
    client: Arc<Client>,
    membership: Membership,
    interval: Duration,
    rejoin: watch::Sender<RejoinReason>,
) {
    let mut pause = interval;
    loop {
        tokio::time::sleep(pause).await;
        let result = match client.coordinator_connection(&membership.group).await {
            Ok(connection) => group::heartbeat(&connection, &membership).await,
            Err(e) => Err(e),
        };
        pause = match result {
            Ok(()) => interval,
            Err(e) if e.is_coordinator_error() || e.is_connection_failure() => {
                client.forget_coordinator(&membership.group).await;
                (interval / 4).max(Duration::from_millis(50))
            }
            Err(e) => {
                // REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
                // FENCED_INSTANCE_ID, or anything unexpected: rejoin.
                rejoin.send_replace(Some(e.kafka_code().unwrap_or(code::REBALANCE_IN_PROGRESS)));
                return;
            }
        };
    }
}

fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
