//! The wall clock the engine is handed in the server. The engine never reads
//! ambient time itself (the simulator hands it a simulated clock instead).

use ringtail_engine::clock::Clock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch from the operating system, as Kafka
/// timestamps are.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        // A clock set before 1970 is a broken host; report the epoch rather
        // than a negative time that Kafka reserves for special meanings.
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_time_after_2020() {
        // 2020-01-01T00:00:00Z: any working host is past it.
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
