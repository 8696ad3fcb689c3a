//! config.yaml as written: LiteLLM's proxy format plus our keys. Only the keys we act
//! on are fields; any other key is reported once at start as not implemented.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Deserialize, Default, Debug)]
pub struct RawConfig {
    /// Read entry by entry ([`RawModel`]), so one bad entry disables only itself.
    #[serde(default)]
    pub model_list: Vec<serde_yaml::Value>,
    #[serde(default)]
    pub general_settings: RawGeneralSettings,
    #[serde(default)]
    pub litellm_settings: RawLitellmSettings,
    #[serde(default)]
    pub router_settings: RawRouterSettings,
    #[serde(default)]
    pub user_id_mappings: RawUserIdMappings,
    #[serde(default)]
    pub plugins: RawPlugins,
    /// Absent: no memory (a LiteLLM config behaves as it did under LiteLLM).
    pub memory: Option<RawMemory>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawMemory {
    /// `local` (the default), `supermemory` or `none`.
    pub backend: Option<String>,
    pub recall_limit: Option<usize>,
    pub token_budget: Option<u32>,
    pub capture: Option<bool>,
    /// `local` (the default: the embedded model), `none` (recall by words only) or an
    /// embedding model of `model_list`.
    pub embedding_model: Option<String>,
    /// A chat model of `model_list` that distils each finished turn into facts.
    pub extraction_model: Option<String>,
    pub retention: Option<RawRetention>,
    pub supermemory: Option<RawSupermemory>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub max_memories: Option<usize>,
    pub max_age_days: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawSupermemory {
    pub api_key: Option<String>,
    pub base_url: Option<String>,
    pub timeout_ms: Option<u64>,
}

#[derive(Deserialize, Debug)]
pub struct RawModel {
    pub model_name: String,
    pub litellm_params: RawLitellmParams,
    #[serde(default)]
    pub model_info: RawModelInfo,
    /// LiteLLM accepts rpm/tpm beside `litellm_params` as well as inside it.
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

#[derive(Deserialize, Debug)]
pub struct RawLitellmParams {
    pub model: String,
    pub api_base: Option<String>,
    pub api_key: Option<String>,
    pub custom_llm_provider: Option<String>,
    /// Seconds.
    pub timeout: Option<f64>,
    /// Seconds to the first byte of a stream and between its chunks.
    pub stream_timeout: Option<f64>,
    /// Retries of this deployment itself within one request.
    pub max_retries: Option<u32>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    /// Relative share of traffic among deployments of one model (simple-shuffle).
    pub weight: Option<f64>,
    pub organization: Option<String>,
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    /// Ours: send the client's own `Authorization` / `x-api-key` upstream.
    #[serde(default)]
    pub forward_client_auth: bool,
    /// Azure OpenAI's `api-version` query parameter.
    pub api_version: Option<String>,
    /// An Azure AD (Entra) token, sent as a bearer token instead of the key.
    pub azure_ad_token: Option<String>,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
    pub aws_session_token: Option<String>,
    pub aws_region_name: Option<String>,
    /// Assumed roles and profiles: read only to say they are not supported.
    pub aws_role_name: Option<String>,
    pub aws_profile_name: Option<String>,
    /// Bedrock's runtime URL, when not the region's own (a VPC endpoint, a proxy).
    pub aws_bedrock_runtime_endpoint: Option<String>,
    /// This deployment drops what its provider cannot take (as the global setting).
    pub drop_params: Option<bool>,
    /// Request parameters never sent to this deployment.
    #[serde(default)]
    pub additional_drop_params: Vec<String>,
    /// Every other key: a request parameter LiteLLM sends with each request
    /// (`temperature`, `max_tokens`, `thinking`, ...), or one of LiteLLM's own settings.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

/// Free-form in LiteLLM: the cost keys are read, anything else is kept as metadata.
#[derive(Deserialize, Default, Debug)]
pub struct RawModelInfo {
    pub id: Option<String>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub cache_read_input_token_cost: Option<f64>,
    pub cache_creation_input_token_cost: Option<f64>,
    pub output_cost_per_reasoning_token: Option<f64>,
    /// Other keys are the operator's own metadata: accepted, not interpreted.
    #[serde(flatten)]
    pub _metadata: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize, Default, Debug)]
pub struct RawGeneralSettings {
    pub master_key: Option<String>,
    pub database_url: Option<String>,
    pub max_request_size_mb: Option<f64>,
    /// Ours: browser origins allowed to call the gateway (CORS); none by default.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// LiteLLM's switch to stop writing request records.
    #[serde(default)]
    pub disable_spend_logs: bool,
    /// LiteLLM's: how long the request log keeps a request (`30d`); rollups stay.
    pub maximum_spend_logs_retention_period: Option<String>,
    /// Ours: seconds a client may take to send its request body (default 60).
    pub request_body_timeout: Option<f64>,
    /// Model requests in flight at most (LiteLLM's name); past it, 503 with retry-after.
    pub global_max_parallel_requests: Option<usize>,
    /// Ours: records waiting for the databank writer before new ones are dropped.
    pub analytics_queue_size: Option<usize>,
}

#[derive(Deserialize, Default, Debug)]
pub struct RawLitellmSettings {
    #[serde(default)]
    pub drop_params: bool,
    #[serde(default)]
    pub set_verbose: bool,
    #[serde(default)]
    pub json_logs: bool,
    pub num_retries: Option<u32>,
    /// Seconds.
    pub request_timeout: Option<f64>,
    pub fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
    pub context_window_fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
}

#[derive(Deserialize, Default, Debug)]
pub struct RawRouterSettings {
    pub routing_strategy: Option<String>,
    pub num_retries: Option<u32>,
    /// Seconds.
    pub timeout: Option<f64>,
    pub fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
    /// Groups to try when a request is too long for a model's context window.
    pub context_window_fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
    /// Other names for model groups: `{"gpt-4": "gpt-4o"}`, or
    /// `{"gpt-4": {"model": "gpt-4o", "hidden": true}}` to leave it out of `/v1/models`.
    #[serde(default)]
    pub model_group_alias: BTreeMap<String, RawAlias>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum RawAlias {
    Name(String),
    Detailed {
        model: String,
        #[serde(default)]
        hidden: bool,
    },
}

#[derive(Deserialize, Serialize, Default, Debug)]
pub struct RawUserIdMappings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_header: Option<String>,
    #[serde(default)]
    pub header_patterns: Vec<RawHeaderPattern>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_user_id: Option<String>,
}

#[derive(Deserialize, Serialize, Debug)]
pub struct RawHeaderPattern {
    pub header: String,
    pub pattern: String,
    pub user_id: String,
}

/// Ours: the WebAssembly plugins. A list that is absent takes the built-in default.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawPlugins {
    pub directory: Option<String>,
    pub cache_directory: Option<String>,
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub max_failures: Option<u32>,
    pub detectors: Option<Vec<RawPlugin>>,
    pub memory_injector: Option<RawPlugin>,
    pub provider_adapters: Option<Vec<RawPlugin>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawPlugin {
    pub name: String,
    pub file: Option<String>,
    pub enabled: Option<bool>,
    pub config: Option<serde_yaml::Value>,
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub on_error: Option<String>,
    pub isolation: Option<String>,
    pub providers: Option<Vec<String>>,
    /// Detectors: call the plugin only when one of these headers matches its pattern
    /// (an empty pattern: the header is present).
    pub match_headers: Option<BTreeMap<String, String>>,
}
