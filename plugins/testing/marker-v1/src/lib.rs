//! Version 1 of a detector that names the client `marker-v1`: the reload test swaps
//! one for the other under load.

use memory_proxy_sdk::detector::{Detector, Identity, Request};

struct Marker;

impl Detector for Marker {
    fn new() -> Result<Self, String> {
        Ok(Marker)
    }

    fn detect(&self, _request: &Request) -> Result<Identity, String> {
        Ok(Identity { client: Some("marker-v1".into()), ..Identity::because("marker plugin v1") })
    }
}

memory_proxy_sdk::register_detector!(Marker);
