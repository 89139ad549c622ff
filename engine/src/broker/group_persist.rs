//! Persisting a group coordinator's records: queued on an offsets
//! partition's log under the coordinator lock (log order is state-machine
//! order), then waited for outside it, each completion handed back to the
//! state machine in order (groups.rs has the whole design).

use super::{Broker, BrokerError, Partition};
use crate::error::ErrorCode;
use crate::group::{records::build_batch, Completion, Coordinator, Persist};
use crate::io::Disk;
use crate::log::append::AppendTicket;
use std::collections::VecDeque;

/// Follow-up records a failed completion may cause before `InFlight`'s
/// drop stops chasing them (each failure makes strictly less to do).
const DROP_FOLLOW_UPS_MAX: usize = 64;

/// Kafka's mapping of a failed offsets append to what group clients
/// understand.
pub(super) fn persist_error(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge | ErrorCode::InvalidRecord => {
            ErrorCode::UnknownServerError
        }
        _ => ErrorCode::CoordinatorNotAvailable,
    }
}

type Queued<'a, D> = (Result<AppendTicket<'a, D>, ErrorCode>, Completion);

/// Queues records on offsets partition `p`, under the coordinator lock, and
/// mirrors what was queued for compaction (log order).
fn enqueue<'a, D: Disk>(
    c: &mut Coordinator,
    p: i32,
    partition: &'a Partition<D>,
    persists: Vec<Persist>,
    now_ms: i64,
) -> Vec<Queued<'a, D>> {
    let mut mirror = c.shard(p).ok().map(|shard| &mut shard.mirror);
    persists
        .into_iter()
        .map(|Persist { records, then }| {
            let ticket = build_batch(&records, now_ms)
                .map_err(|e| {
                    tracing::error!(error = %e, "offsets record not encodable");
                    ErrorCode::UnknownServerError
                })
                .and_then(|b| {
                    partition
                        .log
                        .enqueue(b, partition.leader_epoch())
                        .map_err(|e| persist_error(BrokerError::from(e).code))
                });
            if let (Ok(_), Some(mirror)) = (&ticket, mirror.as_mut()) {
                records.iter().for_each(|r| mirror.apply(r));
            }
            (ticket, then)
        })
        .collect()
}

/// Records queued for one offsets partition, awaiting durability.
pub(super) struct InFlight<'a, D: Disk> {
    broker: &'a Broker<D>,
    partition: &'a Partition<D>,
    p: i32,
    items: VecDeque<Queued<'a, D>>,
    /// The completion whose append is being awaited.
    current: Option<Completion>,
}

impl<'a, D: Disk> InFlight<'a, D> {
    /// Queues `persists` on offsets partition `p`, under the coordinator
    /// lock `c`; the waits are `drive`'s, once the lock is let go.
    pub(super) fn queue(
        broker: &'a Broker<D>,
        c: &mut Coordinator,
        p: i32,
        partition: &'a Partition<D>,
        persists: Vec<Persist>,
        now_ms: i64,
    ) -> Self {
        let items = enqueue(c, p, partition, persists, now_ms).into();
        InFlight { broker, partition, p, items, current: None }
    }

    /// Waits for each append in order and applies its completion; returns
    /// each outcome (follow-up records a completion caused included).
    pub(super) async fn drive(mut self) -> Vec<Result<(), ErrorCode>> {
        let mut outcomes = Vec::new();
        while let Some((ticket, then)) = self.items.pop_front() {
            self.current = Some(then);
            let result = match ticket {
                Ok(t) => match t.wait().await {
                    // Replicated to the ISR before anyone is told, as
                    // Kafka commits offsets with acks=all: a failover must
                    // not lose a committed offset.
                    Ok(info) => {
                        self.partition.refresh_high_watermark();
                        let replicated = self.partition.wait_replicated(info.last_offset).await;
                        replicated.map_err(|e| persist_error(e.code))
                    }
                    Err(e) => Err(persist_error(BrokerError::from(e).code)),
                },
                Err(code) => Err(code),
            };
            self.partition.refresh_high_watermark();
            outcomes.push(result);
            let Some(then) = self.current.take() else { continue };
            let now_ms = self.broker.now_ms();
            let mut c = self.broker.coordinator();
            let more = c.persisted(self.p, then, result, now_ms);
            self.items.extend(enqueue(&mut c, self.p, self.partition, more, now_ms));
        }
        outcomes
    }
}

impl<D: Disk> Drop for InFlight<'_, D> {
    fn drop(&mut self) {
        if self.current.is_none() && self.items.is_empty() {
            return;
        }
        // The caller went away before its records were durable. They may
        // still reach the log, but nobody will know when: fail what depends
        // on them, so parked waiters are answered (they rejoin or retry).
        let now_ms = self.broker.now_ms();
        let mut c = self.broker.coordinator();
        let mut pending: VecDeque<Completion> = self.current.take().into_iter().collect();
        pending.extend(self.items.drain(..).map(|(_, then)| then));
        let mut follow_ups = 0;
        while let Some(then) = pending.pop_front() {
            let more = c.persisted(self.p, then, Err(ErrorCode::CoordinatorNotAvailable), now_ms);
            for (_, then) in enqueue(&mut c, self.p, self.partition, more, now_ms) {
                follow_ups += 1;
                if follow_ups <= DROP_FOLLOW_UPS_MAX {
                    pending.push_back(then);
                }
            }
        }
    }
}
