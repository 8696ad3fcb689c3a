//! Memory Proxy: a self-hosted LLM gateway. Each top-level module is one layer, and
//! dependencies point one way, from the top of this list down (docs/architecture/):
//!
//! - [`app`]: the running gateway: state, server, reload, logging;
//! - [`http`]: routes, middleware and the handlers that are not model calls;
//! - [`pipeline`]: a model call's stages, in order;
//! - [`services`]: keys, memory, analytics, routing, the journal, the config snapshot;
//! - [`plugins`]: the WebAssembly runtime and the hooks the pipeline calls;
//! - [`config`]: config.yaml, LiteLLM's format and ours;
//! - [`storage`]: the database and its batching writer;
//! - [`core`]: the small shared types.

pub mod app;
pub mod cli;
pub mod config;
pub mod core;
pub mod http;
pub mod pipeline;
pub mod plugins;
pub mod services;
pub mod storage;
