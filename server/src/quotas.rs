//! Holding users to their client quotas: a rate meter per user and kind
//! (produce, fetch), fed with the bytes of each request and asked how long
//! to hold the user back, as Kafka's ClientQuotaManager does. The handler
//! puts that time in the response's `throttle_time_ms` and delays the
//! response by it (Kafka before KIP-219 did the same; a client waiting for
//! its response sends no more meanwhile).
//!
//! Users without a quota are not metered; a quota set later starts from a
//! fresh meter. Follower fetches are not client traffic and never metered.

use crate::metered_disk::ServerBroker;
use ringtail_engine::quota::meter::RateMeter;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    Produce,
    Fetch,
}

/// Meters kept before idle ones are dropped.
const METERS_BEFORE_PRUNING: usize = 10_000;

#[derive(Default)]
pub struct QuotaMeters {
    meters: Mutex<HashMap<(Arc<str>, QuotaKind), RateMeter>>,
}

impl QuotaMeters {
    /// Records `bytes` of `kind` by `principal` and returns how long it
    /// must wait (zero within its quota, or without one).
    pub fn throttle(
        &self,
        broker: &ServerBroker,
        principal: &Arc<str>,
        kind: QuotaKind,
        bytes: u64,
    ) -> Duration {
        let user = principal.strip_prefix("User:").unwrap_or(principal);
        let limits = broker.user_limits(user);
        let Some(limit) = (match kind {
            QuotaKind::Produce => limits.produce,
            QuotaKind::Fetch => limits.fetch,
        }) else {
            return Duration::ZERO;
        };
        let now = u64::try_from(broker.now_ms()).unwrap_or(0);
        let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        if meters.len() >= METERS_BEFORE_PRUNING {
            meters.retain(|_, m| !m.idle(now));
        }
        let meter = meters.entry((principal.clone(), kind)).or_default();
        meter.record(bytes, now);
        Duration::from_millis(meter.throttle_ms(limit as f64, now))
    }
}
