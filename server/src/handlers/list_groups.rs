//! ListGroups: the groups this broker coordinates, optionally (v4) only
//! those in the given states. Without DESCRIBE on the cluster, only the
//! groups the caller may describe are listed.

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use ringtail_engine::group::GroupState;
use ringtail_engine::security::acl::{Operation, ResourceType, CLUSTER_NAME};

pub fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let all_visible = access.quietly(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME);
    let asked = &request.states_filter;
    let states: Vec<GroupState> =
        asked.iter().filter_map(|name| GroupState::from_kafka_name(name.as_str())).collect();
    // A state Kafka does not know matches no group (as Kafka parses it);
    // a filter of only such names must not turn into "every state".
    if !asked.is_empty() && states.is_empty() {
        return ListGroupsResponse::default();
    }
    match ctx.broker.list_groups(&states) {
        Ok(listings) => {
            let groups = listings
                .into_iter()
                .filter(|g| {
                    all_visible || access.quietly(Operation::Describe, ResourceType::Group, &g.group_id)
                })
                .map(|g| {
                    let listed = ListedGroup::default()
                        .with_group_id(GroupId(str_bytes(g.group_id)))
                        .with_protocol_type(str_bytes(g.protocol_type));
                    if version >= 4 {
                        listed.with_group_state(str_bytes(g.state.kafka_name()))
                    } else {
                        listed
                    }
                })
                .collect();
            ListGroupsResponse::default().with_groups(groups)
        }
        Err(e) => {
            tracing::debug!(error = %e, "list groups refused");
            ListGroupsResponse::default().with_error_code(code(&e))
        }
    }
}
