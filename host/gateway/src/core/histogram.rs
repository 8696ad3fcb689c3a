//! Log-linear histograms of durations: 16 buckets per power of two of microseconds,
//! so a percentile read from one is within 6.25% of the true value. Mergeable and
//! compact (only non-empty buckets are stored), which is what rollups need.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const PER_OCTAVE: usize = 16;
/// Octaves from 1 µs up to about 12 days.
const OCTAVES: usize = 40;
const BUCKETS: usize = PER_OCTAVE * OCTAVES + 1;

/// The bucket of a duration in microseconds.
fn bucket_of(micros: f64) -> usize {
    if micros < 1.0 {
        return 0;
    }
    let octave = micros.log2().floor();
    let fraction = micros / octave.exp2() - 1.0;
    ((octave as usize) * PER_OCTAVE + (fraction * PER_OCTAVE as f64) as usize + 1).min(BUCKETS - 1)
}

/// The upper edge of a bucket, in microseconds: the value a percentile reports.
fn upper_edge(index: usize) -> f64 {
    if index == 0 {
        return 1.0;
    }
    let octave = ((index - 1) / PER_OCTAVE) as i32;
    let step = ((index - 1) % PER_OCTAVE + 1) as f64;
    2f64.powi(octave) * (1.0 + step / PER_OCTAVE as f64)
}

/// A histogram as data: merged, stored and read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: BTreeMap<u16, u64>,
}

impl Histogram {
    pub fn record(&mut self, duration: Duration) {
        let index = bucket_of(duration.as_secs_f64() * 1e6) as u16;
        *self.counts.entry(index).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (index, count) in &other.counts {
            *self.counts.entry(*index).or_default() += count;
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The `p` quantile (0 to 1), or None when empty.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let wanted = ((total as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        self.counts.iter().find_map(|(index, count)| {
            seen += count;
            (seen >= wanted).then(|| Duration::from_secs_f64(upper_edge(*index as usize) / 1e6))
        })
    }

    /// Six bytes per non-empty bucket: index (u16) and count (u32), little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.counts.len() * 6);
        for (index, count) in &self.counts {
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&u32::try_from(*count).unwrap_or(u32::MAX).to_le_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        let counts = bytes
            .chunks_exact(6)
            .map(|c| (u16::from_le_bytes([c[0], c[1]]), u64::from(u32::from_le_bytes([c[2], c[3], c[4], c[5]]))))
            .collect();
        Self { counts }
    }
}

/// The same histogram, updated from many threads without a lock.
pub struct AtomicHistogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl AtomicHistogram {
    pub fn record(&self, duration: Duration) {
        self.buckets[bucket_of(duration.as_secs_f64() * 1e6)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Histogram {
        let counts = self
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let count = b.load(Ordering::Relaxed);
                (count > 0).then_some((i as u16, count))
            })
            .collect();
        Histogram { counts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_a_bucket() {
        let mut histogram = Histogram::default();
        for micros in 1..=10_000u64 {
            histogram.record(Duration::from_micros(micros));
        }
        for (p, truth) in [(0.5, 5000.0), (0.95, 9500.0), (0.99, 9900.0)] {
            let got = histogram.percentile(p).unwrap().as_secs_f64() * 1e6;
            assert!(got >= truth && got <= truth * 1.0625 + 1.0, "p{p}: {got} vs {truth}");
        }
        assert_eq!(Histogram::default().percentile(0.5), None);
    }

    #[test]
    fn merges_and_round_trips() {
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        a.record(Duration::from_millis(3));
        b.record(Duration::from_millis(3));
        b.record(Duration::from_secs(2));
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(Histogram::from_bytes(&a.to_bytes()), a);
        let atomic = AtomicHistogram::default();
        atomic.record(Duration::from_millis(3));
        assert_eq!(atomic.snapshot().count(), 1);
    }

    #[test]
    fn buckets_are_ordered() {
        for i in 1..BUCKETS {
            assert!(upper_edge(i) > upper_edge(i - 1));
            let inside = (upper_edge(i - 1) + upper_edge(i)) / 2.0;
            assert_eq!(bucket_of(inside), i);
        }
    }
}
