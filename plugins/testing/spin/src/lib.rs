//! A detector that never returns: the CPU deadline must stop it.

use memory_proxy_sdk::detector::{Detector, Identity, Request};

struct Spin;

impl Detector for Spin {
    fn new() -> Result<Self, String> {
        Ok(Spin)
    }

    fn detect(&self, request: &Request) -> Result<Identity, String> {
        // Behaves for the host's self-check (an empty request), misbehaves on real ones.
        if request.model.is_empty() {
            return Ok(Identity::because("self-check"));
        }
        let mut n: u64 = request.model.len() as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

memory_proxy_sdk::register_detector!(Spin);
