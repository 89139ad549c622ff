//! Client quotas: AlterClientQuotas and DescribeClientQuotas, as Kafka's
//! Admin client sends them (`alterClientQuotas`, `describeClientQuotas`),
//! for the one entity type Ringtail keeps quotas for: users, by name or
//! the default every user without one of its own falls back to (Kafka's
//! `<default>`, a null entity name on the wire).
//!
//! The versions are 0..=1, the highest the broker offers; 1 is flexible
//! and otherwise the same.

use std::collections::BTreeMap;
use std::fmt;

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Client;
use super::error::{check, ClientError, Result};

/// Kafka's entity type for users.
pub const ENTITY_USER: &str = "user";

/// DescribeClientQuotas match types: an exact name, the default entity.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;

/// Whose quotas.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuotaUser {
    /// The default for every user without quotas of its own (sorts first).
    Default,
    /// One user, by name.
    Named(String),
}

impl QuotaUser {
    /// The entity name on the wire: null for the default.
    fn entity_name(&self) -> Option<StrBytes> {
        match self {
            QuotaUser::Default => None,
            QuotaUser::Named(name) => Some(StrBytes::from_string(name.clone())),
        }
    }

    fn from_entity_name(name: Option<&StrBytes>) -> QuotaUser {
        match name {
            None => QuotaUser::Default,
            Some(name) => QuotaUser::Named(name.to_string()),
        }
    }
}

/// `<default>` for the default, the name for a user, as Kafka's tools
/// print them.
impl fmt::Display for QuotaUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaUser::Default => f.write_str("<default>"),
            QuotaUser::Named(name) => f.write_str(name),
        }
    }
}

/// The quota keys this client sets: bytes per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuotaKey {
    /// `producer_byte_rate`: what a user's producers may send.
    ProducerByteRate,
    /// `consumer_byte_rate`: what a user's consumers may fetch.
    ConsumerByteRate,
}

impl QuotaKey {
    /// Kafka's name of the key.
    pub fn name(self) -> &'static str {
        match self {
            QuotaKey::ProducerByteRate => "producer_byte_rate",
            QuotaKey::ConsumerByteRate => "consumer_byte_rate",
        }
    }
}

impl fmt::Display for QuotaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One change of one key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuotaOp {
    pub key: QuotaKey,
    /// The new value, or `None` to remove the key.
    pub value: Option<f64>,
}

/// The changes of one user's quotas, applied together.
#[derive(Clone, Debug, PartialEq)]
pub struct QuotaAlteration {
    pub user: QuotaUser,
    pub ops: Vec<QuotaOp>,
}

/// Which users' quotas DescribeClientQuotas answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuotaFilter {
    /// Every user with quotas, and the default if it has any.
    Any,
    /// The default's only.
    Default,
    /// This user's only (not the default it may fall back to).
    User(String),
}

/// One user's quotas as the broker describes them.
#[derive(Clone, Debug, PartialEq)]
pub struct UserQuotas {
    pub user: QuotaUser,
    /// Every key the broker answered with, by Kafka's name (a Kafka
    /// broker may hold keys this client never sets).
    pub values: BTreeMap<String, f64>,
}

impl UserQuotas {
    pub fn get(&self, key: QuotaKey) -> Option<f64> {
        self.values.get(key.name()).copied()
    }
}

/// What DescribeClientQuotas answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DescribedQuotas {
    /// Users' quotas, the default first, then by name.
    pub quotas: Vec<UserQuotas>,
    /// How many more entries the broker answered with that are not one
    /// user's (a Kafka broker's client-id or ip quotas): left out.
    pub unrecognised: usize,
}

/// `user alice` or `the default user`, for messages.
fn describe_user(user: &QuotaUser) -> String {
    match user {
        QuotaUser::Default => "the default user".to_owned(),
        QuotaUser::Named(name) => format!("user {name:?}"),
    }
}

fn alter_request(alterations: &[QuotaAlteration], validate_only: bool) -> AlterClientQuotasRequest {
    let entries = alterations
        .iter()
        .map(|a| {
            let entity = EntityData::default()
                .with_entity_type(StrBytes::from_static_str(ENTITY_USER))
                .with_entity_name(a.user.entity_name());
            let ops = a
                .ops
                .iter()
                .map(|op| {
                    OpData::default()
                        .with_key(StrBytes::from_static_str(op.key.name()))
                        .with_value(op.value.unwrap_or(0.0))
                        .with_remove(op.value.is_none())
                })
                .collect();
            EntryData::default().with_entity(vec![entity]).with_ops(ops)
        })
        .collect();
    AlterClientQuotasRequest::default().with_entries(entries).with_validate_only(validate_only)
}

fn describe_request(filter: &QuotaFilter) -> DescribeClientQuotasRequest {
    let user = |match_type, name: Option<&String>| {
        vec![ComponentData::default()
            .with_entity_type(StrBytes::from_static_str(ENTITY_USER))
            .with_match_type(match_type)
            // The codec's default match is "", not null: null unless a name.
            .with_match(name.map(|n| StrBytes::from_string(n.clone())))]
    };
    match filter {
        // No component and not strict: every entity. Match type 2 ("any
        // specified name") is left alone: whether it takes in the default
        // is read differently by brokers. A Kafka broker's client-id and
        // ip entities come back too, and are counted as unrecognised.
        QuotaFilter::Any => DescribeClientQuotasRequest::default().with_components(vec![]).with_strict(false),
        // Strict: entities of exactly this component, so a Kafka broker's
        // (user, client-id) quotas do not come back as a user's.
        QuotaFilter::Default => DescribeClientQuotasRequest::default()
            .with_components(user(MATCH_DEFAULT, None))
            .with_strict(true),
        QuotaFilter::User(name) => DescribeClientQuotasRequest::default()
            .with_components(user(MATCH_EXACT, Some(name)))
            .with_strict(true),
    }
}

/// The user an entity names, if it is exactly one user component.
fn entity_user<'a>(
    entity: impl ExactSizeIterator<Item = (&'a StrBytes, Option<&'a StrBytes>)>,
) -> Option<QuotaUser> {
    let mut entity = entity;
    if entity.len() != 1 {
        return None;
    }
    let (entity_type, name) = entity.next()?;
    (entity_type.as_str() == ENTITY_USER).then(|| QuotaUser::from_entity_name(name))
}

/// Each alteration's outcome, from the response entry naming its user
/// (Kafka answers in an order of its own).
fn outcomes(
    alterations: &[QuotaAlteration],
    response: &AlterClientQuotasResponse,
) -> Result<Vec<Result<()>>> {
    let answered: Vec<(Option<QuotaUser>, &_)> = response
        .entries
        .iter()
        .map(|e| (entity_user(e.entity.iter().map(|c| (&c.entity_type, c.entity_name.as_ref()))), e))
        .collect();
    alterations
        .iter()
        .map(|a| {
            let (_, entry) =
                answered.iter().find(|(user, _)| user.as_ref() == Some(&a.user)).ok_or_else(|| {
                    ClientError::Protocol {
                        addr: "controller".to_owned(),
                        reason: format!(
                            "AlterClientQuotas response does not mention {}",
                            describe_user(&a.user)
                        ),
                    }
                })?;
            Ok(check(entry.error_code, entry.error_message.as_ref().map(|m| m.as_str()), || {
                format!("alter quotas of {}", describe_user(&a.user))
            }))
        })
        .collect()
}

impl Client {
    /// Applies `alterations` in one request (with `validate_only`, the
    /// broker only checks them): each user's outcome, in the order given.
    /// `Err` only when the request as a whole failed.
    pub async fn alter_client_quotas(
        &self,
        alterations: &[QuotaAlteration],
        validate_only: bool,
    ) -> Result<Vec<Result<()>>> {
        let request = |_version| alter_request(alterations, validate_only);
        // Setting a key to a value, or removing it, twice leaves the same
        // quotas as once: a request lost with its connection is safe to
        // send again.
        let response = self
            .with_retries(None, true, || async { self.controller_connection().await?.request(request).await })
            .await?;
        outcomes(alterations, &response)
    }

    /// The quotas of the users `filter` selects.
    pub async fn describe_client_quotas(&self, filter: &QuotaFilter) -> Result<DescribedQuotas> {
        let response = self
            .with_retries(None, true, || async {
                self.any_connection().await?.request(|_version| describe_request(filter)).await
            })
            .await?;
        check(response.error_code, response.error_message.as_ref().map(|m| m.as_str()), || {
            "describe client quotas".to_owned()
        })?;
        let mut described = DescribedQuotas::default();
        for entry in response.entries.iter().flatten() {
            let entity = entry.entity.iter().map(|c| (&c.entity_type, c.entity_name.as_ref()));
            match entity_user(entity) {
                Some(user) => described.quotas.push(UserQuotas {
                    user,
                    values: entry.values.iter().map(|v| (v.key.to_string(), v.value)).collect(),
                }),
                None => described.unrecognised += 1,
            }
        }
        described.quotas.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(described)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &'static str) -> StrBytes {
        StrBytes::from_static_str(text)
    }

    /// A user is a named "user" entity, the default a null name; a value
    /// is set, `None` removes the key.
    #[test]
    fn alterations_go_out_as_kafkas_entries() {
        let request = alter_request(
            &[
                QuotaAlteration {
                    user: QuotaUser::Named("alice".into()),
                    ops: vec![
                        QuotaOp { key: QuotaKey::ProducerByteRate, value: Some(1024.0) },
                        QuotaOp { key: QuotaKey::ConsumerByteRate, value: None },
                    ],
                },
                QuotaAlteration {
                    user: QuotaUser::Default,
                    ops: vec![QuotaOp { key: QuotaKey::ConsumerByteRate, value: Some(5e6) }],
                },
            ],
            true,
        );
        assert!(request.validate_only);
        let [alice, default] = &request.entries[..] else { panic!("two entries: {request:?}") };
        assert_eq!(
            alice.entity,
            [EntityData::default().with_entity_type(s("user")).with_entity_name(Some(s("alice")))]
        );
        assert_eq!(
            alice.ops,
            [
                OpData::default().with_key(s("producer_byte_rate")).with_value(1024.0),
                OpData::default().with_key(s("consumer_byte_rate")).with_remove(true),
            ]
        );
        assert_eq!(
            default.entity,
            [EntityData::default().with_entity_type(s("user")).with_entity_name(None)]
        );
        assert_eq!(default.ops, [OpData::default().with_key(s("consumer_byte_rate")).with_value(5e6)]);
    }

    /// Everything is no component, not strict; the default is match type
    /// 1, a name 0 with the name, both strict.
    #[test]
    fn filters_go_out_as_kafkas_components() {
        let any = describe_request(&QuotaFilter::Any);
        assert!(any.components.is_empty() && !any.strict, "{any:?}");
        let component = |filter| {
            let request = describe_request(&filter);
            assert!(request.strict);
            let [c] = &request.components[..] else { panic!("one component: {request:?}") };
            assert_eq!(c.entity_type.as_str(), "user");
            (c.match_type, c._match.as_ref().map(|m| m.to_string()))
        };
        assert_eq!(component(QuotaFilter::Default), (1, None));
        assert_eq!(component(QuotaFilter::User("bob".into())), (0, Some("bob".into())));
    }

    /// Only an entity of exactly one user component is a user's.
    #[test]
    fn entities_of_one_user_component_are_users() {
        let (user, client) = (s("user"), s("client-id"));
        let (alice, app) = (s("alice"), s("app"));
        assert_eq!(entity_user([(&user, Some(&alice))].into_iter()), Some(QuotaUser::Named("alice".into())));
        assert_eq!(entity_user([(&user, None)].into_iter()), Some(QuotaUser::Default));
        assert_eq!(entity_user([(&client, Some(&app))].into_iter()), None);
        assert_eq!(entity_user([(&user, Some(&alice)), (&client, Some(&app))].into_iter()), None);
        assert_eq!(entity_user(std::iter::empty()), None);
    }

    /// Outcomes are matched to alterations by user, whatever the order
    /// of the response; a user it does not mention is a protocol error.
    #[test]
    fn outcomes_are_found_by_user() {
        use kafka_protocol::messages::alter_client_quotas_response as r;
        let entry = |name: Option<&'static str>, code: i16| {
            r::EntryData::default()
                .with_error_code(code)
                .with_error_message((code != 0).then(|| s("refused")))
                .with_entity(vec![r::EntityData::default()
                    .with_entity_type(s("user"))
                    .with_entity_name(name.map(s))])
        };
        let alteration = |user| QuotaAlteration { user, ops: vec![] };
        let alterations = [alteration(QuotaUser::Named("alice".into())), alteration(QuotaUser::Default)];
        let response =
            AlterClientQuotasResponse::default().with_entries(vec![entry(None, 42), entry(Some("alice"), 0)]);
        let each = outcomes(&alterations, &response).unwrap();
        assert!(each[0].is_ok(), "{each:?}");
        let e = each[1].as_ref().unwrap_err();
        assert_eq!(e.to_string(), "alter quotas of the default user: INVALID_REQUEST (42): refused");

        let silent = AlterClientQuotasResponse::default().with_entries(vec![entry(Some("alice"), 0)]);
        let e = outcomes(&alterations, &silent).unwrap_err();
        assert!(e.to_string().contains("does not mention the default user"), "{e}");
    }

    #[test]
    fn the_default_sorts_first_and_prints_as_kafka_does() {
        let mut users = [QuotaUser::Named("b".into()), QuotaUser::Default, QuotaUser::Named("a".into())];
        users.sort();
        let printed: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        assert_eq!(printed, ["<default>", "a", "b"]);
    }
}
