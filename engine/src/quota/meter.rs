//! A rate meter as Kafka's quota manager keeps one per user and quota: the
//! bytes of the last `SAMPLES` one-second windows, the current one
//! included. When the rate over them exceeds the quota, the user is held
//! back for as long as brings it back to the quota:
//! `(rate - quota) / quota * window`, at most the whole window (Kafka's
//! `ClientQuotaManager.throttleTime`).
//!
//! Time comes in as milliseconds from the caller's clock, so the meter is
//! deterministic under the simulator.

/// Windows kept (Kafka's `quota.window.num` default).
pub const SAMPLES: usize = 11;
/// One window's length (Kafka's `quota.window.size.seconds`, in ms).
pub const SAMPLE_MS: u64 = 1000;

#[derive(Clone, Debug)]
pub struct RateMeter {
    /// (window start, bytes) per window, oldest first.
    samples: std::collections::VecDeque<(u64, u64)>,
}

impl Default for RateMeter {
    fn default() -> RateMeter {
        RateMeter::new()
    }
}

impl RateMeter {
    pub fn new() -> RateMeter {
        RateMeter { samples: Default::default() }
    }

    fn expire(&mut self, now_ms: u64) {
        let oldest = now_ms.saturating_sub(SAMPLES as u64 * SAMPLE_MS);
        while self.samples.front().is_some_and(|(start, _)| *start + SAMPLE_MS <= oldest) {
            self.samples.pop_front();
        }
    }

    pub fn record(&mut self, bytes: u64, now_ms: u64) {
        self.expire(now_ms);
        let start = now_ms - now_ms % SAMPLE_MS;
        match self.samples.back_mut() {
            Some((s, total)) if *s == start => *total += bytes,
            _ => self.samples.push_back((start, bytes)),
        }
    }

    /// Bytes per second over the kept windows.
    pub fn rate(&mut self, now_ms: u64) -> f64 {
        self.expire(now_ms);
        let bytes: u64 = self.samples.iter().map(|(_, b)| b).sum();
        bytes as f64 / (self.window_ms(now_ms) as f64 / 1000.0)
    }

    /// The span the rate is measured over: since the oldest window kept,
    /// and never less than all windows but the current one, as Kafka's
    /// `Rate` pads it (so a user's first burst, up to that many seconds of
    /// its quota, is not held back).
    fn window_ms(&self, now_ms: u64) -> u64 {
        let since_oldest = self.samples.front().map_or(0, |(start, _)| now_ms.saturating_sub(*start));
        since_oldest.max((SAMPLES as u64 - 1) * SAMPLE_MS)
    }

    /// How long to hold the user back so its rate comes down to `quota`
    /// bytes per second; 0 within it.
    pub fn throttle_ms(&mut self, quota: f64, now_ms: u64) -> u64 {
        let rate = self.rate(now_ms);
        if quota <= 0.0 || rate <= quota {
            return 0;
        }
        let window = self.window_ms(now_ms) as f64;
        let throttle = (rate - quota) / quota * window;
        (throttle as u64).min(SAMPLES as u64 * SAMPLE_MS)
    }

    /// Whether nothing was recorded in the kept windows (the meter may go).
    pub fn idle(&mut self, now_ms: u64) -> bool {
        self.expire(now_ms);
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_quota_nothing_waits() {
        let mut m = RateMeter::new();
        for second in 0..20 {
            m.record(900, second * 1000 + 10);
            assert_eq!(m.throttle_ms(1000.0, second * 1000 + 20), 0, "at {second} s");
        }
    }

    #[test]
    fn over_the_quota_the_wait_brings_the_rate_back() {
        let mut m = RateMeter::new();
        // 30 KB in the first second against 1 KB/s: three times the rate
        // over the padded window.
        m.record(30_000, 500);
        let wait = m.throttle_ms(1000.0, 1000);
        assert!(wait > 0);
        assert!(wait <= SAMPLES as u64 * SAMPLE_MS, "capped at the window");
        // Having waited, the same bytes over the longer span are within it.
        assert!(m.rate(1000 + wait) <= 1000.0 * 1.01, "{}", m.rate(1000 + wait));
        // And once the windows pass, the meter forgets.
        assert!(m.idle(1000 + 12 * SAMPLE_MS));
    }

    #[test]
    fn the_wait_grows_with_the_excess() {
        let (mut a, mut b) = (RateMeter::new(), RateMeter::new());
        for t in (0..5000).step_by(100) {
            a.record(200, t);
            b.record(400, t);
        }
        assert!(a.throttle_ms(1000.0, 5000) < b.throttle_ms(1000.0, 5000));
    }
}
