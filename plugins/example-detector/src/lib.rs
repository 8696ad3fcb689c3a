//! The detector docs/plugins.md builds step by step: the user is the team a request
//! names in a header (`x-team: payments` -> user `team-payments`).
//!
//! Config: `header` (default `x-team`) and `user_prefix` (default `team-`).

use memory_proxy_sdk::detector::{Detector, Identity, Request};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default)]
struct Config {
    header: String,
    user_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { header: "x-team".into(), user_prefix: "team-".into() }
    }
}

struct TeamDetector {
    config: Config,
}

impl Detector for TeamDetector {
    fn new() -> Result<Self, String> {
        Ok(Self { config: memory_proxy_sdk::host::config()? })
    }

    fn detect(&self, request: &Request) -> Result<Identity, String> {
        let Some(team) = request.header(&self.config.header).map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Identity::because("no team header"));
        };
        Ok(Identity {
            user: Some(format!("{}{team}", self.config.user_prefix)),
            ..Identity::because(format!("team from the {} header", self.config.header))
        })
    }
}

memory_proxy_sdk::register_detector!(TeamDetector);
