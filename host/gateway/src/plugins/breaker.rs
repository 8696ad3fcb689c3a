//! A circuit breaker for one plugin: after `threshold` failures in a row it opens
//! for a back-off (1 s, doubling per trip, at most 60 s), during which calls are
//! refused at once; then calls are let through again, and the first success closes
//! it. A plugin that broke is tried again rather than left off until its file changes.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub struct Breaker {
    threshold: u32,
    failures_in_a_row: AtomicU32,
    trips: AtomicU32,
    /// Milliseconds after `since` until which calls are refused (0: closed).
    open_until_ms: AtomicU64,
    since: Instant,
}

impl Breaker {
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            failures_in_a_row: AtomicU32::new(0),
            trips: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            since: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.since.elapsed().as_millis() as u64
    }

    /// Ok when a call may go ahead; the time left otherwise.
    pub fn admits(&self) -> Result<(), Duration> {
        let until = self.open_until_ms.load(Ordering::Relaxed);
        let now = self.now_ms();
        if until > now { Err(Duration::from_millis(until - now)) } else { Ok(()) }
    }

    /// True while calls are refused.
    pub fn is_open(&self) -> bool {
        self.admits().is_err()
    }

    pub fn succeeded(&self) {
        if self.failures_in_a_row.load(Ordering::Relaxed) != 0 {
            self.failures_in_a_row.store(0, Ordering::Relaxed);
        }
        if self.trips.load(Ordering::Relaxed) != 0 {
            self.trips.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a failure: the failures in a row, and the back-off when it opened now.
    pub fn failed(&self) -> (u32, Option<Duration>) {
        let in_a_row = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        if in_a_row < self.threshold || self.is_open() {
            return (in_a_row, None);
        }
        let trips = self.trips.fetch_add(1, Ordering::Relaxed);
        let backoff = FIRST_BACKOFF.saturating_mul(1 << trips.min(6)).min(MAX_BACKOFF);
        self.open_until_ms.store(self.now_ms() + backoff.as_millis() as u64, Ordering::Relaxed);
        (in_a_row, Some(backoff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_backs_off_longer_each_trip() {
        let breaker = Breaker::new(3);
        assert_eq!(breaker.failed(), (1, None));
        assert_eq!(breaker.failed(), (2, None));
        assert_eq!(breaker.failed(), (3, Some(Duration::from_secs(1))));
        assert!(breaker.is_open() && breaker.admits().unwrap_err() <= Duration::from_secs(1));
        // Failures while open (calls already under way) do not extend it.
        assert_eq!(breaker.failed(), (4, None));
        // Let through again; one more failure trips it for twice as long.
        breaker.open_until_ms.store(0, Ordering::Relaxed);
        assert!(breaker.admits().is_ok());
        assert_eq!(breaker.failed().1, Some(Duration::from_secs(2)));
        // A success closes it and forgets the trips.
        breaker.open_until_ms.store(0, Ordering::Relaxed);
        breaker.succeeded();
        assert_eq!(breaker.failed(), (1, None));
    }
}
