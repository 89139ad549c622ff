//! The log cleaner's I/O rate limit (`--log-cleaner-io-max-bytes-per-second`,
//! Kafka's `log.cleaner.io.max.bytes.per.second`): its reads and writes
//! together, so that cleaning a large log does not take the disk from
//! producers and consumers.

use ringtail_engine::log::cleaner::Pacer;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use tokio::time::{Duration, Instant};

pub struct RateLimit {
    bytes_per_sec: u64,
    /// When the bytes granted so far are paid for.
    paid_until: Mutex<Option<Instant>>,
}

impl RateLimit {
    pub fn new(bytes_per_sec: u64) -> RateLimit {
        RateLimit { bytes_per_sec: bytes_per_sec.max(1), paid_until: Mutex::new(None) }
    }

    /// When a caller asking for `bytes` at `now` may go on: once what was
    /// granted before is paid for. Time idle since then is not saved up.
    fn grant(&self, bytes: u64, now: Instant) -> Instant {
        let mut paid_until = self.paid_until.lock().unwrap_or_else(|e| e.into_inner());
        let start = paid_until.map_or(now, |t| t.max(now));
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
        *paid_until = Some(start + cost);
        start
    }
}

impl Pacer for RateLimit {
    fn pace(&self, bytes: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let at = self.grant(bytes, Instant::now());
        Box::pin(tokio::time::sleep_until(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten 1,000-byte grants at 2,000 bytes/s back to back: each goes once
    /// those before it are paid for (the tenth after 4.5 s); an idle pause
    /// is not saved up for a burst after it.
    #[test]
    fn grants_keep_to_the_rate() {
        let limit = RateLimit::new(2_000);
        let t0 = Instant::now();
        let starts: Vec<Duration> = (0..10).map(|_| limit.grant(1_000, t0) - t0).collect();
        assert_eq!(starts[1], Duration::from_millis(500));
        assert_eq!(starts[9], Duration::from_millis(4_500));
        let later = t0 + Duration::from_secs(60);
        assert_eq!(limit.grant(1_000, later), later, "nothing owed after the pause");
        assert_eq!(limit.grant(1_000, later) - later, Duration::from_millis(500));
    }
}
