//! Client quotas, kept in the cluster metadata: Kafka's AlterClientQuotas
//! and DescribeClientQuotas, and the limits that apply to a user.
//!
//! As with ACLs, a request's changes are made durable together before any
//! is acknowledged (journal or quorum: `security_changes`). Each
//! entity's alteration is checked on its own (Kafka's codes): an unknown
//! key, a value that is not a positive number of bytes per second, or one
//! key twice is INVALID_REQUEST for that entity, whose other changes are
//! then not made either.

use super::Broker;
use crate::error::{BrokerError, ErrorCode};
use crate::io::Disk;
use crate::quota::{limits_for, QuotaEntity, QuotaValues, UserLimits, KEYS};
use crate::security::state::SecurityChange;
use std::collections::BTreeSet;

/// One entity's changes: per key a new value, or `None` to remove it.
#[derive(Clone, Debug, PartialEq)]
pub struct QuotaAlteration {
    pub entity: QuotaEntity,
    pub ops: Vec<(String, Option<f64>)>,
}

/// Which entities DescribeClientQuotas asks about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserFilter {
    /// This user's own quotas.
    Named(String),
    /// The default's.
    Default,
    /// Every entity with quotas.
    Any,
}

fn invalid(message: String) -> BrokerError {
    BrokerError::new(ErrorCode::InvalidRequest, message)
}

fn changes_of(a: &QuotaAlteration) -> Result<Vec<SecurityChange>, BrokerError> {
    let mut seen = BTreeSet::new();
    let mut changes = Vec::with_capacity(a.ops.len());
    for (key, value) in &a.ops {
        if !KEYS.contains(&key.as_str()) {
            return Err(invalid(format!(
                "unsupported quota key {key:?}: Ringtail enforces {}",
                KEYS.join(" and ")
            )));
        }
        if !seen.insert(key.as_str()) {
            return Err(invalid(format!("quota key {key} is altered twice")));
        }
        let value = match value {
            None => None,
            Some(v) if v.is_finite() && *v >= 1.0 && *v <= u64::MAX as f64 => Some(v.round() as u64),
            Some(v) => return Err(invalid(format!("{key} must be at least 1 byte per second, got {v}"))),
        };
        changes.push(SecurityChange::PutQuota {
            entity: a.entity.key().to_string(),
            key: key.clone(),
            value,
        });
    }
    Ok(changes)
}

impl<D: Disk> Broker<D> {
    /// Kafka's AlterClientQuotas: each alteration's outcome, in order.
    pub async fn alter_client_quotas(
        &self,
        alterations: &[QuotaAlteration],
        validate_only: bool,
    ) -> Vec<Result<(), BrokerError>> {
        let planned: Vec<Result<Vec<SecurityChange>, BrokerError>> =
            alterations.iter().map(changes_of).collect();
        let mut outcome: Vec<Result<(), BrokerError>> =
            planned.iter().map(|p| p.as_ref().map(drop).map_err(Clone::clone)).collect();
        let changes: Vec<SecurityChange> = planned.into_iter().filter_map(Result::ok).flatten().collect();
        if validate_only || changes.is_empty() {
            return outcome;
        }
        if let Err(e) = self.commit_security(changes).await {
            tracing::warn!(error = %e, "persisting client quotas failed");
            for r in outcome.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(e.clone());
            }
        } else {
            let entities: Vec<&str> = alterations.iter().map(|a| a.entity.key()).collect();
            tracing::info!(?entities, "altered client quotas");
        }
        outcome
    }

    /// Kafka's DescribeClientQuotas: the entities `filter` selects, with
    /// their values, sorted.
    pub fn describe_client_quotas(&self, filter: &UserFilter) -> Vec<(QuotaEntity, QuotaValues)> {
        let m = self.metadata();
        let selected = |key: &str| match filter {
            UserFilter::Named(user) => key == user && key != crate::quota::DEFAULT_USER,
            UserFilter::Default => key == crate::quota::DEFAULT_USER,
            UserFilter::Any => true,
        };
        m.security
            .quotas
            .iter()
            .filter(|(k, _)| selected(k))
            .map(|(k, v)| (QuotaEntity::from_key(k), v.clone()))
            .collect()
    }

    /// The limits that apply to `user` now.
    pub fn user_limits(&self, user: &str) -> UserLimits {
        limits_for(&self.metadata().security.quotas, user)
    }
}
