//! The checker's view of the server from inside the broker node: every
//! request as its handler starts and every reply as the handler ends, in
//! the order the broker produced them, whether or not the reply survives
//! the network. The group invariants judge the coordinator's answers here
//! (G1, G4, G5), and a topic create that arrives late (delayed by the
//! network, or retried) is seen to recreate a topic deleted since.

use crate::checker::{Epochs, UNORDERED_READER};
use crate::world::World;
use bytes::Bytes;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use ringtail_client::assignor::decode_subscription;
use ringtail_client::records::Batches;
use ringtail_engine::group::GroupState;
use ringtail_server::handlers::{Reply, RequestObserver};
use ringtail_server::metered_disk::ServerBroker;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

pub struct Observer {
    pub world: Arc<World>,
    /// The broker the server opened, once it has (commits look at the
    /// group as the coordinator sees it when they arrive).
    pub broker: OnceLock<Arc<ServerBroker>>,
}

/// What `arrived` keeps for `answered`.
enum Arrival {
    /// An OffsetCommit: the checker's token for it.
    Commit((Vec<usize>, Option<(i32, bool)>)),
    /// A SyncGroup: its member and generation.
    Sync {
        member: String,
        generation: i32,
    },
    /// A Fetch: where it asked to read each partition.
    Fetch(BTreeMap<(String, i32), u64>),
    Other,
}

impl Observer {
    fn commit_arrived(&self, request: &kafka_protocol::messages::OffsetCommitRequest) -> Arrival {
        let member = request.member_id.as_str();
        let generation = request.generation_id_or_member_epoch;
        // The group as the coordinator sees it when the commit arrives: a
        // commit from another generation, or from a member no longer in
        // the group, must be refused (G4).
        let arrival =
            self.broker.get().and_then(|broker| broker.describe_group(request.group_id.as_str()).ok()).map(
                |d| {
                    let in_group = d.members.iter().any(|m| m.member_id == member);
                    // A "simple" commit (no generation, no member) is
                    // accepted while the group has no members.
                    let simple = generation < 0 && member.is_empty() && d.state == GroupState::Empty;
                    (if simple { generation } else { d.generation }, in_group || simple)
                },
            );
        let offsets: Vec<(String, i32, i64)> = request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.as_str().to_string(), p.partition_index, p.committed_offset))
            })
            .collect();
        Arrival::Commit(self.world.checker().group_commit_started(member, generation, &offsets, arrival))
    }
}

/// The whole batches at the start of a partition's fetched bytes, as the
/// client splits them: a broker may end an answer with part of a batch,
/// which clients set aside. From a batch whose header does not parse on,
/// everything is kept, for the checker to judge.
fn whole_batches(records: &Bytes) -> Bytes {
    let mut batches = Batches::new(records);
    let malformed = batches.by_ref().any(|b| b.is_err());
    if malformed {
        records.clone()
    } else {
        records.slice(..batches.position())
    }
}

impl Observer {
    /// Every fetch answer, as the broker produced it, goes to the checker
    /// (invariants 3 and 4) whether or not a consumer receives it: what the
    /// broker served below its high watermark must stay, even if the
    /// crash that would take it also cut the connection carrying it.
    fn served(
        &self,
        asked: &BTreeMap<(String, i32), u64>,
        response: &kafka_protocol::messages::FetchResponse,
    ) {
        let mut checker = self.world.checker();
        let epochs = Epochs::at(checker.loss_epoch());
        for t in &response.responses {
            for p in t.partitions.iter().filter(|p| p.error_code == 0) {
                let tp = (t.topic.as_str().to_string(), p.partition_index);
                // Compacted: its offsets have gaps by design (`compacted`).
                if tp.0 == crate::compacted::TOPIC {
                    continue;
                }
                let Some(&requested) = asked.get(&tp) else { continue };
                let records = whole_batches(&p.records.clone().unwrap_or_default());
                let hw = u64::try_from(p.high_watermark).unwrap_or(0);
                let lso = u64::try_from(p.log_start_offset).unwrap_or(0);
                checker.fetched(UNORDERED_READER, &tp, requested, &records, hw, lso, epochs);
            }
        }
    }

    /// A poisoned log (a write or fsync failed) still serves what it holds
    /// in memory, and under flush=interval or never that includes records
    /// the failed fsync already dropped from the disk: reopening the log
    /// takes them, and their offsets are written again. A read from a
    /// poisoned log therefore counts as made before a loss event, as under
    /// the old harness, which bumped the loss epoch when it reopened logs
    /// itself. (Under flush=always reads stop at the fsynced offset, and
    /// records read there are required whatever the epochs.)
    fn fetched_from_poisoned(&self, response: &kafka_protocol::messages::FetchResponse) {
        let Some(broker) = self.broker.get() else { return };
        let poisoned = response.responses.iter().any(|t| {
            t.partitions.iter().any(|p| {
                broker
                    .partition(t.topic.as_str(), p.partition_index)
                    .is_some_and(|partition| partition.log.poisoned().is_some())
            })
        });
        if poisoned {
            self.world.checker().unsynced_may_be_lost();
        }
    }
}

impl RequestObserver for Observer {
    fn arrived(&self, request: &RequestKind) -> Box<dyn Any + Send> {
        let arrival = match request {
            RequestKind::OffsetCommit(r) => self.commit_arrived(r),
            RequestKind::Fetch(r) => Arrival::Fetch(
                r.topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| {
                            let at = u64::try_from(p.fetch_offset).unwrap_or(0);
                            ((t.topic.as_str().to_string(), p.partition), at)
                        })
                    })
                    .collect(),
            ),
            // A static member is known by its group.instance.id: a new
            // incarnation takes the crashed one's place (and partitions)
            // under a new member id, in the same generation.
            RequestKind::SyncGroup(r) => Arrival::Sync {
                member: r.group_instance_id.as_ref().unwrap_or(&r.member_id).as_str().to_string(),
                generation: r.generation_id,
            },
            _ => Arrival::Other,
        };
        Box::new(arrival)
    }

    fn answered(&self, arrival: Box<dyn Any + Send>, reply: &Reply) {
        let arrival = arrival.downcast::<Arrival>().map_or(Arrival::Other, |a| *a);
        let response = match reply {
            Reply::Respond(response) => Some(response),
            Reply::Nothing | Reply::Close(_) => None,
        };
        match (arrival, response) {
            (Arrival::Commit(started), response) => {
                let oks: Option<Vec<bool>> = match response {
                    Some(ResponseKind::OffsetCommit(r)) => Some(
                        r.topics
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code == 0))
                            .collect(),
                    ),
                    _ => None,
                };
                self.world.checker().group_commit_ended(&started, oks.as_deref());
            }
            (Arrival::Sync { member, generation }, Some(ResponseKind::SyncGroup(r))) if r.error_code == 0 => {
                self.world.checker().group_synced(&member, generation, &r.assignment);
            }
            (_, Some(ResponseKind::JoinGroup(r))) if r.error_code == 0 => {
                let mut checker = self.world.checker();
                let topic = checker.group_topic().to_string();
                // Each member as SyncGroup answers are filed (see `arrived`),
                // with what its subscription claims of the group's topic.
                let members: Vec<(String, Vec<i32>)> = r
                    .members
                    .iter()
                    .map(|m| {
                        let key = m.group_instance_id.as_ref().unwrap_or(&m.member_id).as_str().to_string();
                        let mut owned = decode_subscription(&m.metadata).map(|s| s.owned).unwrap_or_default();
                        (key, owned.remove(&topic).unwrap_or_default())
                    })
                    .collect();
                checker.group_joined(r.member_id.as_str(), r.generation_id, r.leader.as_str(), &members);
            }
            (Arrival::Fetch(asked), Some(ResponseKind::Fetch(r))) => {
                self.served(&asked, r);
                self.fetched_from_poisoned(r);
            }
            (_, Some(ResponseKind::CreateTopics(r))) => {
                let mut checker = self.world.checker();
                for topic in r.topics.iter().filter(|t| t.error_code == 0) {
                    checker.topic_created_by_broker(topic.name.as_str());
                }
            }
            _ => {}
        }
    }
}
