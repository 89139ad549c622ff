//! DescribeGroups: each group's state, protocol, generation members and
//! their assignments. An unknown group is described as Dead with no
//! members, as Kafka does. Needs DESCRIBE on each group.

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;

pub fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let id = group_id.0.to_string();
            let described = DescribedGroup::default().with_group_id(group_id);
            if !access.group(Operation::Describe, &id) {
                return described.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            match ctx.broker.describe_group(&id) {
                Ok(d) => {
                    let members = d
                        .members
                        .into_iter()
                        .map(|m| {
                            let member = DescribedGroupMember::default()
                                .with_member_id(str_bytes(m.member_id))
                                .with_client_id(str_bytes(m.client_id))
                                .with_client_host(str_bytes(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment);
                            if version >= 4 {
                                member.with_group_instance_id(m.instance_id.map(str_bytes))
                            } else {
                                member
                            }
                        })
                        .collect();
                    described
                        .with_group_state(str_bytes(d.state.kafka_name()))
                        .with_protocol_type(str_bytes(d.protocol_type))
                        .with_protocol_data(str_bytes(d.protocol_name))
                        .with_members(members)
                }
                Err(e) => {
                    tracing::debug!(group = id, error = %e, "describe group refused");
                    described.with_error_code(code(&e))
                }
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
