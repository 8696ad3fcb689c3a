//! Memory injectors: recalled memories in, a patch to the prompt out.

pub use crate::bindings::injector::exports::memory_proxy::plugin::injection::{
    Memory, Patch, Position, Request, Scope,
};

/// A memory injector. `new` runs once per plugin instance.
pub trait MemoryInjector: Sized + 'static {
    fn new() -> Result<Self, String>;

    /// The patch to apply to the prompt, or `None` to leave it unchanged.
    fn inject(&self, request: &Request) -> Result<Option<Patch>, String> {
        let _ = request;
        Ok(None)
    }
}

/// Registers a [`MemoryInjector`] as this plugin's export.
#[macro_export]
macro_rules! register_memory_injector {
    ($plugin:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct Export;
            static INSTANCE: $crate::Instance<$plugin> = $crate::Instance::new();

            impl $crate::bindings::injector::exports::memory_proxy::plugin::injection::Guest for Export {
                fn init() -> ::core::result::Result<(), ::std::string::String> {
                    INSTANCE.get(<$plugin as $crate::memory_injector::MemoryInjector>::new).map(|_| ())
                }

                fn inject(
                    request: $crate::memory_injector::Request,
                ) -> ::core::result::Result<
                    ::core::option::Option<$crate::memory_injector::Patch>,
                    ::std::string::String,
                > {
                    let plugin = INSTANCE.get(<$plugin as $crate::memory_injector::MemoryInjector>::new)?;
                    <$plugin as $crate::memory_injector::MemoryInjector>::inject(plugin, &request)
                }
            }

            $crate::bindings::injector::export_memory_injector!(Export with_types_in $crate::bindings::injector);
        };
        $crate::__embed_metadata!();
    };
}
