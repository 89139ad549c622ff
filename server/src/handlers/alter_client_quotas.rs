//! AlterClientQuotas: sets and removes users' produce and fetch byte rates
//! (Kafka's `kafka-configs.sh --alter --entity-type users --add-config
//! producer_byte_rate=...`, `ringtail quota set`). An entity is one user
//! (entity type `user`, a name, or null for the default of every user);
//! client ids and IPs are refused. Needs ALTER_CONFIGS on the cluster.

use super::{code, str_bytes, Context};
use crate::security::authorize::Access;
use kafka_protocol::messages::alter_client_quotas_request::EntryData;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData as AnswerData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::broker::quotas::QuotaAlteration;
use ringtail_engine::quota::QuotaEntity;
use ringtail_engine::security::acl::Operation;

/// Kafka's entity type for users.
pub const ENTITY_USER: &str = "user";

/// The user an entry names, or why it names none Ringtail serves.
fn entity(entry: &EntryData) -> Result<QuotaEntity, String> {
    match entry.entity.as_slice() {
        [one] if one.entity_type.as_str() == ENTITY_USER => {
            Ok(QuotaEntity { user: one.entity_name.as_ref().map(|n| n.to_string()) })
        }
        _ => {
            let types: Vec<&str> = entry.entity.iter().map(|e| e.entity_type.as_str()).collect();
            Err(format!("quotas are kept per user only, not for {types:?}"))
        }
    }
}

fn answer(entry: &EntryData, outcome: Result<(), (i16, String)>) -> AnswerData {
    let entity = entry
        .entity
        .iter()
        .map(|e| {
            EntityData::default()
                .with_entity_type(e.entity_type.clone())
                .with_entity_name(e.entity_name.clone())
        })
        .collect();
    let answer = AnswerData::default().with_entity(entity).with_error_message(None);
    match outcome {
        Ok(()) => answer,
        Err((error_code, message)) => {
            answer.with_error_code(error_code).with_error_message(Some(str_bytes(message)))
        }
    }
}

pub async fn handle(
    ctx: &Context,
    access: Access<'_>,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    if !access.cluster(Operation::AlterConfigs) {
        let refused =
            (ResponseError::ClusterAuthorizationFailed.code(), "Not authorized to alter quotas".to_string());
        let entries = request.entries.iter().map(|e| answer(e, Err(refused.clone()))).collect();
        return AlterClientQuotasResponse::default().with_entries(entries);
    }
    let parsed: Vec<Result<QuotaAlteration, String>> = request
        .entries
        .iter()
        .map(|e| {
            let ops = e.ops.iter().map(|op| (op.key.to_string(), (!op.remove).then_some(op.value))).collect();
            entity(e).map(|entity| QuotaAlteration { entity, ops })
        })
        .collect();
    let valid: Vec<QuotaAlteration> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let outcomes: Vec<Result<(), (i16, String)>> = ctx
        .broker
        .alter_client_quotas(&valid, request.validate_only)
        .await
        .into_iter()
        .map(|r| r.map_err(|e| (code(&e), e.message)))
        .collect();
    let mut outcomes = outcomes.into_iter();
    let entries = request
        .entries
        .iter()
        .zip(parsed)
        .map(|(entry, parsed)| {
            let outcome = match parsed {
                Err(problem) => Err((ResponseError::InvalidRequest.code(), problem)),
                Ok(_) => outcomes
                    .next()
                    .unwrap_or(Err((ResponseError::UnknownServerError.code(), "no outcome".into()))),
            };
            answer(entry, outcome)
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}
