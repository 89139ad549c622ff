//! Faults of the replication scenario's members, one episode at a time,
//! from the classes the seed switched on: a member crashes (power loss of
//! its disk) and restarts, every member loses power at once, the member
//! leading the most partitions is cut off from the other members and the
//! quorum while clients still reach it (a zombie leader), a member pauses,
//! a member is cut off from everyone, a member's wall clock jumps (forward
//! or back, by up to 30 s: an NTP step), a member is sent SIGTERM (a
//! controlled shutdown; the supervisor starts it again).

use super::ReplicationWorld;
use crate::quorum::{members, sleep_ms};
use crate::rng::Rng;
use madsim::net::NetSim;
use madsim::runtime::Handle;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
enum Episode {
    Crash,
    PowerLossAll,
    IsolateLeader,
    Pause,
    CutOff,
    ClockJump,
    GracefulRestart,
}

/// Fault episodes until the chaos node is killed.
pub async fn run(world: Arc<ReplicationWorld>) {
    let mut rng = Rng::fork(world.plan.seed, "replication-chaos");
    let f = world.plan.faults;
    let episodes: Vec<Episode> = [
        (f.crash, Episode::Crash),
        (f.power_loss_all, Episode::PowerLossAll),
        (f.isolate_leader, Episode::IsolateLeader),
        (f.pause, Episode::Pause),
        (f.cut_off, Episode::CutOff),
        (f.clock_jump, Episode::ClockJump),
        (f.graceful_restart, Episode::GracefulRestart),
    ]
    .into_iter()
    .filter_map(|(on, e)| on.then_some(e))
    .collect();
    if episodes.is_empty() {
        return;
    }
    let handle = Handle::current();
    let net = NetSim::current();
    loop {
        let (lo, hi) = world.plan.episode_gap_ms;
        sleep_ms(rng.range(lo, hi)).await;
        let target = rng.below(world.members.len() as u64) as usize;
        match *rng.pick(&episodes) {
            Episode::Crash => {
                let down = rng.range(0, 4_000);
                let kind = crash(&world, target);
                world.note(format!("chaos: member {} crashes ({kind:?}) for {down} ms", member_id(target)));
                world.quorum.counters.fault("member_crash");
                sleep_ms(down).await;
                restart(&world, target);
            }
            Episode::PowerLossAll => {
                world.note("chaos: power loss of every member".into());
                world.quorum.counters.fault("power_loss_all");
                for i in 0..world.members.len() {
                    crash(&world, i);
                }
                sleep_ms(rng.range(0, 2_000)).await;
                for i in 0..world.members.len() {
                    restart(&world, i);
                }
            }
            Episode::IsolateLeader => {
                let target = busiest_leader(&world).unwrap_or(target);
                let ms = rng.range(1_000, 8_000);
                world.note(format!(
                    "chaos: member {} cut off from the members and the quorum (not its clients) for {ms} ms",
                    member_id(target)
                ));
                world.quorum.counters.fault("isolate_leader");
                let node = world.members[target];
                let others: Vec<_> =
                    world.members.iter().chain(&world.voters).copied().filter(|n| *n != node).collect();
                for other in &others {
                    net.clog_link(node, *other);
                    net.clog_link(*other, node);
                }
                sleep_ms(ms).await;
                for other in &others {
                    net.unclog_link(node, *other);
                    net.unclog_link(*other, node);
                }
            }
            Episode::Pause => {
                let ms = rng.range(10, 3_000);
                world.note(format!("chaos: member {} paused for {ms} ms", member_id(target)));
                world.quorum.counters.fault("pause");
                handle.pause(world.members[target]);
                sleep_ms(ms).await;
                handle.resume(world.members[target]);
            }
            Episode::CutOff => {
                let ms = rng.range(200, 5_000);
                world.note(format!("chaos: member {} cut off from everyone for {ms} ms", member_id(target)));
                world.quorum.counters.fault("cut_off");
                net.clog_node(world.members[target]);
                sleep_ms(ms).await;
                net.unclog_node(world.members[target]);
            }
            Episode::ClockJump => {
                let ms = rng.range(1_000, 30_000) as i64 * if rng.chance(0.5) { 1 } else { -1 };
                world.note(format!("chaos: member {}'s wall clock jumps by {ms} ms", member_id(target)));
                world.quorum.counters.fault("clock_jump");
                world.quorum.member_clock_offsets[target].fetch_add(ms, Ordering::SeqCst);
            }
            Episode::GracefulRestart => {
                world.note(format!("chaos: member {} is sent SIGTERM", member_id(target)));
                world.quorum.counters.fault("sigterm");
                world.quorum.member_term[target].store(true, Ordering::SeqCst);
            }
        }
    }
}

fn member_id(index: usize) -> i32 {
    members::MEMBER_ID_BASE + index as i32
}

/// Power loss (or a process crash) of member `index`: its disk crashes
/// and its node is killed until `restart`.
fn crash(world: &ReplicationWorld, index: usize) -> crate::disk::CrashKind {
    world.quorum.member_down[index].store(true, Ordering::SeqCst);
    world.quorum.members.lock().unwrap_or_else(|e| e.into_inner()).remove(&member_id(index));
    let kind = world.quorum.member_disks[index].crash(world.plan.crash_weights);
    Handle::current().kill(world.members[index]);
    kind
}

fn restart(world: &ReplicationWorld, index: usize) {
    if world.quorum.member_down[index].swap(false, Ordering::SeqCst) {
        Handle::current().restart(world.members[index]);
    }
}

/// The member leading the most partitions now, if any leads.
fn busiest_leader(world: &ReplicationWorld) -> Option<usize> {
    let started = world.quorum.members.lock().unwrap_or_else(|e| e.into_inner()).clone();
    started
        .iter()
        .map(|(id, broker)| (broker.hosted_partitions().iter().filter(|p| p.is_leader()).count(), *id))
        .filter(|(leading, _)| *leading > 0)
        .max()
        .map(|(_, id)| (id - members::MEMBER_ID_BASE) as usize)
}

/// Ends every fault the chaos left behind: links and nodes unclogged,
/// members resumed, crashed members restarted.
pub fn heal(world: &ReplicationWorld) {
    let handle = Handle::current();
    let net = NetSim::current();
    let all: Vec<_> = world.members.iter().chain(&world.voters).copied().collect();
    for a in &all {
        net.unclog_node(*a);
        for b in &all {
            net.unclog_link(*a, *b);
        }
    }
    for (index, node) in world.members.iter().enumerate() {
        handle.resume(*node);
        world.quorum.member_disks[index].set_quiet(true);
        restart(world, index);
    }
}

/// Every member loses power at once, then starts again.
pub async fn power_loss_all(world: &ReplicationWorld) {
    for index in 0..world.members.len() {
        crash(world, index);
    }
    sleep_ms(500).await;
    for index in 0..world.members.len() {
        restart(world, index);
    }
}
