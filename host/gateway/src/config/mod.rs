//! config.yaml, in two phases: the raw LiteLLM-compatible document ([`raw`]) is read
//! strictly (errors name their path, unknown keys are collected), then validated into
//! the runtime [`Config`]. A deployment that cannot work (its key's environment
//! variable is missing) is kept but disabled, so the gateway still starts and the
//! error reaches whoever asks for that model.

pub mod env;
pub mod plugins;
mod raw;
mod yaml11;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use serde::de::DeserializeOwned;

use crate::core::provider::{Endpoint, KeyHeader, Provider, bedrock};
use crate::core::secret::Secret;
use raw::{RawConfig, RawModel};

/// Used when `general_settings.max_request_size_mb` is not set: big enough for
/// Claude Code's largest prompts.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Model requests in flight at most by default: far above what one team's agents
/// send, low enough that a flood is refused before it exhausts memory or sockets.
pub const DEFAULT_MAX_PARALLEL_REQUESTS: usize = 2048;
/// Time to send the largest default body (32 MiB) at about 0.5 MB/s.
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_NUM_RETRIES: u32 = 2;
const MASTER_KEY_VARS: [&str; 2] = ["MEMORY_PROXY_MASTER_KEY", "LITELLM_MASTER_KEY"];

/// The validated configuration the gateway runs on.
#[derive(Debug)]
pub struct Config {
    pub deployments: Vec<DeploymentConfig>,
    /// Model group -> the groups to try, in order, when it fails.
    pub fallbacks: BTreeMap<String, Vec<String>>,
    /// Model group -> the groups to try when a prompt is too long for its context window.
    pub context_window_fallbacks: BTreeMap<String, Vec<String>>,
    /// Other names for models (`router_settings.model_group_alias`).
    pub aliases: BTreeMap<String, Alias>,
    pub num_retries: u32,
    pub drop_params: bool,
    pub json_logs: bool,
    pub verbose: bool,
    pub master_key: Option<Secret>,
    /// The embedded database file (from `general_settings.database_url`).
    pub database_path: std::path::PathBuf,
    pub max_request_bytes: usize,
    /// Model requests in flight at most (`general_settings.global_max_parallel_requests`).
    pub max_parallel_requests: usize,
    /// How long a client may take to send its body.
    pub request_body_timeout: Duration,
    /// How long the request log keeps a request (None: for ever); rollups stay.
    pub request_log_retention: Option<Duration>,
    /// Browser origins allowed by CORS (none: browsers may not call cross-origin).
    pub allowed_origins: Vec<HeaderValue>,
    /// Request records go to the databank (LiteLLM's `disable_spend_logs` turns it off).
    pub record_requests: bool,
    pub analytics_queue_size: usize,
    pub user_id_mappings: UserIdMappings,
    pub plugins: plugins::PluginsConfig,
    /// Long-term memory; None when it is off.
    pub memory: Option<MemoryConfig>,
}

/// The `memory` section: recall into prompts and capture of turns, with the local store.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryConfig {
    /// Memories recalled per request at most (0: none are recalled).
    pub recall_limit: usize,
    /// Tokens the injected memories may take at most.
    pub token_budget: u32,
    /// Each finished turn is remembered.
    pub capture: bool,
    pub backend: MemoryBackend,
    /// What the local store embeds memories with, to recall them by meaning too.
    pub embedding_model: EmbeddingModel,
    /// The model group that distils finished turns into facts (the local store); None:
    /// the cleaned turn is stored as it is.
    pub extraction_model: Option<String>,
    /// How much each scope of the local store keeps.
    pub retention: Retention,
}

/// A name that stands for a model (`router_settings.model_group_alias`).
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub model: String,
    /// Served, but not listed by `/v1/models`.
    pub hidden: bool,
}

/// `memory.embedding_model`.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingModel {
    /// The embedded all-MiniLM-L6-v2.
    Local,
    /// An embedding model of `model_list` (its `model_name`), through the gateway.
    Deployment(String),
    /// None: recall by words only.
    Off,
}

/// Per scope of the local store: at most this many memories, none older than this
/// (the oldest go first); None: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Retention {
    pub max_memories: Option<usize>,
    pub max_age: Option<Duration>,
}

/// Where memories live.
#[derive(Debug, Clone, PartialEq)]
pub enum MemoryBackend {
    /// The gateway's own database.
    Local,
    /// Supermemory's REST API, one container tag per scope.
    Supermemory(SupermemoryConfig),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SupermemoryConfig {
    /// Without a trailing slash, e.g. `https://api.supermemory.ai`.
    pub base_url: String,
    pub api_key: Secret,
    /// How long a search or a write may take before the request goes on without it.
    pub timeout: Duration,
}

/// A deployment behind Supermemory's router (`api_base: <Supermemory>/v3/<provider URL>`).
#[derive(Debug, Clone, PartialEq)]
pub struct SupermemoryRouter {
    /// Sent as `x-supermemory-api-key`; None when `extra_headers` already sends it.
    pub api_key: Option<Secret>,
}

const SUPERMEMORY_BASE_URL: &str = "https://api.supermemory.ai";
const SUPERMEMORY_KEY_VAR: &str = "SUPERMEMORY_API_KEY";
const DEFAULT_SUPERMEMORY_TIMEOUT: Duration = Duration::from_millis(1_500);

const DEFAULT_RECALL_LIMIT: usize = 5;
/// A hundred years: beyond it, "forever" is leaving the limit out.
const MAX_RETENTION_DAYS: u64 = 36_500;
const DEFAULT_MEMORY_TOKENS: u32 = 1_000;

/// One entry of `model_list`: a way to serve the model group `model_name`.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// `model_info.id`, or the entry's position (`model_list[3]`).
    pub id: String,
    /// The name clients ask for; may hold one `*` wildcard.
    pub model_name: String,
    pub provider: &'static Provider,
    /// The name sent upstream; a `*` takes what the client's `*` matched.
    pub upstream_model: String,
    pub base_url: String,
    /// Added to every upstream URL (Azure's `api-version=...`).
    pub url_query: Option<String>,
    pub api_key: Option<Secret>,
    /// How `api_key` is sent (the provider's way, or a bearer token for an Azure AD token).
    pub key_header: KeyHeader,
    /// Bedrock: the credentials requests are signed with (None with a Bedrock API key).
    pub aws: Option<bedrock::AwsCredentials>,
    pub timeout: Duration,
    pub stream_timeout: Duration,
    /// How often one request may retry this deployment (the group's `num_retries`
    /// still bounds the whole request).
    pub max_retries: Option<u32>,
    pub weight: f64,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub extra_headers: Vec<(HeaderName, HeaderValue)>,
    /// The client's own `Authorization` / `x-api-key` go upstream (a Claude Code
    /// subscription, say); the gateway's key then travels in `x-memory-proxy-key`.
    pub forward_client_auth: bool,
    /// Request parameters from `litellm_params` (`temperature`, `thinking`, ...), in
    /// LiteLLM's (OpenAI's) names; the client's own values win.
    pub request_defaults: serde_json::Map<String, serde_json::Value>,
    /// `litellm_params.drop_params`: this deployment's own setting, over the global one.
    pub drop_params: Option<bool>,
    /// Request parameters never sent to this deployment.
    pub additional_drop_params: Vec<String>,
    pub costs: Costs,
    /// The deployment reaches its provider through Supermemory's router, which does
    /// memory itself: the gateway adds the router's headers and none of its own memory.
    pub supermemory_router: Option<SupermemoryRouter>,
    /// Why this deployment cannot serve, when it cannot.
    pub disabled: Option<String>,
}

/// Prices in USD per token, from `model_info` (or `litellm_params`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Costs {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    pub reasoning: Option<f64>,
}

/// The seed's memory routing: which user a request belongs to, from its headers.
/// Its `header_patterns` are the header-detector plugin's to apply (they reach it as
/// its config); here they are only checked, so a bad one fails the start.
#[derive(Debug, Clone)]
pub struct UserIdMappings {
    /// A header that names the user outright (default `x-memory-user-id`).
    pub custom_header: HeaderName,
    pub default_user_id: String,
}

/// A config that could not be used, with the path of the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("not valid YAML: {0}")]
    Syntax(String),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// Every problem of one config, one per line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// One problem as itself, more as [`ConfigError::Several`].
    fn several(mut problems: Vec<ConfigError>) -> Self {
        match problems.len() {
            1 => problems.remove(0),
            _ => Self::Several(problems),
        }
    }
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { path: path.into(), message: message.into() }
}

/// A validated config and what the operator should hear about it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and validates a config file, resolving `os.environ/` from the process
    /// environment.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let base_dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Self::parse(&text, &|var| std::env::var(var).ok(), base_dir)
    }

    /// Validates config text; `lookup` resolves environment variables and relative
    /// paths are relative to `base_dir`.
    pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>, base_dir: &Path) -> Result<Loaded, ConfigError> {
        let mut document: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        if document.is_null() {
            document = serde_yaml::Value::Mapping(Default::default());
        }
        // Before the variables are resolved: their values are strings as they are.
        yaml11::normalize(&mut document);
        let missing = env::resolve(&mut document, lookup);
        let mut ignored = Vec::new();
        let mut raw: RawConfig = deserialize(document, "", &mut ignored)?;
        // Each with its name, which an entry that cannot be read still reports under.
        let models: Vec<(String, Result<RawModel, ConfigError>)> = std::mem::take(&mut raw.model_list)
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let name = entry["model_name"].as_str().unwrap_or_default().to_owned();
                let model = deserialize::<RawModel>(entry, &format!("model_list[{index}]"), &mut ignored);
                let model = model.map(|mut model| {
                    // LiteLLM's own settings among the request parameters go nowhere.
                    model.litellm_params.other.retain(|key, _| {
                        let setting = is_litellm_setting(key);
                        if setting {
                            ignored.push(format!("model_list[{index}].litellm_params.{key}"));
                        }
                        !setting
                    });
                    model
                });
                (name, model)
            })
            .collect();
        let mut warnings = Vec::new();
        if !ignored.is_empty() {
            warnings.push(format!("config keys not implemented, ignored: {}", ignored.join(", ")));
        }
        // A variable of a key the gateway ignores matters to nobody here.
        let within = |path: &str, key: &str| {
            path.strip_prefix(key).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        let (unused, missing): (Vec<_>, Vec<_>) =
            missing.into_iter().partition(|m| ignored.iter().any(|key| within(&m.path, key)));
        for m in unused {
            warnings.push(format!("environment variable {} ({}, a key the gateway ignores) is not set", m.var, m.path));
        }
        let config = validate(raw, models, &missing, lookup, base_dir, &mut warnings)?;
        Ok(Loaded { config, warnings })
    }
}

/// Deserializes strictly for the keys we know, collecting the paths of the others;
/// paths are below `base` (the document's root when empty).
fn deserialize<T: DeserializeOwned>(
    document: serde_yaml::Value,
    base: &str,
    ignored: &mut Vec<String>,
) -> Result<T, ConfigError> {
    let below = |path: String| match (base.is_empty(), path.is_empty()) {
        (true, _) => path,
        (false, true) => base.to_owned(),
        (false, false) => format!("{base}.{path}"),
    };
    let mut record = |path: serde_ignored::Path<'_>| ignored.push(below(ignored_path(&path)));
    let with_ignored = serde_ignored::Deserializer::new(document, &mut record);
    serde_path_to_error::deserialize(with_ignored).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let path = below(if path == "." { String::new() } else { path });
        invalid(if path.is_empty() { "config".to_owned() } else { path }, message)
    })
}

/// `model_list[2].litellm_params.foo`, the notation of every other config message.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let parent = ignored_path(parent);
            if parent.is_empty() { key.clone() } else { format!("{parent}.{key}") }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => ignored_path(parent),
    }
}

fn seconds(value: Option<f64>, path: &str) -> Result<Option<Duration>, ConfigError> {
    value
        .map(|s| Duration::try_from_secs_f64(s).map_err(|_| invalid(path, format!("`{s}` is not a number of seconds"))))
        .transpose()
}

/// Keeps what `result` holds, or records its problem and gives None: every problem of
/// a config is reported at once.
fn noted<T>(problems: &mut Vec<ConfigError>, result: Result<T, ConfigError>) -> Option<T> {
    result.map_err(|e| problems.push(e)).ok()
}

fn validate(
    raw: RawConfig,
    models: Vec<(String, Result<RawModel, ConfigError>)>,
    missing: &[env::MissingVar],
    lookup: &dyn Fn(&str) -> Option<String>,
    base_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    // An unset variable disables the deployment that uses it; anywhere else it is an
    // error (a master key that silently vanished would open the gateway).
    for outside in missing.iter().filter(|m| !m.path.starts_with("model_list[")) {
        problems.push(invalid(&outside.path, format!("environment variable {} is not set", outside.var)));
    }
    let litellm = &raw.litellm_settings;
    let router = &raw.router_settings;
    let router_timeout = noted(&mut problems, seconds(router.timeout, "router_settings.timeout")).flatten();
    let litellm_timeout =
        noted(&mut problems, seconds(litellm.request_timeout, "litellm_settings.request_timeout")).flatten();
    let default_timeout = router_timeout.or(litellm_timeout).unwrap_or(DEFAULT_TIMEOUT);

    // A deployment that cannot work is kept, disabled with its reason: the rest serve,
    // and whoever asks for it hears why.
    let deployments: Vec<DeploymentConfig> = models
        .into_iter()
        .enumerate()
        .map(|(index, (name, model))| match model {
            Ok(model) => {
                let id = model.model_info.id.clone();
                deployment(index, model, missing, lookup, default_timeout)
                    .unwrap_or_else(|error| unusable(index, name, id, default_timeout, error))
            }
            Err(error) => unusable(index, name, None, default_timeout, error),
        })
        .collect();
    let deployments = mark_supermemory_routers(deployments, raw.memory.as_ref(), lookup);
    for d in &deployments {
        if let Some(reason) = &d.disabled {
            warnings.push(format!("deployment {} of model `{}` is disabled: {reason}", d.id, d.model_name));
        }
    }

    // A model name a deployment serves: its own, or one its wildcard matches.
    let served =
        |name: &str| deployments.iter().any(|d| d.model_name == name || wildcard_match(&d.model_name, name).is_some());
    let mut fallback_maps = [BTreeMap::new(), BTreeMap::new()];
    for (setting, list, kind) in [
        ("litellm_settings.fallbacks", &litellm.fallbacks, 0),
        ("router_settings.fallbacks", &router.fallbacks, 0),
        ("litellm_settings.context_window_fallbacks", &litellm.context_window_fallbacks, 1),
        ("router_settings.context_window_fallbacks", &router.context_window_fallbacks, 1),
    ] {
        for (i, entry) in list.iter().flatten().enumerate() {
            for (from, to) in entry {
                let unknown: Vec<&String> = std::iter::once(from).chain(to).filter(|name| !served(name)).collect();
                for name in &unknown {
                    problems.push(invalid(
                        format!("{setting}[{i}]"),
                        format!("`{name}` is not a model_name in model_list, nor served by a wildcard one"),
                    ));
                }
                if unknown.is_empty() {
                    fallback_maps[kind].insert(from.clone(), to.clone());
                }
            }
        }
    }
    let [fallbacks, context_window_fallbacks] = fallback_maps;

    let mut aliases = BTreeMap::new();
    for (alias, target) in &router.model_group_alias {
        let (model, hidden) = match target {
            raw::RawAlias::Name(model) => (model.clone(), false),
            raw::RawAlias::Detailed { model, hidden } => (model.clone(), *hidden),
        };
        let path = format!("router_settings.model_group_alias.{alias}");
        if !served(&model) {
            problems.push(invalid(
                path,
                format!("`{model}` is not a model_name in model_list, nor served by a wildcard one"),
            ));
            continue;
        }
        if deployments.iter().any(|d| &d.model_name == alias) {
            warnings.push(format!("{path}: `{alias}` is a model_name of its own, which wins over the alias"));
            continue;
        }
        aliases.insert(alias.clone(), Alias { model, hidden });
    }

    if let Some(strategy) = router.routing_strategy.as_deref().filter(|s| *s != "simple-shuffle") {
        warnings
            .push(format!("router_settings.routing_strategy `{strategy}` is not implemented; using simple-shuffle"));
    }

    // The header detector's config, unless the plugins section gives it another.
    let user_id_mappings_json = serde_json::to_string(&raw.user_id_mappings).unwrap_or_else(|_| "{}".to_owned());
    let general = raw.general_settings;
    let master_key = match general.master_key {
        // Its unset variable is the problem already told.
        Some(_) if missing.iter().any(|m| m.path == "general_settings.master_key") => None,
        Some(key) if key.is_empty() => {
            problems.push(invalid("general_settings.master_key", "is empty"));
            None
        }
        Some(key) => Some(Secret::new(key)),
        None => MASTER_KEY_VARS.iter().find_map(|var| lookup(var)).filter(|k| !k.is_empty()).map(Secret::new),
    };
    let (database_path, database_warning) = resolve_database_path(general.database_url.as_deref(), base_dir);
    warnings.extend(database_warning);
    let mut allowed_origins = Vec::new();
    for (i, origin) in general.allowed_origins.iter().enumerate() {
        let origin = HeaderValue::try_from(origin.trim_end_matches('/'))
            .map_err(|e| invalid(format!("general_settings.allowed_origins[{i}]"), e.to_string()));
        allowed_origins.extend(noted(&mut problems, origin));
    }
    let max_request_bytes = match general.max_request_size_mb {
        None => DEFAULT_MAX_REQUEST_BYTES,
        Some(mb) if mb.is_finite() && mb > 0.0 => (mb * 1024.0 * 1024.0) as usize,
        Some(mb) => {
            problems.push(invalid("general_settings.max_request_size_mb", format!("`{mb}` is not a positive size")));
            DEFAULT_MAX_REQUEST_BYTES
        }
    };

    let max_parallel_requests = match general.global_max_parallel_requests {
        None => DEFAULT_MAX_PARALLEL_REQUESTS,
        Some(0) => {
            problems.push(invalid("general_settings.global_max_parallel_requests", "must be above 0"));
            DEFAULT_MAX_PARALLEL_REQUESTS
        }
        Some(limit) => limit,
    };

    let request_body_timeout =
        noted(&mut problems, seconds(general.request_body_timeout, "general_settings.request_body_timeout"))
            .flatten()
            .unwrap_or(DEFAULT_BODY_TIMEOUT);

    let request_log_retention = general.maximum_spend_logs_retention_period.as_deref().and_then(|period| {
        let parsed = crate::core::time::parse_duration(period)
            .map_err(|e| invalid("general_settings.maximum_spend_logs_retention_period", e));
        noted(&mut problems, parsed)
    });

    let memory = raw.memory.map(|section| memory(section, &deployments, lookup)).transpose();
    let memory = noted(&mut problems, memory).flatten().flatten();
    let plugins = noted(&mut problems, plugins::validate(raw.plugins, base_dir, &user_id_mappings_json, lookup));
    let user_id_mappings = noted(&mut problems, user_id_mappings(raw.user_id_mappings));
    let (Some(plugins), Some(user_id_mappings)) = (plugins, user_id_mappings) else {
        return Err(ConfigError::several(problems));
    };
    if !problems.is_empty() {
        return Err(ConfigError::several(problems));
    }
    Ok(Config {
        deployments,
        fallbacks,
        context_window_fallbacks,
        aliases,
        num_retries: router.num_retries.or(litellm.num_retries).unwrap_or(DEFAULT_NUM_RETRIES),
        drop_params: litellm.drop_params,
        json_logs: litellm.json_logs,
        verbose: litellm.set_verbose,
        master_key,
        database_path,
        max_request_bytes,
        max_parallel_requests,
        request_body_timeout,
        request_log_retention,
        allowed_origins,
        record_requests: !general.disable_spend_logs,
        analytics_queue_size: general.analytics_queue_size.unwrap_or(DEFAULT_ANALYTICS_QUEUE).max(1),
        plugins,
        user_id_mappings,
        memory,
    })
}

fn memory(
    raw: raw::RawMemory,
    deployments: &[DeploymentConfig],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<MemoryConfig>, ConfigError> {
    let backend = match raw.backend.as_deref().unwrap_or("local") {
        "local" => MemoryBackend::Local,
        "supermemory" => MemoryBackend::Supermemory(supermemory(raw.supermemory.unwrap_or_default(), lookup)?),
        "none" => return Ok(None),
        other => {
            return Err(invalid(
                "memory.backend",
                format!("`{other}` is not a memory backend (this build has `local`, `supermemory` and `none`)"),
            ));
        }
    };
    let recall_limit = raw.recall_limit.unwrap_or(DEFAULT_RECALL_LIMIT);
    if recall_limit > 100 {
        return Err(invalid("memory.recall_limit", "must be between 0 and 100"));
    }
    if let Some(model) = &raw.extraction_model
        && !deployments.iter().any(|d| &d.model_name == model)
    {
        return Err(invalid("memory.extraction_model", format!("`{model}` is not a model_name in model_list")));
    }
    let retention = raw.retention.unwrap_or_default();
    let retention = Retention {
        max_memories: match retention.max_memories {
            Some(0) => return Err(invalid("memory.retention.max_memories", "must be above 0")),
            limit => limit,
        },
        max_age: match retention.max_age_days {
            Some(days) if !(1..=MAX_RETENTION_DAYS).contains(&days) => {
                return Err(invalid(
                    "memory.retention.max_age_days",
                    format!("must be 1 to {MAX_RETENTION_DAYS} (leave it out to keep memories forever)"),
                ));
            }
            days => days.map(|days| Duration::from_secs(days * 86_400)),
        },
    };
    Ok(Some(MemoryConfig {
        recall_limit,
        token_budget: raw.token_budget.unwrap_or(DEFAULT_MEMORY_TOKENS),
        capture: raw.capture.unwrap_or(true),
        backend,
        embedding_model: match raw.embedding_model.as_deref().unwrap_or("local") {
            "local" => EmbeddingModel::Local,
            "none" => EmbeddingModel::Off,
            name if deployments.iter().any(|d| d.model_name == name) => EmbeddingModel::Deployment(name.to_owned()),
            other => {
                return Err(invalid(
                    "memory.embedding_model",
                    format!(
                        "`{other}` is neither `local` (the embedded all-MiniLM-L6-v2), `none`, nor a model_name in model_list"
                    ),
                ));
            }
        },
        extraction_model: raw.extraction_model,
        retention,
    }))
}

fn supermemory(
    raw: raw::RawSupermemory,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<SupermemoryConfig, ConfigError> {
    let api_key =
        raw.api_key.or_else(|| lookup(SUPERMEMORY_KEY_VAR)).filter(|key| !key.is_empty()).ok_or_else(|| {
            invalid(
                "memory.supermemory.api_key",
                format!("is required for the supermemory backend (or set {SUPERMEMORY_KEY_VAR})"),
            )
        })?;
    let base_url = raw.base_url.as_deref().unwrap_or(SUPERMEMORY_BASE_URL).trim().trim_end_matches('/').to_owned();
    let parsed = reqwest::Url::parse(&base_url)
        .map_err(|e| invalid("memory.supermemory.base_url", format!("`{base_url}` is not a valid URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("memory.supermemory.base_url", format!("`{base_url}` is not an http(s) URL")));
    }
    let timeout = match raw.timeout_ms {
        None => DEFAULT_SUPERMEMORY_TIMEOUT,
        Some(0) => return Err(invalid("memory.supermemory.timeout_ms", "must be above 0")),
        Some(ms) => Duration::from_millis(ms),
    };
    Ok(SupermemoryConfig { base_url, api_key: Secret::new(api_key), timeout })
}

fn deployment(
    index: usize,
    model: RawModel,
    missing: &[env::MissingVar],
    lookup: &dyn Fn(&str) -> Option<String>,
    default_timeout: Duration,
) -> Result<DeploymentConfig, ConfigError> {
    let at = |key: &str| format!("model_list[{index}].{key}");
    let params = model.litellm_params;
    if model.model_name.trim().is_empty() {
        return Err(invalid(at("model_name"), "is empty"));
    }
    let (provider, upstream_model) =
        Provider::resolve(&params.model, params.custom_llm_provider.as_deref(), params.api_base.as_deref())
            .map_err(|message| invalid(at("litellm_params.model"), message))?;
    let from_env = |vars: &[&str]| vars.iter().find_map(|var| lookup(var).filter(|v| !v.is_empty()));
    let prefix = format!("model_list[{index}].");
    let mut disabled = missing
        .iter()
        .find(|m| m.path.starts_with(&prefix))
        .map(|m| format!("environment variable {} ({}) is not set", m.var, m.path));

    let mut upstream_model = upstream_model.to_owned();
    let mut aws = None;
    let mut api_base = params.api_base.clone().or_else(|| provider.base_env.and_then(|var| from_env(&[var])));
    let mut api_key = params.api_key.clone().filter(|k| !k.is_empty()).map(Secret::new);
    let mut key_header = provider.key_header;
    let mut url_query = None;
    match provider.endpoint {
        Endpoint::Plain => {}
        Endpoint::AzureDeployment => {
            let version = params.api_version.clone().or_else(|| from_env(&["AZURE_API_VERSION"]));
            url_query = Some(format!("api-version={}", version.as_deref().unwrap_or(AZURE_API_VERSION)));
            if let Some(token) = params.azure_ad_token.clone().or_else(|| from_env(&["AZURE_AD_TOKEN"])) {
                api_key = Some(Secret::new(token));
                key_header = KeyHeader::Bearer;
            }
        }
        Endpoint::Bedrock => {
            upstream_model = bedrock_model(&upstream_model).map_err(|m| invalid(at("litellm_params.model"), m))?;
            let region = params
                .aws_region_name
                .clone()
                .or_else(|| from_env(&["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"]))
                .unwrap_or_else(|| BEDROCK_DEFAULT_REGION.to_owned());
            api_base = params
                .api_base
                .clone()
                .or(params.aws_bedrock_runtime_endpoint.clone())
                .or_else(|| from_env(&["AWS_BEDROCK_RUNTIME_ENDPOINT"]))
                .or_else(|| Some(bedrock::runtime_endpoint(&region)));
            // A Bedrock API key is a bearer token; without one, AWS credentials sign.
            api_key = api_key.or_else(|| from_env(&["AWS_BEARER_TOKEN_BEDROCK"]).map(Secret::new));
            if api_key.is_none() {
                match bedrock_credentials(&params, region, &from_env) {
                    Ok(credentials) => aws = Some(credentials),
                    Err(reason) => {
                        disabled.get_or_insert(reason);
                    }
                }
            }
        }
    }
    let base_url = provider
        .base_url(api_base.as_deref(), &upstream_model)
        .map_err(|message| invalid(at("litellm_params.api_base"), message))?;

    if api_key.is_none() && !params.forward_client_auth && provider.needs_key(api_base.as_deref()) {
        match from_env(provider.key_env) {
            Some(key) => api_key = Some(Secret::new(key)),
            None => {
                disabled.get_or_insert_with(|| {
                    format!(
                        "no `api_key` is configured and environment variable {} is not set",
                        provider.key_env.join(" / ")
                    )
                });
            }
        }
    }

    let organization = params.organization.map(|o| ("OpenAI-Organization".to_owned(), o));
    let mut extra_headers = Vec::new();
    for (name, value) in params.extra_headers.into_iter().chain(organization) {
        let path = at(&format!("litellm_params.extra_headers.{name}"));
        let name = HeaderName::try_from(name.as_str()).map_err(|e| invalid(&path, e.to_string()))?;
        let value = HeaderValue::try_from(value.as_str()).map_err(|e| invalid(&path, e.to_string()))?;
        extra_headers.push((name, value));
    }

    let mut request_defaults = serde_json::Map::new();
    for (key, value) in params.other {
        let value = serde_json::to_value(value)
            .map_err(|e| invalid(at(&format!("litellm_params.{key}")), format!("cannot be sent upstream: {e}")))?;
        request_defaults.insert(key, value);
    }

    let timeout = seconds(params.timeout, &at("litellm_params.timeout"))?.unwrap_or(default_timeout);
    let rpm = params.rpm.or(model.rpm);
    let tpm = params.tpm.or(model.tpm);
    // simple-shuffle weighs deployments by `weight`, else by rpm, else by tpm.
    let weight = params.weight.or(rpm.map(|r| r as f64)).or(tpm.map(|t| t as f64)).unwrap_or(1.0);
    if !(weight.is_finite() && weight > 0.0) {
        return Err(invalid(at("litellm_params.weight"), format!("`{weight}` is not a positive weight")));
    }
    let info = model.model_info;
    Ok(DeploymentConfig {
        id: info.id.clone().unwrap_or_else(|| format!("model_list[{index}]")),
        model_name: model.model_name,
        provider,
        upstream_model,
        base_url,
        url_query,
        api_key,
        key_header,
        aws,
        timeout,
        stream_timeout: seconds(params.stream_timeout, &at("litellm_params.stream_timeout"))?.unwrap_or(timeout),
        max_retries: params.max_retries,
        weight,
        rpm,
        tpm,
        extra_headers,
        forward_client_auth: params.forward_client_auth,
        request_defaults,
        drop_params: params.drop_params,
        additional_drop_params: params.additional_drop_params,
        costs: Costs {
            input: info.input_cost_per_token.or(params.input_cost_per_token),
            output: info.output_cost_per_token.or(params.output_cost_per_token),
            cache_read: info.cache_read_input_token_cost,
            cache_write: info.cache_creation_input_token_cost,
            reasoning: info.output_cost_per_reasoning_token,
        },
        supermemory_router: None,
        disabled,
    })
}

/// LiteLLM's default `api-version` for Azure OpenAI (v1.99).
const AZURE_API_VERSION: &str = "2025-02-01-preview";
/// LiteLLM's region when none is configured.
const BEDROCK_DEFAULT_REGION: &str = "us-west-2";

/// The Bedrock model id InvokeModel takes: LiteLLM's route prefixes (`invoke/`,
/// `converse/`) dropped. Only Anthropic's models speak the Messages body.
fn bedrock_model(model: &str) -> Result<String, String> {
    let id = model.strip_prefix("invoke/").or_else(|| model.strip_prefix("converse/")).unwrap_or(model);
    if !id.contains("anthropic.") && !id.contains("anthropic/") && !id.starts_with("arn:") {
        return Err(format!(
            "Bedrock model `{id}` is not one of Anthropic's; this build serves Bedrock's Anthropic models (InvokeModel), not the Converse API other models need"
        ));
    }
    Ok(id.to_owned())
}

/// SigV4 credentials from `aws_*` params or the usual environment variables.
fn bedrock_credentials(
    params: &raw::RawLitellmParams,
    region: String,
    from_env: &dyn Fn(&[&str]) -> Option<String>,
) -> Result<bedrock::AwsCredentials, String> {
    if params.aws_role_name.is_some() || params.aws_profile_name.is_some() {
        return Err("aws_role_name and aws_profile_name (assumed roles, profiles) are not supported: give aws_access_key_id and aws_secret_access_key".to_owned());
    }
    let access_key_id = params.aws_access_key_id.clone().or_else(|| from_env(&["AWS_ACCESS_KEY_ID"]));
    let secret = params.aws_secret_access_key.clone().or_else(|| from_env(&["AWS_SECRET_ACCESS_KEY"]));
    let (Some(access_key_id), Some(secret)) = (access_key_id, secret) else {
        return Err("no AWS credentials: set aws_access_key_id and aws_secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or a Bedrock API key (api_key or AWS_BEARER_TOKEN_BEDROCK)".to_owned());
    };
    let session_token = params.aws_session_token.clone().or_else(|| from_env(&["AWS_SESSION_TOKEN"]));
    Ok(bedrock::AwsCredentials {
        access_key_id,
        secret_access_key: Secret::new(secret),
        session_token: session_token.map(Secret::new),
        region,
    })
}

/// Keys of `litellm_params` that are LiteLLM's own settings, not request parameters:
/// reported as ignored rather than sent upstream.
fn is_litellm_setting(key: &str) -> bool {
    const SETTINGS: &[&str] = &[
        "api_type",
        "base_model",
        "budget_duration",
        "cache_control_injection_points",
        "client_id",
        "client_secret",
        "configurable_clientside_auth_params",
        "input_cost_per_second",
        "litellm_credential_name",
        "litellm_trace_id",
        "max_budget",
        "max_parallel_requests",
        "merge_reasoning_content_in_choices",
        "metadata",
        "mock_response",
        "model_info",
        "num_retries",
        "order",
        "output_cost_per_second",
        "region_name",
        "tags",
        "tenant_id",
        "use_in_pass_through",
        "use_litellm_proxy",
        "watsonx_region_name",
    ];
    ["aws_", "azure_", "vertex_", "auto_router_", "cache_", "input_cost_", "output_cost_"]
        .iter()
        .any(|prefix| key.starts_with(prefix))
        || SETTINGS.contains(&key)
}

/// What `model` fills the `*` of model name `pattern` with, when `pattern` (one `*`
/// at most) matches it.
pub fn wildcard_match<'m>(pattern: &str, model: &'m str) -> Option<&'m str> {
    let (prefix, suffix) = pattern.split_once('*')?;
    if model.len() >= prefix.len() + suffix.len() && model.starts_with(prefix) && model.ends_with(suffix) {
        Some(&model[prefix.len()..model.len() - suffix.len()])
    } else {
        None
    }
}

/// A deployment that cannot serve, because of `error`.
fn unusable(
    index: usize,
    model_name: String,
    id: Option<String>,
    timeout: Duration,
    error: ConfigError,
) -> DeploymentConfig {
    DeploymentConfig {
        id: id.unwrap_or_else(|| format!("model_list[{index}]")),
        model_name,
        provider: &Provider::UNRESOLVED,
        upstream_model: String::new(),
        base_url: String::new(),
        url_query: None,
        api_key: None,
        key_header: KeyHeader::Bearer,
        aws: None,
        timeout,
        stream_timeout: timeout,
        max_retries: None,
        weight: 1.0,
        rpm: None,
        tpm: None,
        extra_headers: Vec::new(),
        forward_client_auth: false,
        request_defaults: serde_json::Map::new(),
        drop_params: None,
        additional_drop_params: Vec::new(),
        costs: Costs::default(),
        supermemory_router: None,
        disabled: Some(error.to_string()),
    }
}

fn user_id_mappings(raw: raw::RawUserIdMappings) -> Result<UserIdMappings, ConfigError> {
    let header = |name: &str, path: String| {
        HeaderName::try_from(name.to_ascii_lowercase())
            .map_err(|e| invalid(path, format!("`{name}` is not a header name: {e}")))
    };
    let custom_header =
        header(raw.custom_header.as_deref().unwrap_or("x-memory-user-id"), "user_id_mappings.custom_header".into())?;
    for (i, pattern) in raw.header_patterns.iter().enumerate() {
        let at = |key: &str| format!("user_id_mappings.header_patterns[{i}].{key}");
        header(&pattern.header, at("header"))?;
        regex::Regex::new(&pattern.pattern).map_err(|e| invalid(at("pattern"), e.to_string()))?;
    }
    Ok(UserIdMappings {
        custom_header,
        default_user_id: raw.default_user_id.unwrap_or_else(|| "default_user".to_owned()),
    })
}

#[cfg(test)]
mod tests;

/// Requests' records and memories waiting for the journal writer, when the config
/// sets no `general_settings.analytics_queue_size`.
pub const DEFAULT_ANALYTICS_QUEUE: usize = 50_000;

/// The database file a config names: `general_settings.database_url` as a path or a
/// `sqlite://` URL, relative to the config's folder; by default `data/memory-proxy.db`
/// there. Other URLs (PostgreSQL) are not supported yet: the embedded file is used and
/// the caller warns.
fn resolve_database_path(database_url: Option<&str>, base_dir: &Path) -> (PathBuf, Option<String>) {
    let default = base_dir.join("data/memory-proxy.db");
    match database_url {
        None => (default, None),
        Some(url) => {
            if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
                (base_dir.join(path), None)
            } else if url.contains("://") {
                let scheme = url.split("://").next().unwrap_or_default();
                let warning = format!(
                    "general_settings.database_url uses `{scheme}`, which this build does not support yet; using the embedded SQLite database {}",
                    default.display()
                );
                (default, Some(warning))
            } else {
                (base_dir.join(url), None)
            }
        }
    }
}

/// Marks the deployments whose `api_base` is Supermemory's router: the Supermemory base
/// URL (`memory.supermemory.base_url`, else Supermemory's own) followed by
/// `/v3/<provider URL>`. One without a Supermemory key is disabled, saying where to put it.
fn mark_supermemory_routers(
    mut deployments: Vec<DeploymentConfig>,
    memory: Option<&raw::RawMemory>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<DeploymentConfig> {
    let settings = memory.and_then(|m| m.supermemory.as_ref());
    let base = settings.and_then(|s| s.base_url.as_deref()).unwrap_or(SUPERMEMORY_BASE_URL);
    let Ok(base) = reqwest::Url::parse(base.trim()) else {
        return deployments;
    };
    let key = settings
        .and_then(|s| s.api_key.clone())
        .or_else(|| lookup(SUPERMEMORY_KEY_VAR))
        .filter(|k| !k.is_empty())
        .map(Secret::new);
    for deployment in &mut deployments {
        let Ok(url) = reqwest::Url::parse(&deployment.base_url) else { continue };
        let provider_url = url.path().strip_prefix("/v3/").and_then(|rest| rest.split('/').next()).unwrap_or("");
        let routed = url.origin() == base.origin() && (provider_url.contains('.') || provider_url.contains(':'));
        if !routed {
            continue;
        }
        let sends_key = deployment.extra_headers.iter().any(|(name, _)| name == "x-supermemory-api-key");
        if !sends_key && key.is_none() {
            deployment.disabled.get_or_insert_with(|| {
                format!(
                    "its api_base is Supermemory's router, which needs a Supermemory key: set memory.supermemory.api_key, {SUPERMEMORY_KEY_VAR} or litellm_params.extra_headers.x-supermemory-api-key"
                )
            });
        }
        deployment.supermemory_router = Some(SupermemoryRouter { api_key: if sends_key { None } else { key.clone() } });
    }
    deployments
}
