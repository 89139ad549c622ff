//! The brokers' requests to the controller leader: registration,
//! heartbeats and controlled shutdown, topic and partition changes,
//! leader elections, producer id blocks, credentials, ACLs and quotas. Each is planned from the image (`plan`) and
//! proposed; its answer comes once the proposal applied.

use super::{not_controller, BrokerState, Controller, ProposalId, PRODUCER_ID_BLOCK};
use crate::controller::plan::{self, ElectionType, PartitionElection, Wanted};
use crate::controller::records::{Endpoint, IsrChange, MetadataRecord};
use crate::error::{BrokerError, ErrorCode};
use crate::security::state::SecurityChange;
use std::collections::BTreeMap;

impl Controller {
    /// A broker (re)registers. Its session starts now.
    pub fn register_broker(
        &mut self,
        node_id: i32,
        incarnation: u64,
        endpoints: Vec<Endpoint>,
        now_ms: i64,
    ) -> Result<ProposalId, BrokerError> {
        let id = self.propose(vec![MetadataRecord::RegisterBroker { node_id, incarnation, endpoints }])?;
        self.sessions.insert(node_id, (incarnation, now_ms));
        Ok(id)
    }

    /// A broker's heartbeat: keeps its session, and asks to unfence it
    /// once its registration has applied.
    pub fn broker_heartbeat(
        &mut self,
        node_id: i32,
        incarnation: u64,
        now_ms: i64,
    ) -> Result<BrokerState, BrokerError> {
        if !self.is_leader() {
            return Err(not_controller(self.leader()));
        }
        let Some(broker) = self.image.brokers.get(&node_id).filter(|b| b.incarnation == incarnation) else {
            return Err(BrokerError::new(
                ErrorCode::StaleBrokerEpoch,
                format!("broker {node_id} incarnation {incarnation} is not registered"),
            ));
        };
        let fenced = broker.fenced;
        self.sessions.insert(node_id, (incarnation, now_ms));
        if fenced {
            self.unfence_wanted.insert((node_id, incarnation));
        }
        Ok(BrokerState { fenced })
    }

    /// A broker shutting down (Kafka's controlled shutdown): this
    /// incarnation is fenced now, so its leaderships move to other ISR
    /// members and it leaves every ISR before it stops, rather than once
    /// its session lapses. It must stop heartbeating first (a fenced broker
    /// that heartbeats is let back in).
    pub fn controlled_shutdown(&mut self, node_id: i32, incarnation: u64) -> Result<ProposalId, BrokerError> {
        if !self.caught_up() {
            return Err(not_controller(self.leader()));
        }
        if self.image.brokers.get(&node_id).is_none_or(|b| b.incarnation != incarnation) {
            return Err(BrokerError::new(
                ErrorCode::StaleBrokerEpoch,
                format!("broker {node_id} incarnation {incarnation} is not registered"),
            ));
        }
        self.unfence_wanted.remove(&(node_id, incarnation));
        tracing::info!(broker = node_id, "fencing a broker for its controlled shutdown");
        self.propose(plan::fence(&self.image, node_id, incarnation))
    }

    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<ProposalId, BrokerError> {
        if !self.caught_up() {
            return Err(not_controller(self.leader()));
        }
        let topic_id = format!("{:016x}{:016x}", self.entropy.next_u64(), self.entropy.next_u64());
        let record =
            plan::create_topic(&self.image, name, topic_id, partitions, replication_factor, configs)?;
        self.propose(vec![record])
    }

    /// A block of producer ids for `node_id`: the proposal and the block's
    /// first id (the block is the broker's once the proposal applies).
    pub fn allocate_producer_ids(&mut self, node_id: i32) -> Result<(ProposalId, i64), BrokerError> {
        if !self.caught_up() {
            return Err(not_controller(self.leader()));
        }
        let first = self.image.next_producer_id.max(self.producer_ids_proposed);
        let count = PRODUCER_ID_BLOCK;
        let id = self.propose(vec![MetadataRecord::ProducerIds { node_id, first, count }])?;
        self.producer_ids_proposed = first + count;
        Ok((id, first))
    }

    /// A partition leader's AlterPartition: the change's ISR becomes the
    /// partition's (see `plan::alter_isr`). `Ok(None)` when
    /// the ISR already is that; otherwise the proposal, which is overtaken
    /// (and answered with an error) if the partition changed before it
    /// applied.
    pub fn alter_partition(
        &mut self,
        node_id: i32,
        change: &IsrChange,
    ) -> Result<Option<ProposalId>, BrokerError> {
        if !self.caught_up() {
            return Err(not_controller(self.leader()));
        }
        match plan::alter_isr(&self.image, node_id, change)? {
            Some(record) => self.propose(vec![record]).map(Some),
            None => Ok(None),
        }
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<ProposalId, BrokerError> {
        if !self.caught_up() {
            return Err(not_controller(self.leader()));
        }
        let Some(topic) = self.image.topics.get(name) else {
            return Err(BrokerError::new(ErrorCode::UnknownTopicOrPartition, format!("no topic {name}")));
        };
        let record = MetadataRecord::DeleteTopic { name: name.to_string(), topic_id: topic.topic_id.clone() };
        self.propose(vec![record])
    }

    /// Credential, ACL and quota changes, committed together. They are
    /// absolute (`security::state`), so nothing is checked against the
    /// image: the broker validated them, and one planned from a slightly
    /// older image still means what it says.
    pub fn change_security(&mut self, changes: Vec<SecurityChange>) -> Result<ProposalId, BrokerError> {
        if changes.is_empty() {
            return Err(BrokerError::new(ErrorCode::InvalidRequest, "no security change to make"));
        }
        self.propose(changes.into_iter().map(MetadataRecord::Security).collect())
    }

    /// Grows topic `name` to `count` partitions (`plan::create_partitions`).
    pub fn create_partitions(&mut self, name: &str, count: i32) -> Result<ProposalId, BrokerError> {
        if !self.caught_up() {
            return Err(not_controller(self.leader()));
        }
        let record = plan::create_partitions(&self.image, name, count)?;
        self.propose(vec![record])
    }

    /// Topic `name`'s overrides become `configs` if they still are
    /// `expected` (`plan::alter_topic_configs`).
    pub fn alter_topic_configs(
        &mut self,
        name: &str,
        expected: BTreeMap<String, String>,
        configs: BTreeMap<String, String>,
    ) -> Result<ProposalId, BrokerError> {
        if !self.caught_up() {
            return Err(not_controller(self.leader()));
        }
        let record = plan::alter_topic_configs(&self.image, name, expected, configs)?;
        self.propose(vec![record])
    }

    /// An operator's leader election (`plan::elect_leaders`): each
    /// partition's outcome, and the proposal carrying the new leaders when
    /// any was elected (the outcomes hold once it applies).
    pub fn elect_leaders(
        &mut self,
        election: ElectionType,
        wanted: &Wanted,
    ) -> Result<(Option<ProposalId>, Vec<PartitionElection>), BrokerError> {
        if !self.caught_up() {
            return Err(not_controller(self.leader()));
        }
        let (records, outcomes) = plan::elect_leaders(&self.image, election, wanted);
        if records.is_empty() {
            return Ok((None, outcomes));
        }
        Ok((Some(self.propose(records)?), outcomes))
    }
}
