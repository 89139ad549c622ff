//! Latency histograms for the load generators: fixed memory whatever the
//! sample count, mergeable across tasks, percentiles within 1.6%.

use std::time::Duration;

/// Latencies in nanoseconds, log-linear buckets: exact below 64 ns, within
/// 1/64 (1.6%) above, in a fixed 3,776 counters however many samples come.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

const SUB_BUCKETS: u64 = 64;
const SUB_BITS: u32 = 6;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB_BUCKETS as usize;

impl Histogram {
    pub fn new() -> Histogram {
        Histogram { counts: vec![0; BUCKETS], total: 0 }
    }

    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket_of(nanos)] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1), as its bucket's midpoint.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, width) = bucket_range(index);
                return low + width / 2;
            }
        }
        0
    }
}

fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let shift = (63 - value.leading_zeros()) - SUB_BITS;
    let mantissa = value >> shift; // in SUB_BUCKETS..2*SUB_BUCKETS
    ((u64::from(shift) + 1) * SUB_BUCKETS + (mantissa - SUB_BUCKETS)) as usize
}

/// Lowest value and width of bucket `index`.
fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return (index, 1);
    }
    let shift = index / SUB_BUCKETS - 1;
    let mantissa = index % SUB_BUCKETS + SUB_BUCKETS;
    (mantissa << shift, 1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_within_their_range() {
        for value in [0, 1, 63, 64, 65, 127, 128, 1000, 123_456_789, u64::MAX / 3, u64::MAX] {
            let index = bucket_of(value);
            assert!(index < BUCKETS, "{value}");
            let (low, width) = bucket_range(index);
            assert!(low <= value && value - low < width, "{value}: bucket {index} = {low}+{width}");
            assert!(width == 1 || width * SUB_BUCKETS <= low, "relative error under 1/64 at {value}");
        }
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut h = Histogram::new();
        for micros in 1..=1000u64 {
            h.record(Duration::from_micros(micros));
        }
        let p50 = h.percentile(0.5) as f64;
        let p999 = h.percentile(0.999) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.02, "{p50}");
        assert!((p999 - 999_000.0).abs() / 999_000.0 < 0.02, "{p999}");
        assert_eq!(Histogram::new().percentile(0.99), 0);
    }
}
