//! `group_member_metadata`: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, DeleteGroups, OffsetDelete and timer sequences against
//! the group coordinator (`group::Coordinator` and its `Shard`), with
//! arbitrary protocol metadata and assignments (consumer subscriptions or
//! opaque bytes, from empty to past `MEMBER_BYTES_MAX`). The records it asks
//! to persist are appended to a `__consumer_offsets` log on a `MemDisk`, and
//! completions handed back, as `broker::groups` drives it (one offsets
//! partition, a synchronous driver, Kafka's error for a record too large);
//! at checkpoints the log is replayed into a new shard, as a coordinator
//! loads its partition, and the replayed shard may take over (failover).
//!
//! Input: a config byte (`CFG_*`), then operations, each an op byte (its low
//! three bits the kind, the rest its flags) and a few parameter bytes; see
//! `ops`. Members are four client slots that remember the ids and
//! generations their answers gave them.
//!
//! Checked:
//!
//! - nothing panics (the group invariants `Shard::checked` asserts after
//!   every transition in debug builds included), no single allocation
//!   exceeds `alloc::ALLOC_BYTES_MAX`;
//! - caps: a JoinGroup with protocol metadata over `MEMBER_BYTES_MAX` is
//!   answered at once with INVALID_REQUEST (or the session timeout's error,
//!   checked first), a SyncGroup with an assignment over it at once with an
//!   error, INVALID_REQUEST when nothing else was wrong, and neither
//!   changes the group; no member ever holds metadata or an assignment
//!   over the cap; offset metadata over `offset_metadata_max_bytes` is
//!   OFFSET_METADATA_TOO_LARGE; every record the coordinator asks for
//!   encodes (a group record too large for the offsets topic's
//!   max.message.bytes is refused by the log, and the driver answers
//!   UNKNOWN_SERVER_ERROR, as `broker::groups` and Kafka do; the group must
//!   then get over it: see the reload and waiting checks);
//! - every record appended decodes back (`OffsetsRecord::decode`) to the
//!   record the coordinator asked to persist;
//! - a reload from the log gives the same groups: committed offsets of
//!   every group, and every Stable or Empty group's generation, protocol,
//!   leader and members (ids, instance ids, client ids, timeouts,
//!   subscription, assignment);
//! - at the end, after the timers ran out, no caller is left waiting and
//!   every JoinGroup and SyncGroup got exactly one answer.

mod driver;
mod ops;

pub use ops::{Op, OpKind};

use driver::Driver;

/// Config bit: `group.initial.rebalance.delay.ms` is 3000 (else 0).
pub const CFG_INITIAL_DELAY: u8 = 1;
/// Config bit: check a reload after every operation (else at checkpoints).
pub const CFG_RELOAD_EVERY_OP: u8 = 2;
/// Config bit: `group.max.size=2`.
pub const CFG_SMALL_GROUPS: u8 = 4;

/// Operations per input.
pub const OPS_MAX: usize = 48;
pub const T0: i64 = 1_700_000_000_000;

pub fn run(data: &[u8]) {
    let Some((&cfg, mut rest)) = data.split_first() else { return };
    let mut d = Driver::new(cfg);
    for step in 0..OPS_MAX {
        let Some((op, tail)) = Op::decode(rest) else { break };
        rest = tail;
        d.step = step;
        if crate::exec::tracing() {
            eprintln!("step {step}: {op:?}");
        }
        d.apply(&op);
        d.check_members();
        if cfg & CFG_RELOAD_EVERY_OP != 0 {
            d.check_reload();
        }
    }
    d.check_reload();
    d.finish();
}
