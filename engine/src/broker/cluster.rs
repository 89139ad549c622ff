//! A broker in a cluster: its metadata follows the controller quorum's
//! image instead of being its own, and its changes (topics, partitions,
//! topic configs, leader elections, producer id blocks) go through the
//! quorum.
//!
//! Credentials, ACLs and client quotas are the quorum's too: a change made
//! through any broker is committed there and followed by all.
//!
//! The owner (the server, the simulator) carries requests to the quorum
//! (`ControllerLink`) and hands every newer image it fetches to
//! `follow_image`. The local `cluster-metadata.json` keeps the last image
//! followed, so a restart finds the logs the cluster placed here, and the
//! cluster id the data directory belongs to.
//!
//! Invariants:
//! - C1: a data directory serves one cluster: an image of another
//!   cluster id is refused, never applied.
//! - C2: images are followed in the order the quorum applied them (by
//!   applied index): an older one, fetched late (from a lagging voter, say),
//!   changes nothing, across restarts too (the index is kept with the
//!   metadata).
//! - C3: a topic change answers its client only once this broker's image
//!   holds it, so the client's next request here sees it.
//! - C4: a partition is led here only while the image shows this start's
//!   incarnation registered and unfenced. A restart registers a new
//!   incarnation, fenced, and the quorum moves every leadership off a
//!   fenced broker (a new leader epoch) before unfencing it, so no leader
//!   epoch spans a restart: a leader that lost an unsynced tail in a crash
//!   never goes on at the epoch its followers copied that tail under.

use super::metadata::{ClusterMetadata, PartitionAssignment, TopicState};
use super::metadata_journal::MetadataChange;
use super::{Broker, BrokerEndpoint};
use crate::controller::plan::{ElectionType, PartitionElection, Wanted};
use crate::controller::{IsrChange, MetadataImage};
use crate::error::{BrokerError, ErrorCode};
use crate::io::Disk;
use crate::security::state::SecurityChange;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

pub type LinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BrokerError>> + Send + 'a>>;

/// How a broker asks the controller quorum for changes. Each call returns
/// once the change is committed and this broker has followed the image to
/// it (C3), or with the error the quorum gave (NOT_CONTROLLER when none
/// could be reached in time).
pub trait ControllerLink: Send + Sync + 'static {
    fn create_topic(
        &self,
        name: String,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> LinkFuture<'_, ()>;

    fn delete_topic(&self, name: String) -> LinkFuture<'_, ()>;

    /// Grows topic `name` to `count` partitions (Kafka's CreatePartitions),
    /// placed by the controller.
    fn create_partitions(&self, name: String, count: i32) -> LinkFuture<'_, ()>;

    /// Topic `name`'s config overrides become `configs`, if the quorum's
    /// are still `expected` (those the change was computed from here);
    /// INVALID_UPDATE_VERSION otherwise.
    fn alter_topic_configs(
        &self,
        name: String,
        expected: BTreeMap<String, String>,
        configs: BTreeMap<String, String>,
    ) -> LinkFuture<'_, ()>;

    /// Kafka's ElectLeaders for `wanted` (every partition if `None`): each
    /// partition's outcome, once any leader elected is in this broker's
    /// image too (C3).
    fn elect_leaders(&self, election: ElectionType, wanted: Wanted)
        -> LinkFuture<'_, Vec<PartitionElection>>;

    /// Credential, ACL and quota changes, committed together.
    fn change_security(&self, changes: Vec<SecurityChange>) -> LinkFuture<'_, ()>;

    /// A block of producer ids no other broker is given: `(first, count)`.
    fn allocate_producer_ids(&self) -> LinkFuture<'_, (i64, i64)>;

    /// As this partition's leader, at the leader and partition epochs of
    /// this broker's image: its ISR becomes `isr` (Kafka's AlterPartition).
    /// Refused with FENCED_LEADER_EPOCH or INVALID_UPDATE_VERSION when the
    /// image here is behind the quorum's.
    fn alter_partition(&self, change: IsrChange) -> LinkFuture<'_, ()>;
}

/// Why an image could not be followed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(
        "this data directory belongs to cluster {ours}, but the controller quorum is cluster {theirs}: \
         use another data directory, or the controllers of cluster {ours}"
    )]
    OtherCluster { ours: String, theirs: String },
    #[error("{0}")]
    Storage(BrokerError),
}

/// What the rest of the cluster looks like from here: the quorum's live
/// brokers and its leader. `None` on a single node.
#[derive(Clone, Debug, Default)]
pub(super) struct ClusterView {
    pub brokers: Vec<BrokerEndpoint>,
    /// Registered brokers the quorum has fenced (missed heartbeats).
    pub fenced: Vec<BrokerEndpoint>,
    /// The live brokers' addresses on each listener, by listener name.
    pub listeners: BTreeMap<String, Vec<BrokerEndpoint>>,
    pub controller: Option<i32>,
    pub applied: u64,
    /// This start's registration, once the owner registered it.
    pub incarnation: Option<u64>,
    /// C4: the image shows that registration, unfenced.
    pub may_lead: bool,
}

impl<D: Disk> Broker<D> {
    /// The link to the quorum; set once, before clients are served.
    pub fn attach_controller(&self, link: std::sync::Arc<dyn ControllerLink>) {
        if self.controller_link.set(link).is_err() {
            tracing::warn!("a controller link was already attached; keeping the first");
        }
    }

    pub(super) fn link(&self) -> Result<&dyn ControllerLink, BrokerError> {
        self.controller_link
            .get()
            .map(|l| l.as_ref())
            .ok_or_else(|| BrokerError::new(ErrorCode::NotController, "no link to the controller quorum yet"))
    }

    /// The applied index of the last image followed; changes when a newer
    /// one is (the link waits on it, C3).
    pub fn followed_index(&self) -> crate::watch::Receiver<u64> {
        self.followed.subscribe()
    }

    /// Follows the quorum's image at `applied`, with `controller` its
    /// leader if known: topics, leaders and epochs, the live brokers,
    /// credentials, ACLs and quotas.
    /// Opens the logs of replicas newly placed here and deletes those of
    /// replicas no longer placed here.
    pub async fn follow_image(
        &self,
        image: &MetadataImage,
        applied: u64,
        controller: Option<i32>,
    ) -> Result<(), FollowError> {
        let _one = self.metadata_changes.lock().await;
        let Some(cluster_id) = image.cluster_id.clone() else {
            // A quorum that has committed nothing yet: nothing to follow.
            return Ok(());
        };
        let ours = self.metadata().cluster_id.clone();
        if !ours.is_empty() && ours != cluster_id {
            return Err(FollowError::OtherCluster { ours, theirs: cluster_id });
        }
        {
            let mut view = self.view();
            if applied < view.applied {
                return Ok(()); // C2
            }
            view.controller = controller;
            view.applied = applied;
            let me = image.brokers.get(&self.config.node_id);
            view.may_lead = me.is_some_and(|b| Some(b.incarnation) == view.incarnation && !b.fenced);
            view.brokers = endpoints(image, false);
            view.fenced = endpoints(image, true);
            view.listeners = listeners(image);
        }
        // What differs from the image, and nothing else, is written.
        let changes = {
            let m = self.metadata();
            let mut changes = Vec::new();
            if m.cluster_id != cluster_id || m.applied != applied {
                changes.push(MetadataChange::Followed { cluster_id, applied });
            }
            for (name, topic) in &image.topics {
                let state = topic_state(topic);
                if m.topics.get(name) != Some(&state) {
                    changes.push(MetadataChange::PutTopic { name: name.clone(), topic: state });
                }
            }
            // CANARY canary-quorum-follow-keeps-deleted (planted bug, sim/canaries):
            // deleted topics stay.
            if !crate::canary::Canary::FollowKeepsDeleted.on() {
                let gone = m.topics.keys().filter(|name| !image.topics.contains_key(*name));
                changes.extend(gone.map(|name| MetadataChange::DeleteTopic { name: name.clone() }));
            }
            // CANARY canary-quorum-follow-skips-security (planted bug, sim/canaries):
            // credentials, ACLs and quotas stay as they were.
            if !crate::canary::Canary::FollowSkipsSecurity.on() {
                let security = m.security.changes_to(&image.security);
                changes.extend(security.into_iter().map(MetadataChange::Security));
            }
            changes
        };
        if !changes.is_empty() {
            self.persist(changes).await.map_err(FollowError::Storage)?;
        }
        self.sync_partitions_with_metadata(None).await.map_err(|e| {
            FollowError::Storage(BrokerError::new(ErrorCode::KafkaStorageError, e.to_string()))
        })?;
        self.followed.send_if_modified(|at| {
            let newer = applied > *at;
            *at = (*at).max(applied);
            newer
        });
        Ok(())
    }

    /// A producer id from this broker's block, taking a new block from the
    /// quorum when it is used up. The quorum never hands a block out twice,
    /// so ids are unique across brokers and restarts (a restart starts a
    /// new block). The metadata lock is not held meanwhile: the image goes
    /// on being followed.
    pub(super) async fn init_producer_id_in_cluster(&self) -> Result<(i64, i16), BrokerError> {
        let mut block = self.producer_block.lock().await;
        if block.start >= block.end {
            let (first, count) = self.link()?.allocate_producer_ids().await?;
            *block = first..first.saturating_add(count);
        }
        let id = block.start;
        block.start += 1;
        Ok((id, 0))
    }

    /// The incarnation this start registers with (C4); set before the
    /// first image is followed.
    pub fn set_incarnation(&self, incarnation: u64) {
        self.view().incarnation = Some(incarnation);
    }

    /// The live brokers' addresses on the listener named `listener`, as
    /// they registered them; none on a single node (whose only broker
    /// knows its own addresses).
    pub fn listener_endpoints(&self, listener: &str) -> Vec<BrokerEndpoint> {
        self.view().listeners.get(listener).cloned().unwrap_or_default()
    }

    /// The quorum's leader as last heard, when the image has not moved.
    pub fn note_controller(&self, controller: Option<i32>) {
        self.view().controller = controller;
    }

    /// Creates a topic through the quorum (validated here first).
    pub(super) async fn create_topic_in_cluster(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicState, BrokerError> {
        let partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
        self.link()?.create_topic(name.to_string(), partitions, replication_factor, configs).await?;
        self.metadata().topics.get(name).cloned().ok_or_else(|| {
            // Deleted again between its creation and now.
            BrokerError::new(ErrorCode::UnknownTopicOrPartition, format!("topic {name} was deleted again"))
        })
    }
}

/// The registered brokers that are fenced, or that are not.
fn endpoints(image: &MetadataImage, fenced: bool) -> Vec<BrokerEndpoint> {
    image
        .brokers
        .iter()
        .filter(|(_, b)| b.fenced == fenced)
        .filter_map(|(id, b)| {
            let e = b.endpoints.first()?;
            Some(BrokerEndpoint { node_id: *id, host: e.host.clone(), port: i32::from(e.port) })
        })
        .collect()
}

/// The live brokers' addresses on each listener they registered.
fn listeners(image: &MetadataImage) -> BTreeMap<String, Vec<BrokerEndpoint>> {
    let mut by_name: BTreeMap<String, Vec<BrokerEndpoint>> = BTreeMap::new();
    for (id, b) in image.brokers.iter().filter(|(_, b)| !b.fenced) {
        for e in &b.endpoints {
            let endpoint = BrokerEndpoint { node_id: *id, host: e.host.clone(), port: i32::from(e.port) };
            by_name.entry(e.name.clone()).or_default().push(endpoint);
        }
    }
    by_name
}

fn topic_state(topic: &crate::controller::image::TopicImage) -> TopicState {
    TopicState {
        topic_id: topic.topic_id.clone(),
        partitions: topic
            .partitions
            .iter()
            .map(|p| PartitionAssignment {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                partition_epoch: p.partition_epoch,
            })
            .collect(),
        configs: topic.configs.clone(),
    }
}

/// A new data directory of a cluster node has no cluster id until the
/// first image names one.
pub(super) fn unclaimed() -> ClusterMetadata {
    ClusterMetadata::new(String::new())
}
