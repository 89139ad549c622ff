//! The changes a request's outcome allows, read from its response.

use super::asked::Asked;
use super::checks::check_values;
use super::fixture::{Fixture, Snapshot};
use kafka_protocol::messages::ResponseKind;
use ringtail_engine::group::OFFSETS_TOPIC;
use ringtail_engine::log::TopicPartition;
use std::collections::BTreeSet;

/// The changes a request's outcome allows.
#[derive(Default, Debug)]
pub(super) struct Allowed {
    pub(super) produced: BTreeSet<TopicPartition>,
    pub(super) created: BTreeSet<String>,
    pub(super) deleted: BTreeSet<String>,
    pub(super) producer_ids: bool,
}

impl Fixture {
    /// What the response says was changed.
    pub(super) fn allowed(
        &self,
        asked: &Asked,
        body: &ResponseKind,
        version: i16,
        before: &Snapshot,
        after: &Snapshot,
    ) -> Allowed {
        check_values(body, version, after);
        let mut allowed = Allowed::default();
        match body {
            ResponseKind::Produce(r) => {
                for t in &r.responses {
                    for p in t.partition_responses.iter().filter(|p| p.error_code == 0) {
                        allowed.produced.insert(TopicPartition::new(t.name.as_str(), p.index));
                    }
                }
            }
            ResponseKind::CreateTopics(r) => {
                let Asked::CreateTopics { validate_only, .. } = asked else { unreachable!() };
                for t in r.topics.iter().filter(|t| t.error_code == 0) {
                    let name = t.name.to_string();
                    if *validate_only {
                        assert!(!after.topics.contains_key(&name), "validate_only created topic {name}");
                    } else {
                        allowed.created.insert(name);
                    }
                }
            }
            ResponseKind::DeleteTopics(r) => {
                for t in r.responses.iter().filter(|t| t.error_code == 0) {
                    let name = t.name.as_ref().expect("a deleted topic is named in the answer").to_string();
                    allowed.deleted.insert(name);
                }
            }
            ResponseKind::Metadata(r) => {
                let Asked::Metadata { may_create, .. } = asked else { unreachable!() };
                for t in r.topics.iter().filter(|t| t.error_code == 0) {
                    let Some(name) = &t.name else { continue };
                    let name = name.to_string();
                    if !before.topics.contains_key(&name) {
                        assert!(
                            *may_create && self.auto_create,
                            "Metadata v{version} created topic {name} (auto-create {}, request allows {may_create})",
                            self.auto_create
                        );
                        allowed.created.insert(name);
                    }
                }
            }
            ResponseKind::InitProducerId(r) => allowed.producer_ids = r.error_code == 0,
            _ => {}
        }
        // FindCoordinator creates `__consumer_offsets` on first use (as Kafka
        // creates its internal topic on demand, whatever the group id), and
        // the group APIs write their records to its partitions.
        let group_api = matches!(
            body,
            ResponseKind::FindCoordinator(_)
                | ResponseKind::JoinGroup(_)
                | ResponseKind::SyncGroup(_)
                | ResponseKind::Heartbeat(_)
                | ResponseKind::LeaveGroup(_)
                | ResponseKind::OffsetCommit(_)
                | ResponseKind::OffsetFetch(_)
                | ResponseKind::DescribeGroups(_)
                | ResponseKind::ListGroups(_)
                | ResponseKind::DeleteGroups(_)
                | ResponseKind::OffsetDelete(_)
        );
        if group_api {
            if !before.topics.contains_key(OFFSETS_TOPIC) && after.topics.contains_key(OFFSETS_TOPIC) {
                assert!(
                    matches!(body, ResponseKind::FindCoordinator(_)),
                    "{OFFSETS_TOPIC} created by a {:?} request",
                    asked
                );
                allowed.created.insert(OFFSETS_TOPIC.to_string());
            }
            if let Some(t) = after.topics.get(OFFSETS_TOPIC) {
                for p in 0..t.partitions.len() {
                    allowed.produced.insert(TopicPartition::new(OFFSETS_TOPIC, p as i32));
                }
            }
        }
        allowed
    }
}
