//! Detectors: who is calling, from which client, for which project.

use crate::Header;
pub use crate::bindings::exports::memory_proxy::plugin::detection::{Identity, Request};

/// A detector. `new` runs once per plugin instance (instances are reused), so
/// expensive set-up (compiling patterns, reading config) belongs there.
pub trait Detector: Sized + 'static {
    fn new() -> Result<Self, String>;

    /// The identity this request shows. Leave a field `None` unless sure: the first
    /// detector (in config order) that sets a field decides it.
    fn detect(&self, request: &Request) -> Result<Identity, String> {
        let _ = request;
        Ok(Identity::because("nothing to detect"))
    }
}

impl Identity {
    /// An identity with no field set yet, and the reason to report when some are.
    pub fn because(reason: impl Into<String>) -> Self {
        Identity { user: None, project: None, client: None, reason: reason.into(), scaffolding: Vec::new() }
    }

    /// The same identity, naming the tags its client wraps around the user's words.
    pub fn wrapped_in(mut self, tags: &[&str]) -> Self {
        self.scaffolding = tags.iter().map(|tag| (*tag).to_owned()).collect();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.project.is_none() && self.client.is_none()
    }
}

impl Request {
    /// The value of a header (names are lower-case; pass the name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The value of the first header called `name` (lower-case).
pub fn header<'h>(headers: &'h [Header], name: &str) -> Option<&'h str> {
    headers.iter().find(|h| h.name == name).map(|h| h.value.as_str())
}

/// Registers a [`Detector`] as this plugin's export.
#[macro_export]
macro_rules! register_detector {
    ($plugin:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct Export;
            static INSTANCE: $crate::Instance<$plugin> = $crate::Instance::new();

            impl $crate::bindings::exports::memory_proxy::plugin::detection::Guest for Export {
                fn init() -> ::core::result::Result<(), ::std::string::String> {
                    INSTANCE.get(<$plugin as $crate::detector::Detector>::new).map(|_| ())
                }

                fn detect(
                    request: $crate::detector::Request,
                ) -> ::core::result::Result<$crate::detector::Identity, ::std::string::String> {
                    let plugin = INSTANCE.get(<$plugin as $crate::detector::Detector>::new)?;
                    <$plugin as $crate::detector::Detector>::detect(plugin, &request)
                }
            }

    $crate::bindings::export_detector!(Export with_types_in $crate::bindings);
        };
        $crate::__embed_metadata!();
    };
}
