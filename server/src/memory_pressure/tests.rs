//! The shrink/grow policy on readings, and the watch driving a broker's
//! cache from a fake cgroup tree.

use super::*;
use crate::host_memory::Scope;

const MIB: u64 = 1 << 20;

fn reading(limit_mib: u64, used_mib: u64) -> MemoryReading {
    MemoryReading { scope: Scope::Cgroup, limit_bytes: limit_mib * MIB, used_bytes: used_mib * MIB }
}

fn cache(capacity_mib: u64, configured_mib: u64, held_mib: u64) -> CacheBudget {
    CacheBudget {
        capacity_bytes: (capacity_mib * MIB) as usize,
        configured_bytes: (configured_mib * MIB) as usize,
        held_bytes: (held_mib * MIB) as usize,
    }
}

fn mib(bytes: usize) -> u64 {
    bytes as u64 / MIB
}

/// Near the limit the cache gives back, out of what it holds, enough to
/// bring usage down to the grow threshold; all of it if need be.
#[test]
fn shrinks_out_of_what_it_holds() {
    // 1000 MiB limit: shrink above 900, aim at 800.
    assert_eq!(mib(budget_under(&reading(1000, 950), cache(500, 500, 500))), 350);
    assert_eq!(mib(budget_under(&reading(1000, 950), cache(500, 500, 200))), 50, "a budget it does not fill");
    assert_eq!(mib(budget_under(&reading(1000, 999), cache(100, 500, 100))), 0);
}

/// Between the thresholds nothing changes; below, the cache grows by the
/// room left under the grow threshold, up to its configured size only.
#[test]
fn grows_back_by_the_room_left() {
    assert_eq!(mib(budget_under(&reading(1000, 850), cache(300, 500, 300))), 300, "hysteresis");
    assert_eq!(mib(budget_under(&reading(1000, 850), cache(500, 500, 500))), 500);
    assert_eq!(mib(budget_under(&reading(1000, 750), cache(300, 500, 300))), 350);
    assert_eq!(mib(budget_under(&reading(1000, 100), cache(300, 500, 300))), 500, "at most configured");
    assert_eq!(mib(budget_under(&reading(1000, 750), cache(300, 500, 10))), 300, "never below the budget");
    assert_eq!(mib(budget_under(&reading(1000, 798), cache(300, 500, 300))), 300, "2 MiB: too small a step");
    assert_eq!(
        mib(budget_under(&reading(1000, 798), cache(499, 500, 499))),
        500,
        "but the last one is taken"
    );
}

/// Every limit must allow growth; any one of them can force a shrink.
#[test]
fn the_tightest_limit_decides() {
    let host = MemoryReading { scope: Scope::Host, limit_bytes: 64_000 * MIB, used_bytes: 1000 * MIB };
    let readings = [host, reading(1000, 950)];
    assert_eq!(mib(budget_under_all(&readings, cache(500, 500, 500))), 350);
    let readings = [host, reading(1000, 850)];
    assert_eq!(mib(budget_under_all(&readings, cache(300, 500, 300))), 300);
    assert_eq!(mib(budget_under_all(&[], cache(300, 500, 300))), 300, "nothing read: it stays");
}
