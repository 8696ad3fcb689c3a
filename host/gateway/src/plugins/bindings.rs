//! Host bindings of the plugin API: one module per frozen WIT version (wit/vX.Y.Z).
//! A new API version gets a new module here; plugins built against an older one keep
//! loading through theirs.

/// Plugin API 0.1.0 (wit/v0.1.0).
pub mod v0_1_0 {
    pub const VERSION: &str = "0.1.0";

    pub mod detector {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1.0",
            world: "detector",
            exports: { default: async },
        });
    }

    pub mod injector {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1.0",
            world: "memory-injector",
            exports: { default: async },
            with: {
                "memory-proxy:plugin/types": super::detector::memory_proxy::plugin::types,
                "memory-proxy:plugin/host": super::detector::memory_proxy::plugin::host,
            },
        });
    }

    pub mod adapter {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1.0",
            world: "provider-adapter",
            exports: { default: async },
            with: {
                "memory-proxy:plugin/types": super::detector::memory_proxy::plugin::types,
                "memory-proxy:plugin/host": super::detector::memory_proxy::plugin::host,
            },
        });
    }

    pub use detector::memory_proxy::plugin::host;
    pub use detector::memory_proxy::plugin::types;
}
