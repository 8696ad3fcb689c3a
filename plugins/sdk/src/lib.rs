//! Write Memory Proxy plugins in Rust.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`. It implements one of the
//! traits below and registers it with the matching macro:
//!
//! ```ignore
//! use memory_proxy_sdk::detector::{Detector, Identity, Request};
//!
//! struct MyDetector;
//!
//! impl Detector for MyDetector {
//!     fn new() -> Result<Self, String> {
//!         Ok(MyDetector)
//!     }
//!
//!     fn detect(&self, request: &Request) -> Result<Identity, String> {
//!         Ok(Identity { user: request.header("x-team").map(str::to_owned), ..Identity::because("x-team header") })
//!     }
//! }
//!
//! memory_proxy_sdk::register_detector!(MyDetector);
//! ```
//!
//! Every hook method has a default, so a plugin keeps compiling when later API
//! versions add hooks. The generated WIT bindings stay inside this crate; plugins see
//! only the types re-exported here. docs/plugins.md walks through a whole plugin.

pub mod detector;
pub mod host;
pub mod memory_injector;
pub mod provider_adapter;

/// The plugin API version this SDK implements (the WIT package version). The host
/// reads it from the plugin before compiling it and refuses versions it does not know.
pub const API_VERSION: &str = "0.2.0";

/// The name of the custom section that carries a plugin's metadata.
pub const METADATA_SECTION: &str = "memory-proxy-plugin";

pub use bindings::memory_proxy::plugin::types::{Api, Header};
/// The token estimate the host uses for budgets (about four bytes a token).
pub use wire::tokens;

/// Generated bindings: one module per world. Only the exporting world's type
/// information ends up in a plugin, through its registration macro.
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.2.0",
        world: "detector",
        pub_export_macro: true,
        export_macro_name: "export_detector",
        default_bindings_module: "::memory_proxy_sdk::bindings",
    });

    pub mod injector {
        wit_bindgen::generate!({
            path: "../../wit/v0.2.0",
            world: "memory-injector",
            pub_export_macro: true,
            export_macro_name: "export_memory_injector",
            default_bindings_module: "::memory_proxy_sdk::bindings::injector",
            with: {
                "memory-proxy:plugin/types@0.2.0": crate::bindings::memory_proxy::plugin::types,
                "memory-proxy:plugin/host@0.2.0": crate::bindings::memory_proxy::plugin::host,
            },
        });
    }

    pub mod adapter {
        wit_bindgen::generate!({
            path: "../../wit/v0.2.0",
            world: "provider-adapter",
            pub_export_macro: true,
            export_macro_name: "export_provider_adapter",
            default_bindings_module: "::memory_proxy_sdk::bindings::adapter",
            with: {
                "memory-proxy:plugin/types@0.2.0": crate::bindings::memory_proxy::plugin::types,
                "memory-proxy:plugin/host@0.2.0": crate::bindings::memory_proxy::plugin::host,
            },
        });
    }
}

/// The plugin's metadata as the host reads it: API version, crate name and version.
#[doc(hidden)]
pub const fn metadata<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Embeds the metadata section; called by every registration macro in the plugin
/// crate, so the name and version are the plugin's own.
#[doc(hidden)]
#[macro_export]
macro_rules! __embed_metadata {
    () => {
        #[allow(unsafe_code)]
        const _: () = {
            const TEXT: &str = concat!(
                "{\"api\":\"0.2.0\",\"name\":\"",
                env!("CARGO_PKG_NAME"),
                "\",\"version\":\"",
                env!("CARGO_PKG_VERSION"),
                "\"}"
            );
            #[used]
            #[unsafe(link_section = "memory-proxy-plugin")]
            static METADATA: [u8; TEXT.len()] = $crate::metadata::<{ TEXT.len() }>(TEXT);
        };
    };
}

/// Keeps one plugin value per instance: built on first use, reused by every later
/// call into the same (warm) instance.
#[doc(hidden)]
pub struct Instance<T>(std::sync::OnceLock<Result<T, String>>);

impl<T> Instance<T> {
    pub const fn new() -> Self {
        Self(std::sync::OnceLock::new())
    }

    pub fn get(&self, new: impl FnOnce() -> Result<T, String>) -> Result<&T, String> {
        self.0.get_or_init(new).as_ref().map_err(Clone::clone)
    }
}

impl<T> Default for Instance<T> {
    fn default() -> Self {
        Self::new()
    }
}
