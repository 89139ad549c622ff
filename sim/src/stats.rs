//! Counters of a run: client operations by kind and injected faults by
//! class, for the per-seed summary line.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

#[derive(Default)]
pub struct Counters {
    ops: Mutex<BTreeMap<&'static str, u64>>,
    faults: Mutex<BTreeMap<&'static str, u64>>,
}

/// A snapshot: named counts, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts(pub BTreeMap<&'static str, u64>);

impl Counts {
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn add(&mut self, other: &Counts) {
        for (k, v) in &other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }

    pub fn set(&mut self, name: &'static str, n: u64) {
        if n > 0 {
            self.0.insert(name, n);
        }
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "-");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        write!(f, "{}", parts.join(","))
    }
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, name: &'static str) {
    *map.lock().unwrap_or_else(|e| e.into_inner()).entry(name).or_default() += 1;
}

impl Counters {
    pub fn op(&self, name: &'static str) {
        bump(&self.ops, name);
    }

    pub fn fault(&self, name: &'static str) {
        bump(&self.faults, name);
    }

    pub fn ops(&self) -> Counts {
        Counts(self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    pub fn faults(&self) -> Counts {
        Counts(self.faults.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}
