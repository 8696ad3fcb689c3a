//! A detector that panics: the host must survive and count it.

use memory_proxy_sdk::detector::{Detector, Identity, Request};

struct Panics;

impl Detector for Panics {
    fn new() -> Result<Self, String> {
        Ok(Panics)
    }

    fn detect(&self, request: &Request) -> Result<Identity, String> {
        // Behaves for the host's self-check (an empty request), misbehaves on real ones.
        if request.model.is_empty() {
            return Ok(Identity::because("self-check"));
        }
        panic!("test-panic detector: deliberate panic for model {}", request.model);
    }
}

memory_proxy_sdk::register_detector!(Panics);
