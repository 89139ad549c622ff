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

/// Milliseconds since this clock was made, from the runtime's monotonic
/// clock: never goes back, and never jumps when the host's wall clock is
/// stepped. For timeouts that must not fire (or stall) because an NTP step
/// moved the wall clock: the controller's raft ticks and broker sessions.
/// Under the simulator it reads madsim's time.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    start: tokio::time::Instant,
}

impl MonotonicClock {
    pub fn new() -> MonotonicClock {
        MonotonicClock { start: tokio::time::Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> MonotonicClock {
        MonotonicClock::new()
    }
}

impl Clock for MonotonicClock {
    fn now_ms(&self) -> i64 {
        self.start.elapsed().as_millis() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn monotonic_time_counts_from_its_start() {
        let clock = MonotonicClock::new();
        let first = clock.now_ms();
        assert!((0..1_000).contains(&first), "{first}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(clock.now_ms() >= first + 20);
    }

    #[test]
    fn reads_a_time_after_2020() {
        // 2020-01-01T00:00:00Z: any working host is past it.
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
