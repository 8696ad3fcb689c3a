//! Memory Proxy: a self-hosted LLM gateway. docs/architecture/ describes the pipeline;
//! each module here owns one concern of it.

pub mod adapter;
pub mod analytics;
pub mod api;
pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod context;
pub mod error;
pub mod histogram;
pub mod identity;
pub mod keys;
pub mod logging;
pub mod memory;
pub mod outcome;
pub mod plugins;
pub mod provider;
pub mod proxy;
pub mod relay;
pub mod routing;
pub mod secret;
pub mod server;
pub mod sse;
pub mod state;
pub mod storage;
pub mod upstream;
