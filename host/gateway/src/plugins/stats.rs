//! Per-plugin call statistics for the admin view: counts, failures, mean and p99
//! call time (from a log-linear histogram: four buckets per power of two of
//! microseconds, so a percentile is within 19% of the truth).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

const BUCKETS: usize = 4 * 40;

pub struct Stats {
    calls: AtomicU64,
    failures: AtomicU64,
    total_nanos: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
    last_error: Mutex<Option<(SystemTime, String)>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            total_nanos: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            last_error: Mutex::new(None),
        }
    }
}

/// A copy of the statistics at one moment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatsView {
    pub calls: u64,
    pub failures: u64,
    pub mean_us: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<u64>,
}

fn bucket_of(micros: f64) -> usize {
    if micros < 1.0 {
        return 0;
    }
    let exponent = micros.log2().floor();
    let fraction = micros / exponent.exp2() - 1.0; // 0..1
    ((exponent as usize) * 4 + (fraction * 4.0) as usize + 1).min(BUCKETS - 1)
}

/// The upper edge of a bucket, in microseconds.
fn bucket_edge(index: usize) -> f64 {
    if index == 0 {
        return 1.0;
    }
    let exponent = ((index - 1) / 4) as i32;
    let quarter = ((index - 1) % 4 + 1) as f64;
    2f64.powi(exponent) * (1.0 + quarter / 4.0)
}

impl Stats {
    pub fn record(&self, elapsed: Duration, ok: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.total_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.buckets[bucket_of(nanos as f64 / 1000.0)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_error(&self, message: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some((SystemTime::now(), message));
    }

    pub fn view(&self) -> StatsView {
        let calls = self.calls.load(Ordering::Relaxed);
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let percentile = |p: f64| {
            let wanted = (total as f64 * p).ceil() as u64;
            let mut seen = 0;
            counts.iter().enumerate().find_map(|(i, count)| {
                seen += count;
                (seen >= wanted && total > 0).then(|| bucket_edge(i))
            })
        };
        let last = self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        StatsView {
            calls,
            failures: self.failures.load(Ordering::Relaxed),
            mean_us: (calls > 0).then(|| self.total_nanos.load(Ordering::Relaxed) as f64 / calls as f64 / 1000.0),
            p50_us: percentile(0.5),
            p99_us: percentile(0.99),
            last_error_at: last
                .as_ref()
                .and_then(|(at, _)| at.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            last_error: last.map(|(_, message)| message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_land_within_a_bucket_of_the_truth() {
        let stats = Stats::default();
        for micros in 1..=1000u64 {
            stats.record(Duration::from_micros(micros), micros % 100 != 0);
        }
        let view = stats.view();
        assert_eq!((view.calls, view.failures), (1000, 10));
        let p50 = view.p50_us.unwrap();
        let p99 = view.p99_us.unwrap();
        assert!((500.0..=500.0 * 1.25).contains(&p50), "p50 {p50}");
        assert!((990.0..=990.0 * 1.25).contains(&p99), "p99 {p99}");
        assert!((view.mean_us.unwrap() - 500.5).abs() < 0.01);
    }

    #[test]
    fn bucket_edges_grow_monotonically() {
        for i in 1..BUCKETS {
            assert!(bucket_edge(i) > bucket_edge(i - 1));
            let middle = (bucket_edge(i - 1) + bucket_edge(i)) / 2.0;
            assert_eq!(bucket_of(middle), i, "{middle}");
        }
    }
}
