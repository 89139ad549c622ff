//! What the simulator prints: one line per seed, a violation with its
//! history slice, and the suite's summary table.

use crate::checker::{Outcomes, Violation};
use crate::stats::Counts;
use std::fmt::Write;

/// What one seed did.
#[derive(Clone, Debug)]
pub struct SeedResult {
    pub seed: u64,
    pub sim_ms: u64,
    pub wall_ms: u64,
    pub ops: Counts,
    pub faults: Counts,
    pub checks: u64,
    pub hash: u64,
    pub classes: String,
    pub flush: String,
    pub beyond_budget: bool,
    pub outcomes: Outcomes,
    pub violation: Option<Violation>,
}

impl SeedResult {
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }
}

/// `seed=7 PASS sim_s=41.3 ops=2210 checks=30012 faults=... hash=... wall_ms=380`
pub fn seed_line(r: &SeedResult) -> String {
    let verdict = match &r.violation {
        None => "PASS".to_string(),
        Some(v) => format!("FAIL invariant={}", v.invariant.label()),
    };
    format!(
        "seed={} {verdict} sim_s={:.1} ops={} checks={} faults={} budget={} flush={} hash={:016x} wall_ms={}",
        r.seed,
        r.sim_ms as f64 / 1000.0,
        r.ops.total(),
        r.checks,
        r.faults,
        if r.beyond_budget { "beyond" } else { "in" },
        r.flush,
        r.hash,
        r.wall_ms,
    )
}

/// The full report of a violation: seed, invariant, detail, history slice.
pub fn violation_report(seed: u64, v: &Violation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "VIOLATION seed={seed} invariant={}", v.invariant);
    let at = format!("{}.{:03}s", v.at_ms / 1000, v.at_ms % 1000);
    match (&v.tp, v.offset) {
        (Some((t, p)), Some(o)) => {
            let _ = writeln!(out, "  at {at}, partition {t}-{p}, offset {o}: {}", v.detail);
        }
        (Some((t, p)), None) => {
            let _ = writeln!(out, "  at {at}, partition {t}-{p}: {}", v.detail);
        }
        _ => {
            let _ = writeln!(out, "  at {at}: {}", v.detail);
        }
    }
    let _ = writeln!(out, "  history (what concerns it, oldest first):");
    for line in &v.slice {
        let _ = writeln!(out, "    {line}");
    }
    let _ = writeln!(out, "  replay: sim/run --seed {seed} --trace");
    out
}

/// The suite's closing table.
pub fn summary(results: &[SeedResult], elapsed_wall_ms: u64, jobs: usize) -> String {
    let mut out = String::new();
    let passed = results.iter().filter(|r| r.passed()).count();
    let failed: Vec<&SeedResult> = results.iter().filter(|r| !r.passed()).collect();
    let sim_ms: u64 = results.iter().map(|r| r.sim_ms).sum();
    let seed_wall_ms: u64 = results.iter().map(|r| r.wall_ms).sum();
    let (mut ops, mut faults) = (Counts::default(), Counts::default());
    for r in results {
        ops.add(&r.ops);
        faults.add(&r.faults);
    }
    let checks: u64 = results.iter().map(|r| r.checks).sum();
    let beyond = results.iter().filter(|r| r.beyond_budget).count();
    let refused: u64 = results.iter().map(|r| r.outcomes.refused).sum();
    let lost_reported: u64 = results.iter().map(|r| r.outcomes.lost_reported).sum();
    let unsynced: u64 = results.iter().map(|r| r.outcomes.unsynced_lost).sum();
    let per_wall = |ms: u64| if ms == 0 { 0.0 } else { sim_ms as f64 / ms as f64 };
    let _ = writeln!(out, "== ringtail-sim summary");
    let _ = writeln!(out, "  {:<22} {}", "seeds", results.len());
    let _ = writeln!(out, "  {:<22} {}", "passed", passed);
    let _ = writeln!(out, "  {:<22} {}", "failed", failed.len());
    let _ = writeln!(out, "  {:<22} {:.1} s", "simulated", sim_ms as f64 / 1000.0);
    let _ = writeln!(out, "  {:<22} {:.1} s ({jobs} jobs)", "wall", elapsed_wall_ms as f64 / 1000.0);
    let _ = writeln!(
        out,
        "  {:<22} {:.1} (per core: {:.1})",
        "sim-s per wall-s",
        per_wall(elapsed_wall_ms),
        per_wall(seed_wall_ms)
    );
    let _ = writeln!(out, "  {:<22} {}", "operations", ops.total());
    let _ = writeln!(out, "  {:<22} {}", "checks", checks);
    let _ = writeln!(out, "  {:<22} {} in, {} beyond", "fault budget", results.len() - beyond, beyond);
    let _ = writeln!(
        out,
        "  {:<22} refused safely {refused}, lost with report {lost_reported}, unsynced lost {unsynced}",
        "accepted outcomes"
    );
    let _ = writeln!(out, "  faults by class:");
    for (name, n) in &faults.0 {
        let _ = writeln!(out, "    {name:<20} {n}");
    }
    let _ = writeln!(out, "  operations by kind:");
    for (name, n) in &ops.0 {
        let _ = writeln!(out, "    {name:<20} {n}");
    }
    for r in &failed {
        let v = r.violation.as_ref().expect("failed");
        let _ = writeln!(
            out,
            "  FAILED seed {} invariant {}: {}  (replay: sim/run --seed {} --trace)",
            r.seed,
            v.invariant.label(),
            v.detail,
            r.seed
        );
    }
    out
}
