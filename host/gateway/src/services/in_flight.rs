//! The cap on model requests in flight (`general_settings.global_max_parallel_requests`,
//! LiteLLM's name): past it, a request is answered 503 with `retry-after` at once
//! instead of queueing without end. A request holds its permit until its answer,
//! streamed or whole, is over.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct InFlight {
    permits: Arc<Semaphore>,
    limit: AtomicUsize,
}

impl InFlight {
    pub fn new(limit: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(limit)), limit: AtomicUsize::new(limit) }
    }

    /// A place for one more request, or None when the cap is reached.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// A reloaded config's cap: requests in flight keep their places; a lower cap
    /// takes effect as they finish.
    pub fn resize(&self, limit: usize) {
        let old = self.limit.swap(limit, Ordering::Relaxed);
        if limit > old {
            self.permits.add_permits(limit - old);
        } else if limit < old {
            let mut owed = old - limit;
            owed -= self.permits.forget_permits(owed);
            // The rest are held by requests: take them back as they are released.
            if owed > 0 {
                let permits = self.permits.clone();
                tokio::spawn(async move {
                    if let Ok(held) = permits.acquire_many_owned(owed as u32).await {
                        held.forget();
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_up_to_the_cap_and_follows_a_new_one() {
        let in_flight = InFlight::new(2);
        let (a, b) = (in_flight.admit(), in_flight.admit());
        assert!(a.is_some() && b.is_some());
        assert!(in_flight.admit().is_none(), "the cap holds");
        drop(a);
        assert!(in_flight.admit().is_some(), "a finished request frees its place");
        in_flight.resize(4);
        let more: Vec<_> = (0..3).filter_map(|_| in_flight.admit()).collect();
        assert_eq!(more.len(), 3);
        drop(more);
        drop(b);
        in_flight.resize(1);
        let one = in_flight.admit();
        assert!(one.is_some() && in_flight.admit().is_none(), "a lower cap applies");
    }
}
