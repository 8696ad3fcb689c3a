//! What a plugin says about itself before it is compiled: the `memory-proxy-plugin`
//! custom section the SDK embeds (API version, crate name and version).

use serde::Deserialize;

/// The section the SDK writes (see plugins/sdk).
const SECTION: &str = "memory-proxy-plugin";

use super::bindings::SUPPORTED_API_VERSIONS;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    pub api: String,
    pub name: String,
    pub version: String,
}

/// Reads the metadata section and checks the API version, without compiling anything.
pub fn read(bytes: &[u8]) -> Result<Metadata, String> {
    let mut found = None;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("not a valid WebAssembly component: {e}"))?;
        if let wasmparser::Payload::CustomSection(section) = payload
            && section.name() == SECTION
        {
            found = Some(section.data().to_vec());
            break;
        }
    }
    let Some(data) = found else {
        return Err(format!(
            "no `{SECTION}` section: build the plugin with memory-proxy-sdk (it records the plugin API version)"
        ));
    };
    let metadata: Metadata =
        serde_json::from_slice(&data).map_err(|e| format!("unreadable `{SECTION}` section: {e}"))?;
    if !SUPPORTED_API_VERSIONS.contains(&metadata.api.as_str()) {
        return Err(format!(
            "built for plugin API {}, which this gateway does not know (it supports {}); rebuild the plugin with a matching memory-proxy-sdk",
            metadata.api,
            SUPPORTED_API_VERSIONS.join(", ")
        ));
    }
    Ok(metadata)
}
