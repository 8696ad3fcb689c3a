//! Per-plugin call statistics for the admin view and /metrics: counts, failures, mean
//! and percentile call times, the last error.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::core::histogram::AtomicHistogram;

#[derive(Default)]
pub struct Stats {
    calls: AtomicU64,
    failures: AtomicU64,
    total_nanos: AtomicU64,
    times: AtomicHistogram,
    last_error: Mutex<Option<(SystemTime, String)>>,
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

impl Stats {
    pub fn record(&self, elapsed: Duration, ok: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.total_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.times.record(elapsed);
    }

    pub fn record_error(&self, message: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some((SystemTime::now(), message));
    }

    pub fn view(&self) -> StatsView {
        let calls = self.calls.load(Ordering::Relaxed);
        let times = self.times.snapshot();
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        let last = self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        StatsView {
            calls,
            failures: self.failures.load(Ordering::Relaxed),
            mean_us: (calls > 0).then(|| self.total_nanos.load(Ordering::Relaxed) as f64 / calls as f64 / 1000.0),
            p50_us: times.percentile(0.5).map(micros),
            p99_us: times.percentile(0.99).map(micros),
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
    fn counts_calls_failures_and_times() {
        let stats = Stats::default();
        for micros in 1..=1000u64 {
            stats.record(Duration::from_micros(micros), micros % 100 != 0);
        }
        let view = stats.view();
        assert_eq!((view.calls, view.failures), (1000, 10));
        let p99 = view.p99_us.unwrap();
        assert!((990.0..=990.0 * 1.07).contains(&p99), "p99 {p99}");
        assert!((view.mean_us.unwrap() - 500.5).abs() < 0.01);
    }
}
