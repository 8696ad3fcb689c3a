//! A detector that allocates without bound: the memory cap must stop it.

use memory_proxy_sdk::detector::{Detector, Identity, Request};

struct Hog;

impl Detector for Hog {
    fn new() -> Result<Self, String> {
        Ok(Hog)
    }

    fn detect(&self, request: &Request) -> Result<Identity, String> {
        // Behaves for the host's self-check (an empty request), misbehaves on real ones.
        if request.model.is_empty() {
            return Ok(Identity::because("self-check"));
        }
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

memory_proxy_sdk::register_detector!(Hog);
