use super::*;

fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
}

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    Config::parse(text, &env(&[("OPENAI_KEY", "sk-openai"), ("MASTER", "sk-master")]), Path::new("/etc/memory-proxy"))
}

const LITELLM_EXAMPLE: &str = r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_KEY
      timeout: 30
      rpm: 100
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: http://127.0.0.1:9/v1
    tpm: 5000
    model_info:
      id: local-gpt
      input_cost_per_token: 0.000002
      output_cost_per_token: 0.000008
      description: free-form metadata is fine
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_key: sk-ant-literal
      stream_timeout: 5
  - model_name: llama
    litellm_params:
      model: llama3.2
      custom_llm_provider: ollama
general_settings:
  master_key: os.environ/MASTER
  max_request_size_mb: 1.5
litellm_settings:
  drop_params: true
  num_retries: 4
  request_timeout: 60
  fallbacks: [{"gpt-4o": ["claude"]}]
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 3
user_id_mappings:
  custom_header: X-Memory-User-Id
  header_patterns:
    - header: User-Agent
      pattern: "OpenAIClientImpl/Java"
      user_id: pycharm-ai
  default_user_id: someone
"#;

#[test]
fn reads_a_litellm_config() {
    let Loaded { config, warnings } = parse(LITELLM_EXAMPLE).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let [gpt, local, claude, llama] = config.deployments.as_slice() else { panic!("four deployments") };
    assert_eq!((gpt.provider.name, gpt.upstream_model.as_str()), ("openai", "gpt-4o"));
    assert_eq!(gpt.api_key.as_ref().map(Secret::expose), Some("sk-openai"));
    assert_eq!(gpt.timeout, Duration::from_secs(30));
    assert_eq!(gpt.weight, 100.0);
    assert_eq!(gpt.base_url, "https://api.openai.com/v1");
    assert_eq!(local.id, "local-gpt");
    assert_eq!(local.tpm, Some(5000));
    assert_eq!(local.costs.input, Some(0.000002));
    assert!(local.api_key.is_none() && local.disabled.is_none(), "a custom api_base needs no key");
    assert_eq!(claude.stream_timeout, Duration::from_secs(5));
    assert_eq!(claude.timeout, Duration::from_secs(60), "request_timeout is the default");
    assert_eq!((llama.provider.name, llama.base_url.as_str()), ("ollama", "http://localhost:11434/v1"));
    assert_eq!(config.num_retries, 3, "router_settings wins over litellm_settings");
    assert_eq!(config.fallbacks["gpt-4o"], vec!["claude".to_owned()]);
    assert!(config.drop_params);
    assert_eq!(config.master_key.as_ref().map(Secret::expose), Some("sk-master"));
    assert_eq!(config.max_request_bytes, 1_572_864);
    let mappings = &config.user_id_mappings;
    assert_eq!(mappings.custom_header, "x-memory-user-id");
    let header_detector = config.plugins.detectors.iter().find(|d| d.name == "header-detector").unwrap();
    assert!(header_detector.config_json.contains("OpenAIClientImpl/Java"), "the plugin applies the patterns");
    assert_eq!(mappings.default_user_id, "someone");
}

#[test]
fn unknown_keys_are_one_warning_with_their_paths() {
    let text = "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n      api_base: http://127.0.0.1:1/v1\n      vertex_project: x\ngeneral_settings:\n  alerting: [slack]\nenvironment_variables: {}\n";
    let Loaded { warnings, .. } = parse(text).unwrap();
    assert_eq!(
        warnings,
        [
            "config keys not implemented, ignored: general_settings.alerting, environment_variables, model_list[0].litellm_params.vertex_project"
        ]
    );
}

#[test]
fn a_deployment_that_cannot_work_is_disabled_with_its_reason_and_the_rest_serve() {
    let text = "model_list:
  - model_name: a
    litellm_params: {model: openai/a, api_key: k, tpm: 20_000}
  - model_name: b
    litellm_params: {model: mystery/b, api_key: k}
  - model_name: c
    litellm_params: {model: openai/c, api_key: k, timeout: soon}
  - model_name: d
    litellm_params: {api_base: http://x}
  - model_name: e
    litellm_params: {model: openai/e, api_key: k, vertex_location: os.environ/UNSET_REGION}
";
    let Loaded { config, warnings } = parse(text).unwrap();
    let reason = |name: &str| config.deployments.iter().find(|d| d.model_name == name).unwrap().disabled.clone();
    assert_eq!(reason("a"), None);
    assert_eq!(config.deployments[0].tpm, Some(20_000), "a YAML 1.1 number, as LiteLLM reads it");
    assert!(reason("b").unwrap().starts_with("model_list[1].litellm_params.model: unknown provider `mystery`"));
    assert!(reason("c").unwrap().starts_with("model_list[2].litellm_params.timeout: invalid type"));
    let d = reason("d").unwrap();
    assert!(d.contains("model_list[3].litellm_params") && d.contains("missing field `model`"), "{d}");
    assert_eq!(reason("e"), None, "an ignored key's variable does not matter");
    let told: Vec<&String> = warnings.iter().filter(|w| w.contains("is disabled")).collect();
    assert_eq!(told.len(), 3, "every problem at once: {warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("UNSET_REGION") && w.contains("ignores")), "{warnings:?}");
}

#[test]
fn fallbacks_may_name_models_served_by_wildcard_groups() {
    let text = "model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: k}
  - model_name: claude-*
    litellm_params: {model: anthropic/claude-*, api_key: k}
router_settings:
  fallbacks: [{gpt-4o: [claude-3-5-haiku]}, {claude-3-opus: [gpt-4o]}]
";
    let fallbacks = parse(text).unwrap().config.fallbacks;
    assert_eq!(fallbacks["gpt-4o"], ["claude-3-5-haiku"]);
    assert_eq!(fallbacks["claude-3-opus"], ["gpt-4o"]);
}

#[test]
fn aliases_name_served_models() {
    let models = "model_list:\n  - {model_name: gpt-4o, litellm_params: {model: openai/gpt-4o, api_key: k}}\n  - {model_name: claude-*, litellm_params: {model: anthropic/claude-*, api_key: k}}\n";
    let text = format!(
        "{models}router_settings:\n  model_group_alias: {{gpt-4: gpt-4o, sonnet: {{model: claude-sonnet-4-5, hidden: true}}, gpt-4o: claude-x}}\n"
    );
    let Loaded { config, warnings } = parse(&text).unwrap();
    assert_eq!(config.aliases["gpt-4"], Alias { model: "gpt-4o".into(), hidden: false });
    assert_eq!(config.aliases["sonnet"], Alias { model: "claude-sonnet-4-5".into(), hidden: true });
    assert!(!config.aliases.contains_key("gpt-4o"), "a model_name wins over an alias");
    assert!(warnings.iter().any(|w| w.contains("model_group_alias.gpt-4o")), "{warnings:?}");
    let unknown = parse(&format!("{models}router_settings:\n  model_group_alias: {{x: nope}}\n")).unwrap_err();
    assert!(unknown.to_string().starts_with("router_settings.model_group_alias.x: `nope`"), "{unknown}");
}

#[test]
fn errors_name_the_path_of_the_key() {
    let bad_regex = "user_id_mappings:\n  header_patterns:\n    - {header: user-agent, pattern: '(', user_id: x}\n";
    let error = parse(bad_regex).unwrap_err().to_string();
    assert!(error.starts_with("user_id_mappings.header_patterns[0].pattern:"), "{error}");

    let bad_fallback = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, api_key: k}\nrouter_settings:\n  fallbacks: [{a: [nope]}]\n";
    let error = parse(bad_fallback).unwrap_err().to_string();
    assert_eq!(
        error,
        "router_settings.fallbacks[0]: `nope` is not a model_name in model_list, nor served by a wildcard one"
    );

    assert!(matches!(parse("model_list: [").unwrap_err(), ConfigError::Syntax(_)));
}

#[test]
fn a_missing_key_disables_only_its_deployment() {
    let text = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, api_key: os.environ/NOT_SET}\n  - model_name: b\n    litellm_params: {model: anthropic/b}\n  - model_name: c\n    litellm_params: {model: openai/c, api_key: os.environ/OPENAI_KEY}\n";
    let Loaded { config, warnings } = parse(text).unwrap();
    let reasons: Vec<Option<&str>> = config.deployments.iter().map(|d| d.disabled.as_deref()).collect();
    assert_eq!(
        reasons,
        [
            Some("environment variable NOT_SET (model_list[0].litellm_params.api_key) is not set"),
            Some("no `api_key` is configured and environment variable ANTHROPIC_API_KEY is not set"),
            None
        ]
    );
    assert_eq!(warnings.len(), 2);
    assert!(!format!("{config:?}").contains("sk-openai"), "keys never print");
}

#[test]
fn a_missing_master_key_variable_is_an_error_not_an_open_gateway() {
    let error = parse("general_settings:\n  master_key: os.environ/NOT_SET\n").unwrap_err().to_string();
    assert_eq!(error, "general_settings.master_key: environment variable NOT_SET is not set");
}

#[test]
fn master_key_can_come_from_the_environment() {
    let loaded = Config::parse("", &env(&[("MEMORY_PROXY_MASTER_KEY", "sk-env")]), Path::new(".")).unwrap();
    assert_eq!(loaded.config.master_key.map(|k| k.expose().to_owned()).as_deref(), Some("sk-env"));
    let empty = parse("").unwrap();
    assert!(empty.config.deployments.is_empty() && empty.config.master_key.is_none());
    assert_eq!(empty.config.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
}

#[test]
fn plugins_default_to_the_built_in_set() {
    let Loaded { config, .. } = parse("user_id_mappings:\n  default_user_id: someone\n").unwrap();
    let plugins = &config.plugins;
    assert_eq!(plugins.directory, Path::new("/etc/memory-proxy/plugins/dist"));
    let names: Vec<&str> = plugins.detectors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["claude-code-detector", "codex-detector", "header-detector"]);
    assert_eq!(plugins.detectors[2].file, Path::new("/etc/memory-proxy/plugins/dist/header_detector.wasm"));
    let header_config: serde_json::Value = serde_json::from_str(&plugins.detectors[2].config_json).unwrap();
    assert_eq!(header_config["default_user_id"], "someone", "user_id_mappings feeds the header detector");
    assert_eq!(plugins.detectors[0].timeout, Duration::from_millis(50));
    let matches: Vec<&str> = plugins.detectors[0].match_headers.iter().map(|m| m.header.as_str()).collect();
    assert_eq!(
        matches,
        ["user-agent", "x-claude-code-session-id"],
        "built-in detectors skip requests they cannot be about"
    );
    assert!(plugins.detectors[0].match_headers[0].accepts(Some("claude-cli/2.1.197 (external, cli)")));
    assert!(!plugins.detectors[0].match_headers[0].accepts(Some("OpenAI/Python 1.0")));
    assert!(
        plugins.detectors[0].match_headers[1].accepts(Some("any"))
            && !plugins.detectors[0].match_headers[1].accepts(None)
    );
    assert!(plugins.detectors[2].match_headers.is_empty(), "the header detector sees every request");
    assert_eq!(plugins.detectors[0].on_error, plugins::OnError::FailOpen);
    assert_eq!(plugins.memory_injector.as_ref().unwrap().name, "system-prompt-injector");
    let serves = |name: &str| {
        let adapter = plugins.provider_adapters.iter().find(|a| a.name == name).unwrap();
        adapter.providers.iter().map(String::as_str).collect::<Vec<_>>()
    };
    assert_eq!(serves("anthropic-adapter"), ["anthropic", "bedrock"]);
    assert_eq!(serves("gemini-adapter"), ["gemini", "gemini_native"]);
    let openai = serves("openai-adapter");
    assert!(["openai", "azure", "ollama", "cerebras", "zhipu"].iter().all(|p| openai.contains(p)), "{openai:?}");
    let every = Provider::names().count();
    assert_eq!(serves("anthropic-adapter").len() + openai.len() + 2, every, "each provider has its adapter");
    assert_eq!(plugins.provider_adapters[0].on_error, plugins::OnError::FailClosed);
}

#[test]
fn plugin_entries_are_checked_with_their_path() {
    let cases = [
        (
            "plugins:\n  detectors:\n    - {name: a, on_error: maybe}\n",
            "plugins.detectors[0].on_error: `maybe` is not fail-open or fail-closed",
        ),
        (
            "plugins:\n  provider_adapters:\n    - {name: a}\n",
            "plugins.provider_adapters[0].providers: a provider adapter needs the providers it serves",
        ),
        (
            "plugins:\n  provider_adapters:\n    - {name: a, providers: [azurre]}\n",
            "plugins.provider_adapters[0].providers[0]: unknown provider `azurre`",
        ),
        (
            "plugins:\n  detectors:\n    - {name: a, timeout_ms: 0}\n",
            "plugins.detectors[0].timeout_ms: must be between 1 and 10000",
        ),
        (
            "plugins:\n  detectors:\n    - {name: a}\n    - {name: a}\n",
            "plugins.detectors[1].name: `a` is listed twice",
        ),
        ("plugins:\n  detector: []\n", "plugins.detector: unknown field `detector`"),
        (
            "plugins:\n  detectors:\n    - {name: a, match_headers: {user-agent: '('}}\n",
            "plugins.detectors[0].match_headers.user-agent:",
        ),
        (
            "plugins:\n  provider_adapters:\n    - {name: a, providers: [openai], match_headers: {x: ''}}\n",
            "plugins.provider_adapters[0].match_headers: only detectors",
        ),
    ];
    for (text, expected) in cases {
        let error = parse(text).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{error}");
    }
    let Loaded { config, .. } =
        parse("plugins:\n  directory: /opt/p\n  detectors:\n    - {name: mine, file: x.wasm, config: {k: 1}, isolation: per-request}\n    - {name: off, enabled: false}\n")
            .unwrap();
    let [mine] = config.plugins.detectors.as_slice() else { panic!("one enabled detector") };
    assert_eq!(mine.file, Path::new("/opt/p/x.wasm"));
    assert_eq!(mine.config_json, r#"{"k":1}"#);
    assert_eq!(mine.isolation, plugins::Isolation::PerRequest);
}

#[test]
fn memory_is_off_without_its_section_and_defaults_within_it() {
    assert_eq!(parse("model_list: []\n").unwrap().config.memory, None);
    let defaults = parse("memory: {}\n").unwrap().config.memory.unwrap();
    let local = MemoryBackend::Local;
    let expected = MemoryConfig {
        recall_limit: 5,
        token_budget: 1000,
        capture: true,
        backend: local,
        embedding_model: EmbeddingModel::Local,
        extraction_model: None,
        retention: Retention::default(),
    };
    assert_eq!(defaults, expected);
    let set = parse("memory: {recall_limit: 0, token_budget: 200, capture: false}\n").unwrap().config.memory;
    assert_eq!(set, Some(MemoryConfig { recall_limit: 0, token_budget: 200, capture: false, ..expected }));
    assert_eq!(parse("memory: {backend: none}\n").unwrap().config.memory, None);
    let unknown = parse("memory: {backend: mem0}\n").unwrap_err().to_string();
    assert!(unknown.starts_with("memory.backend:") && unknown.contains("`supermemory` and `none`"), "{unknown}");
    let typo = parse("memory: {recal_limit: 3}\n").unwrap_err().to_string();
    assert!(typo.contains("recal_limit"), "{typo}");
    assert!(parse("memory: {recall_limit: 101}\n").unwrap_err().to_string().starts_with("memory.recall_limit"));
}

#[test]
fn the_embedding_and_extraction_models_are_models_of_the_list_and_retention_is_bounded() {
    let models = "model_list:\n  - {model_name: small, litellm_params: {model: openai/gpt-4o-mini, api_key: k}}\n";
    let with = |memory: &str| parse(&format!("{models}memory: {memory}\n"));
    let memory = with("{extraction_model: small, retention: {max_memories: 500, max_age_days: 90}}").unwrap();
    let memory = memory.config.memory.unwrap();
    assert_eq!(memory.extraction_model.as_deref(), Some("small"));
    let ninety_days = Duration::from_secs(90 * 86_400);
    assert_eq!(memory.retention, Retention { max_memories: Some(500), max_age: Some(ninety_days) });
    let embedding = with("{embedding_model: small}").unwrap().config.memory.unwrap().embedding_model;
    assert_eq!(embedding, EmbeddingModel::Deployment("small".into()));
    let unknown = with("{embedding_model: big}").unwrap_err().to_string();
    assert!(unknown.starts_with("memory.embedding_model:") && unknown.contains("model_list"), "{unknown}");
    let unknown = with("{extraction_model: big}").unwrap_err().to_string();
    assert!(unknown.starts_with("memory.extraction_model:") && unknown.contains("`big`"), "{unknown}");
    for zero in
        ["{retention: {max_memories: 0}}", "{retention: {max_age_days: 0}}", "{retention: {max_age_days: 200000000}}"]
    {
        assert!(with(zero).unwrap_err().to_string().starts_with("memory.retention."), "{zero}");
    }
}

#[test]
fn supermemory_needs_a_key_and_takes_it_from_the_environment() {
    let missing = parse("memory: {backend: supermemory}\n").unwrap_err().to_string();
    assert!(missing.starts_with("memory.supermemory.api_key:") && missing.contains("SUPERMEMORY_API_KEY"), "{missing}");
    let lookup = |var: &str| (var == "SUPERMEMORY_API_KEY").then(|| "sm-from-env".to_owned());
    let loaded = Config::parse("memory: {backend: supermemory}\n", &lookup, Path::new("/srv")).unwrap();
    let Some(MemoryBackend::Supermemory(settings)) = loaded.config.memory.map(|m| m.backend) else {
        panic!("supermemory")
    };
    assert_eq!(settings.api_key.expose(), "sm-from-env");
    assert_eq!(settings.base_url, "https://api.supermemory.ai");
    assert_eq!(settings.timeout, Duration::from_millis(1_500));
    assert!(!format!("{settings:?}").contains("sm-from-env"), "the key never reaches a log line");
    let set = "memory:\n  backend: supermemory\n  supermemory: {api_key: k, base_url: 'http://127.0.0.1:6767/', timeout_ms: 300}\n";
    let Some(MemoryBackend::Supermemory(settings)) = parse(set).unwrap().config.memory.map(|m| m.backend) else {
        panic!("supermemory")
    };
    assert_eq!((settings.base_url.as_str(), settings.timeout), ("http://127.0.0.1:6767", Duration::from_millis(300)));
    let bad = parse("memory: {backend: supermemory, supermemory: {api_key: k, base_url: 'ftp://x'}}\n");
    assert!(bad.unwrap_err().to_string().starts_with("memory.supermemory.base_url"));
}

#[test]
fn the_shipped_config_loads_with_memory_on() {
    let loaded = Config::parse(include_str!("../../../../config.yaml"), &|_| None, Path::new("/srv/mp")).unwrap();
    let unexpected: Vec<&String> = loaded.warnings.iter().filter(|w| !w.contains("is disabled")).collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    assert!(loaded.config.memory.is_some());
    assert_eq!(loaded.config.plugins.detectors.len(), 3);
    assert!(loaded.config.deployments.iter().any(|d| d.model_name == "demo" && d.disabled.is_none()));
}

#[test]
fn database_urls() {
    let base = Path::new("/etc/mp");
    assert_eq!(resolve_database_path(None, base).0, Path::new("/etc/mp/data/memory-proxy.db"));
    assert_eq!(resolve_database_path(Some("sqlite:///var/lib/mp.db"), base).0, Path::new("/var/lib/mp.db"));
    assert_eq!(resolve_database_path(Some("local.db"), base).0, Path::new("/etc/mp/local.db"));
    let (path, warning) = resolve_database_path(Some("postgresql://u:p@db/litellm"), base);
    assert_eq!(path, Path::new("/etc/mp/data/memory-proxy.db"));
    assert!(warning.unwrap().contains("`postgresql`"));
}

#[test]
fn every_fatal_problem_is_reported_at_once_with_its_path() {
    let text = "model_list:
  - model_name: a
    litellm_params: {model: openai/a, api_key: k}
router_settings:
  fallbacks: [{a: [nowhere]}]
  context_window_fallbacks: [{a: [bigger]}]
general_settings:
  max_request_size_mb: -1
  master_key: os.environ/UNSET_MASTER
";
    let error = parse(text).unwrap_err().to_string();
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), 4, "{error}");
    for path in [
        "general_settings.master_key: environment variable UNSET_MASTER",
        "router_settings.fallbacks[0]: `nowhere`",
        "router_settings.context_window_fallbacks[0]: `bigger`",
        "general_settings.max_request_size_mb:",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(path)), "{path} in {error}");
    }
}

#[test]
fn litellm_params_split_into_settings_defaults_and_provider_credentials() {
    let text = "model_list:
  - model_name: t
    litellm_params:
      model: anthropic/claude
      api_key: k
      thinking: {type: enabled, budget_tokens: 1024}
      temperature: 0.5
      tags: [team-a]
      drop_params: true
      additional_drop_params: [top_k]
  - model_name: b
    litellm_params: {model: bedrock/anthropic.claude-v2, aws_region_name: eu-west-1}
  - model_name: az
    litellm_params: {model: azure/dep, api_base: 'https://x.openai.azure.com'}
";
    let lookup = |var: &str| match var {
        "AWS_ACCESS_KEY_ID" => Some("AKID".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
        _ => None,
    };
    let Loaded { config, warnings } = Config::parse(text, &lookup, Path::new("/etc/memory-proxy")).unwrap();
    let t = &config.deployments[0];
    assert_eq!(
        serde_json::Value::Object(t.request_defaults.clone()),
        serde_json::json!({"thinking": {"type": "enabled", "budget_tokens": 1024}, "temperature": 0.5})
    );
    assert_eq!((t.drop_params, t.additional_drop_params.as_slice()), (Some(true), &["top_k".to_owned()][..]));
    assert!(
        warnings[0].contains("model_list[0].litellm_params.tags"),
        "LiteLLM's own settings are ignored: {warnings:?}"
    );
    let b = &config.deployments[1];
    assert_eq!(b.base_url, "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-v2");
    let aws = b.aws.as_ref().unwrap();
    assert_eq!((aws.access_key_id.as_str(), aws.region.as_str()), ("AKID", "eu-west-1"));
    assert_eq!(b.disabled, None);
    let az = &config.deployments[2];
    assert_eq!(az.url_query.as_deref(), Some("api-version=2025-02-01-preview"));
    assert!(az.disabled.as_deref().unwrap().contains("AZURE_API_KEY"), "Azure needs its key: {:?}", az.disabled);
}

#[test]
fn the_request_log_keeps_what_litellms_retention_period_says() {
    let Loaded { config, .. } = parse("general_settings:\n  maximum_spend_logs_retention_period: 30d\n").unwrap();
    assert_eq!(config.request_log_retention, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(parse("{}").unwrap().config.request_log_retention, None, "kept for ever by default");
    let error = parse("general_settings:\n  maximum_spend_logs_retention_period: soon\n").unwrap_err().to_string();
    assert!(error.starts_with("general_settings.maximum_spend_logs_retention_period:"), "{error}");
}
