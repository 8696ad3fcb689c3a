//! The `plugins:` section: which components serve which hook, with what limits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawPlugin, RawPlugins};
use super::{ConfigError, invalid};
use crate::core::provider::{Provider, Wire};

const DEFAULT_DIRECTORY: &str = "plugins/dist";
const DEFAULT_TIMEOUT_MS: u64 = 50;
const DEFAULT_MEMORY_MB: u64 = 64;
const DEFAULT_MAX_FAILURES: u32 = 5;
/// Overrides `plugins.directory` (packaged installs, tests).
pub const DIRECTORY_VAR: &str = "MEMORY_PROXY_PLUGINS_DIR";

/// The built-in detectors, in order: the specific ones first, the header rules last.
const DEFAULT_DETECTORS: [&str; 3] = ["claude-code-detector", "codex-detector", "header-detector"];
/// The requests each built-in detector can be about (used when its entry sets no
/// `match_headers`): the others skip the plugin call.
const DEFAULT_MATCHES: [(&str, &[(&str, &str)]); 2] = [
    ("claude-code-detector", &[("user-agent", "^claude-(cli|vscode)"), ("x-claude-code-session-id", "")]),
    ("codex-detector", &[("user-agent", "^codex_"), ("originator", "^codex_")]),
];
const DEFAULT_INJECTOR: &str = "system-prompt-injector";
/// The built-in adapter serving a provider: one per wire API, and Gemini's own for
/// both of Gemini's APIs (its OpenAI endpoint takes `max_tokens` only).
fn default_adapter(provider: &Provider) -> &'static str {
    match provider.wire {
        _ if provider.name.starts_with("gemini") => "gemini-adapter",
        Wire::AnthropicMessages => "anthropic-adapter",
        Wire::OpenAiChat => "openai-adapter",
        Wire::GeminiGenerateContent => "gemini-adapter",
    }
}
const DEFAULT_ADAPTERS: [&str; 3] = ["anthropic-adapter", "openai-adapter", "gemini-adapter"];
/// The detector whose config is `user_id_mappings` unless it has its own.
pub const HEADER_DETECTOR: &str = "header-detector";

#[derive(Debug, Clone, PartialEq)]
pub struct PluginsConfig {
    pub directory: PathBuf,
    pub cache_directory: Option<PathBuf>,
    pub max_failures: u32,
    pub detectors: Vec<PluginSpec>,
    pub memory_injector: Option<PluginSpec>,
    pub provider_adapters: Vec<PluginSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    pub name: String,
    /// Absolute path of the component.
    pub file: PathBuf,
    pub config_json: String,
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub on_error: OnError,
    pub isolation: Isolation,
    /// Provider adapters: the providers this one serves.
    pub providers: Vec<String>,
    /// Detectors: called only for requests with one of these headers matching (all
    /// requests when empty). Saves a plugin call on requests it cannot be about.
    pub match_headers: Vec<HeaderMatch>,
}

/// A header a request must have, and the pattern its value must match (any value when None).
#[derive(Debug, Clone)]
pub struct HeaderMatch {
    pub header: http::HeaderName,
    pub pattern: Option<regex::Regex>,
}

impl PartialEq for HeaderMatch {
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header
            && self.pattern.as_ref().map(regex::Regex::as_str) == other.pattern.as_ref().map(regex::Regex::as_str)
    }
}

impl HeaderMatch {
    /// True when `value` (the header's value, if present) satisfies this match.
    pub fn accepts(&self, value: Option<&str>) -> bool {
        match (value, &self.pattern) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(value), Some(pattern)) => pattern.is_match(value),
        }
    }
}

/// What a hook does when its plugin fails (trap, deadline, memory cap, error value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Carry on without it: a detector's fields stay undecided, an injector injects nothing.
    FailOpen,
    /// The request fails with a 5xx naming the plugin.
    FailClosed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Warm instances are reused across requests (fast).
    Pooled,
    /// A fresh instance for every call: no state survives between requests.
    PerRequest,
}

#[derive(Clone, Copy)]
enum Hook {
    Detector,
    Injector,
    Adapter,
}

pub fn validate(
    raw: RawPlugins,
    base_dir: &Path,
    user_id_mappings_json: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<PluginsConfig, ConfigError> {
    let directory = match lookup(DIRECTORY_VAR).filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => base_dir.join(raw.directory.as_deref().unwrap_or(DEFAULT_DIRECTORY)),
    };
    let defaults = Defaults {
        directory: &directory,
        timeout_ms: raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        memory_mb: raw.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
        user_id_mappings_json,
    };
    let detectors = match raw.detectors {
        Some(list) => list,
        None => DEFAULT_DETECTORS.iter().map(|name| RawPlugin::named(name)).collect(),
    };
    let detectors = specs(detectors, "plugins.detectors", Hook::Detector, &defaults)?;
    let injector = match raw.memory_injector {
        Some(raw) => spec(raw, "plugins.memory_injector", Hook::Injector, &defaults)?,
        None => spec(RawPlugin::named(DEFAULT_INJECTOR), "plugins.memory_injector", Hook::Injector, &defaults)?,
    };
    let adapters = match raw.provider_adapters {
        Some(list) => list,
        None => DEFAULT_ADAPTERS
            .iter()
            .map(|name| RawPlugin {
                providers: Some(
                    Provider::all().filter(|p| default_adapter(p) == *name).map(|p| p.name.to_owned()).collect(),
                ),
                ..RawPlugin::named(name)
            })
            .collect(),
    };
    let provider_adapters = specs(adapters, "plugins.provider_adapters", Hook::Adapter, &defaults)?;
    // Compiled plugins are cached beside them; without a plugin folder (the built-in
    // plugins alone), in the user's cache rather than a folder made beside the config.
    let cache_directory = match raw.cache_directory {
        Some(dir) => Some(base_dir.join(dir)),
        None if directory.is_dir() => Some(directory.join(".cache")),
        None => lookup("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| lookup("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .map(|cache| cache.join("memory-proxy/plugin-cache")),
    };
    Ok(PluginsConfig {
        cache_directory,
        directory,
        max_failures: raw.max_failures.unwrap_or(DEFAULT_MAX_FAILURES).max(1),
        detectors,
        memory_injector: injector,
        provider_adapters,
    })
}

struct Defaults<'a> {
    directory: &'a Path,
    timeout_ms: u64,
    memory_mb: u64,
    user_id_mappings_json: &'a str,
}

impl RawPlugin {
    fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            file: None,
            enabled: None,
            config: None,
            timeout_ms: None,
            memory_mb: None,
            on_error: None,
            isolation: None,
            providers: None,
            match_headers: None,
        }
    }
}

fn specs(list: Vec<RawPlugin>, at: &str, hook: Hook, defaults: &Defaults<'_>) -> Result<Vec<PluginSpec>, ConfigError> {
    let mut out = Vec::new();
    for (i, raw) in list.into_iter().enumerate() {
        if let Some(spec) = spec(raw, &format!("{at}[{i}]"), hook, defaults)? {
            if out.iter().any(|s: &PluginSpec| s.name == spec.name) {
                return Err(invalid(format!("{at}[{i}].name"), format!("`{}` is listed twice", spec.name)));
            }
            out.push(spec);
        }
    }
    Ok(out)
}

/// A validated plugin entry, or None when it is disabled.
fn spec(raw: RawPlugin, at: &str, hook: Hook, defaults: &Defaults<'_>) -> Result<Option<PluginSpec>, ConfigError> {
    if raw.name.trim().is_empty() {
        return Err(invalid(format!("{at}.name"), "is empty"));
    }
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let file = raw.file.clone().unwrap_or_else(|| format!("{}.wasm", raw.name.replace('-', "_")));
    let config_json = match raw.config {
        Some(value) => serde_json::to_string(&value).map_err(|e| invalid(format!("{at}.config"), e.to_string()))?,
        None if raw.name == HEADER_DETECTOR => defaults.user_id_mappings_json.to_owned(),
        None => "{}".to_owned(),
    };
    let on_error = match (raw.on_error.as_deref(), hook) {
        (None, Hook::Adapter) | (Some("fail-closed"), _) => OnError::FailClosed,
        (None, _) | (Some("fail-open"), Hook::Detector | Hook::Injector) => OnError::FailOpen,
        (Some("fail-open"), Hook::Adapter) => {
            return Err(invalid(
                format!("{at}.on_error"),
                "a provider adapter always fails closed: without it the request cannot be sent",
            ));
        }
        (Some(other), _) => {
            return Err(invalid(format!("{at}.on_error"), format!("`{other}` is not fail-open or fail-closed")));
        }
    };
    let isolation = match raw.isolation.as_deref() {
        None | Some("pooled") => Isolation::Pooled,
        Some("per-request") => Isolation::PerRequest,
        Some(other) => {
            return Err(invalid(format!("{at}.isolation"), format!("`{other}` is not pooled or per-request")));
        }
    };
    let providers = raw.providers.unwrap_or_default();
    match hook {
        Hook::Adapter if providers.is_empty() => {
            return Err(invalid(format!("{at}.providers"), "a provider adapter needs the providers it serves"));
        }
        Hook::Detector | Hook::Injector if !providers.is_empty() => {
            return Err(invalid(format!("{at}.providers"), "only provider adapters serve providers"));
        }
        _ => {}
    }
    for (i, provider) in providers.iter().enumerate() {
        if crate::core::provider::Provider::named(provider).is_none() {
            return Err(invalid(format!("{at}.providers[{i}]"), format!("unknown provider `{provider}`")));
        }
    }
    let match_headers = match (raw.match_headers, hook) {
        (Some(_), Hook::Injector | Hook::Adapter) => {
            return Err(invalid(format!("{at}.match_headers"), "only detectors can be limited to matching headers"));
        }
        (Some(map), Hook::Detector) => map.into_iter().collect(),
        (None, Hook::Detector) => DEFAULT_MATCHES
            .iter()
            .find(|(name, _)| *name == raw.name)
            .map(|(_, matches)| matches.iter().map(|(h, p)| ((*h).to_owned(), (*p).to_owned())).collect())
            .unwrap_or_default(),
        (None, _) => Vec::new(),
    };
    let match_headers = match_headers
        .into_iter()
        .map(|(header, pattern)| {
            let path = format!("{at}.match_headers.{header}");
            let name =
                http::HeaderName::try_from(header.to_ascii_lowercase()).map_err(|e| invalid(&path, e.to_string()))?;
            let pattern = (!pattern.is_empty())
                .then(|| regex::Regex::new(&pattern).map_err(|e| invalid(&path, e.to_string())))
                .transpose()?;
            Ok(HeaderMatch { header: name, pattern })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    let timeout_ms = raw.timeout_ms.unwrap_or(defaults.timeout_ms);
    let memory_mb = raw.memory_mb.unwrap_or(defaults.memory_mb);
    if timeout_ms == 0 || timeout_ms > 10_000 {
        return Err(invalid(format!("{at}.timeout_ms"), "must be between 1 and 10000"));
    }
    if memory_mb == 0 || memory_mb > 256 {
        return Err(invalid(format!("{at}.memory_mb"), "must be between 1 and 256"));
    }
    Ok(Some(PluginSpec {
        name: raw.name,
        file: defaults.directory.join(file),
        config_json,
        timeout: Duration::from_millis(timeout_ms),
        memory_bytes: usize::try_from(memory_mb << 20).unwrap_or(usize::MAX),
        on_error,
        isolation,
        providers,
        match_headers,
    }))
}
