//! DeleteGroups: each group, if Empty, goes with its committed offsets
//! (NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND if unknown).
//! Needs DELETE on each group.

use super::{code, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::security::acl::Operation;

pub async fn handle(ctx: &Context, access: Access<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let id = group_id.0.to_string();
        let result = DeletableGroupResult::default().with_group_id(group_id);
        if !access.group(Operation::Delete, &id) {
            results.push(result.with_error_code(ResponseError::GroupAuthorizationFailed.code()));
            continue;
        }
        results.push(match ctx.broker.delete_group(&id).await {
            Ok(()) => result,
            Err(e) => {
                tracing::debug!(group = id, error = %e, "delete group refused");
                result.with_error_code(code(&e))
            }
        });
    }
    DeleteGroupsResponse::default().with_results(results)
}
