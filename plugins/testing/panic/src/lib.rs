//! A detector that panics: the host must survive and count it.

use memory_proxy_sdk::detector::{Detector, Identity, Request};

struct Panics;

impl Detector for Panics {
    fn new() -> Result<Self, String> {
        Ok(Panics)
    }

    fn detect(&self, request: &Request) -> Result<Identity, String> {
        panic!("test-panic detector: deliberate panic for model {}", request.model);
    }
}

memory_proxy_sdk::register_detector!(Panics);
