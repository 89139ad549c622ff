//! Randomness as the engine sees it: handed in, never drawn from the ambient
//! world, so that a simulation seed replays exactly.

use std::sync::atomic::{AtomicU64, Ordering};

pub trait Entropy: Send + Sync + 'static {
    fn next_u64(&self) -> u64;
}

/// splitmix64 over a seed: fast, dependency-free, good enough for ids and
/// jitter (not for secrets). The server seeds it from the OS once at start.
#[derive(Debug)]
pub struct SeededEntropy {
    state: AtomicU64,
}

impl SeededEntropy {
    pub fn new(seed: u64) -> SeededEntropy {
        SeededEntropy { state: AtomicU64::new(seed) }
    }
}

impl Entropy for SeededEntropy {
    fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
