#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set itself up should fail loudly

//! Black-box tests: the real `memory-proxy` binary against the real mock provider,
//! both on 127.0.0.1, driven over HTTP.

mod agents;
mod analytics;
mod config;
mod dashboard;
mod errors;
mod hardening;
mod keys;
mod litellm_configs;
mod memory;
mod passthrough;
mod plugins;
mod providers;
mod routing;
mod server;
mod streaming;
mod supermemory;
mod translation;
