//! The scenario: fixed fields, then operations, decoded from the fuzz input.

use super::{FLIPS_MAX, OPS_MAX};
use arbitrary::{Arbitrary, Unstructured};
use ringtail_engine::log::{FlushPolicy, LogConfig};

#[derive(Arbitrary, Debug, Clone)]
pub struct Scenario {
    pub config: ConfigChoice,
    /// Reopen through `LogManager::open` (checkpoint files on the disk), or
    /// through `Log::open` with checkpoints the harness keeps as the manager
    /// would.
    pub via_manager: bool,
    /// Times each fsync yields to the executor (0-2): with more than zero,
    /// concurrent appends share group-commit rounds.
    pub sync_yields: u8,
    /// The crash after the last operation.
    pub crash: Crash,
    pub ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct ConfigChoice {
    pub segment_bytes: u16,
    pub segment_ms: Option<u16>,
    pub index_interval: u8,
    pub index_entries: u8,
    pub retention_ms: Option<u16>,
    pub retention_bytes: Option<u16>,
    pub flush: FlushChoice,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FlushChoice {
    Always,
    Never,
    Interval(u16),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// One append call of 1-3 batches of 1-4 records each.
    Append {
        batches: u8,
        records: u8,
        payload: u8,
        epoch: u8,
        ts_skew: i8,
    },
    /// 2-6 single-batch appends in flight at once.
    Concurrent {
        count: u8,
        payload: u8,
    },
    Read {
        at: u8,
        max_bytes: u16,
    },
    TimeLookup {
        at: u8,
    },
    Flush,
    FlushIfDue,
    Roll,
    Tick {
        ms: u16,
    },
    Retention,
    DeleteRecordsBefore {
        at: u8,
    },
    Truncate {
        at: u8,
    },
    Checkpoint,
    /// Clean close and reopen.
    Reopen,
    FailNextSyncs {
        n: u8,
    },
    DiskFull {
        headroom: u16,
    },
    ClearFaults,
    Crash(Crash),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Crash {
    pub kind: CrashKind,
    pub seed: u32,
    /// Bit flips in the files after the crash, before recovery: the first
    /// `flip_count % (FLIPS_MAX + 1)` of `flips`. (A fixed array, so that
    /// the flips do not eat the bytes the operations are made of.)
    pub flip_count: u8,
    pub flips: [Flip; FLIPS_MAX],
    /// Lowers the recovery point handed to `Log::open` (always safe).
    pub rp_lower: u8,
}

impl Crash {
    pub fn flips(&self) -> &[Flip] {
        &self.flips[..usize::from(self.flip_count) % (FLIPS_MAX + 1)]
    }
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashKind {
    DropUnsynced,
    KeepAll,
    /// Each unsynced write kept, dropped or torn at sector granularity.
    Tear,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Flip {
    pub index_file: bool,
    pub file: u8,
    pub at: u16,
    pub bit: u8,
}

impl Scenario {
    /// The scenario in `data`: the fixed fields via `arbitrary`, then one
    /// operation after another until the bytes run out. (The derived
    /// `arbitrary_take_rest` reads a continue-flag byte before each element,
    /// which makes random inputs very short.)
    pub fn decode(data: &[u8]) -> Option<Scenario> {
        let mut u = Unstructured::new(data);
        let config = ConfigChoice::arbitrary(&mut u).ok()?;
        let via_manager = bool::arbitrary(&mut u).ok()?;
        let sync_yields = u8::arbitrary(&mut u).ok()?;
        let crash = Crash::arbitrary(&mut u).ok()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < OPS_MAX {
            ops.push(Op::arbitrary(&mut u).ok()?);
        }
        Some(Scenario { config, via_manager, sync_yields, crash, ops })
    }
}

impl ConfigChoice {
    pub fn config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: 64 + u64::from(self.segment_bytes % 4000),
            segment_ms: self.segment_ms.map_or(LogConfig::default().segment_ms, |ms| 100 + i64::from(ms)),
            retention_ms: self.retention_ms.map(|ms| 1000 + i64::from(ms)),
            retention_bytes: self.retention_bytes.map(|b| 200 + u64::from(b % 8000)),
            index_interval_bytes: [0, 1, 60, 100, 250, 1000, 4096, 3][usize::from(self.index_interval % 8)],
            segment_index_bytes: [8, 16, 24, 64, 10 << 20][usize::from(self.index_entries % 5)],
            flush: match self.flush {
                FlushChoice::Always => FlushPolicy::Always,
                FlushChoice::Never => FlushPolicy::Never,
                FlushChoice::Interval(ms) => FlushPolicy::Interval { ms: 1 + u64::from(ms % 5000) },
            },
            ..LogConfig::default()
        }
    }
}
