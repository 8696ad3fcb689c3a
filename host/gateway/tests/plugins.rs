//! Every built-in plugin through its real .wasm in the host's runtime: the detectors on
//! recorded Claude Code and Codex requests, the injector, the adapters. (The test
//! command builds the plugins into plugins/dist first.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderName, HeaderValue};
use memory_proxy::config::Config;
use memory_proxy::core::api::ClientApi;
use memory_proxy::core::body::JsonBody;
use memory_proxy::core::sse::SseEvent;
use memory_proxy::plugins::hooks::{
    AdapterContext, Api, DetectRequest, Header, InjectRequest, Memory, Position, Scope,
};
use memory_proxy::plugins::{PluginHost, PluginSet};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn load(yaml: &str) -> PluginSet {
    load_from(&repo().join("plugins/dist"), yaml).await
}

async fn load_from(dist: &Path, yaml: &str) -> PluginSet {
    let lookup = |var: &str| (var == "MEMORY_PROXY_PLUGINS_DIR").then(|| dist.display().to_string());
    let config = Config::parse(yaml, &lookup, Path::new(".")).unwrap().config;
    let host = PluginHost::new(&config.plugins).unwrap();
    let set = host.load_set(&config.plugins, None).await;
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    set
}

/// A recorded request: its headers (as a HeaderMap) and body.
fn fixture(name: &str) -> (HeaderMap, JsonBody) {
    let text = std::fs::read_to_string(repo().join("tests/fixtures").join(name)).unwrap();
    let recorded: Value = serde_json::from_str(&text).unwrap();
    let mut headers = HeaderMap::new();
    for (name, value) in recorded["headers"].as_object().unwrap() {
        headers.insert(
            HeaderName::try_from(name.as_str()).unwrap(),
            HeaderValue::try_from(value.as_str().unwrap()).unwrap(),
        );
    }
    (headers, JsonBody::parse(recorded["body"].to_string().as_bytes()).unwrap())
}

fn detect_request(api: ClientApi, headers: &HeaderMap, body: &JsonBody) -> DetectRequest {
    let (system_excerpt, user_excerpt) = memory_proxy::core::prompt::excerpts(api, body);
    DetectRequest {
        api: api.into(),
        model: body.get::<String>("model").unwrap().unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(n, v)| Header { name: n.as_str().to_owned(), value: v.to_str().unwrap_or_default().to_owned() })
            .collect(),
        system_excerpt,
        user_excerpt,
    }
}

const SEED_MAPPINGS: &str = "user_id_mappings:
  custom_header: x-memory-user-id
  header_patterns:
    - {header: user-agent, pattern: 'OpenAIClientImpl/Java', user_id: pycharm-ai}
    - {header: user-agent, pattern: 'claude-cli', user_id: claude-cli}
  default_user_id: default_user
";

fn headers(pairs: &[(&str, &str)]) -> Vec<Header> {
    pairs.iter().map(|(n, v)| Header { name: (*n).into(), value: (*v).into() }).collect()
}

fn request_with(headers: Vec<Header>) -> DetectRequest {
    DetectRequest {
        api: Api::OpenaiChat,
        model: "m".into(),
        headers,
        system_excerpt: String::new(),
        user_excerpt: String::new(),
    }
}

#[tokio::test]
async fn header_detector_follows_user_id_mappings() {
    let set = load(&format!("{SEED_MAPPINGS}plugins:\n  detectors: [{{name: header-detector}}]\n")).await;
    let cases = [
        (vec![("user-agent", "OpenAIClientImpl/Java unknown")], "pycharm-ai", Some("jetbrains")),
        (vec![("user-agent", "claude-cli/2.1.197 (external, cli)")], "claude-cli", Some("claude-code")),
        (vec![("user-agent", "OpenAIClientImpl/Java"), ("x-memory-user-id", "ana")], "ana", Some("jetbrains")),
        (vec![("user-agent", "Anthropic/Python 0.40.0")], "default_user", Some("anthropic-python")),
        (vec![], "default_user", None),
    ];
    for (pairs, user, client) in cases {
        let detection = set.detect(&request_with(headers(&pairs))).await.unwrap();
        assert_eq!(detection.user.as_ref().map(|d| d.value.as_str()), Some(user), "{pairs:?}");
        assert_eq!(detection.client.as_ref().map(|d| d.value.as_str()), client, "{pairs:?}");
        assert_eq!(detection.user.unwrap().plugin, "header-detector");
    }
}

#[tokio::test]
async fn claude_code_detector_reads_the_recorded_request() {
    let set = load("plugins:\n  detectors: [{name: claude-code-detector}]\n").await;
    let (headers, body) = fixture("claude-code-2.1.197.json");
    let detection = set.detect(&detect_request(ClientApi::AnthropicMessages, &headers, &body)).await.unwrap();
    assert_eq!(detection.client.unwrap().value, "claude-code");
    let project = detection.project.unwrap();
    assert_eq!(project.value, "/tmp/demo-project");
    assert!(project.reason.contains("working directory"), "{}", project.reason);
    assert!(detection.user.is_none(), "Claude Code does not say who the user is");
}

#[tokio::test]
async fn claude_code_detector_reads_the_environment_of_newer_versions() {
    // Claude Code 2.1.3xx states its environment in a system message after the first
    // user message, not in the system prompt.
    let set = load("plugins:\n  detectors: [{name: claude-code-detector}]\n").await;
    let (headers, body) = fixture("claude-code-2.1.332.json");
    let detection = set.detect(&detect_request(ClientApi::AnthropicMessages, &headers, &body)).await.unwrap();
    assert_eq!(detection.client.unwrap().value, "claude-code");
    assert_eq!(detection.project.unwrap().value, "/tmp/cc/repoA");
}

#[tokio::test]
async fn the_agents_detectors_name_what_they_wrap_around_the_users_words() {
    let set = load("plugins:\n  detectors: [{name: claude-code-detector}, {name: codex-detector}]\n").await;
    for (file, api) in
        [("claude-code-2.1.197.json", ClientApi::AnthropicMessages), ("codex-0.171.0.json", ClientApi::OpenAiResponses)]
    {
        let (headers, body) = fixture(file);
        let detection = set.detect(&detect_request(api, &headers, &body)).await.unwrap();
        assert!(!detection.scaffolding.is_empty(), "{file}");
        let words = memory_proxy::core::prompt::user_words(&body, &detection.scaffolding).unwrap();
        assert_eq!((words.text.as_str(), words.new_turn), ("Say hello", true), "{file}: only what the user typed");
    }
    // Claude Code's words share a user message with its reminders: without the tags,
    // the reminders would be taken for them.
    let (_, body) = fixture("claude-code-2.1.197.json");
    let unwrapped = memory_proxy::core::prompt::user_words(&body, &[]).unwrap();
    assert!(unwrapped.text.starts_with("<system-reminder>"), "{}", unwrapped.text);
}

#[tokio::test]
async fn plugins_built_against_api_0_1_0_keep_working() {
    let old = repo().join("tests/fixtures/plugins-v0.1.0");
    // Compiled modules go to a scratch folder, not next to the fixtures in the source tree.
    let cache = std::env::temp_dir().join("memory-proxy-tests-plugins-v0.1.0");
    let yaml = format!(
        "plugins:
  cache_directory: {}
  detectors: [{{name: claude-code-detector}}]
  memory_injector: {{name: system-prompt-injector}}
  provider_adapters: [{{name: anthropic-adapter, providers: [anthropic]}}]
",
        cache.display()
    );
    let set = load_from(&old, &yaml).await;
    assert!(set.all().all(|plugin| plugin.metadata.api == "0.1.0"), "the fixtures are 0.1.0 builds");

    let (headers, body) = fixture("claude-code-2.1.197.json");
    let detection = set.detect(&detect_request(ClientApi::AnthropicMessages, &headers, &body)).await.unwrap();
    assert_eq!(detection.client.unwrap().value, "claude-code");
    assert_eq!(detection.project.unwrap().value, "/tmp/demo-project");
    assert!(detection.scaffolding.is_empty(), "0.1.0 cannot name it");

    let request = InjectRequest {
        api: Api::AnthropicMessages,
        scope: Scope { user: "ana".into(), project: None, client: None },
        query: "tea?".into(),
        memories: vec![memory("1", "Ana likes tea.", 0.9)],
        token_budget: 500,
    };
    let patch = set.inject(&request).await.unwrap().unwrap();
    assert_eq!(patch.position, Position::SystemAppend);
    assert!(patch.text.contains("Ana likes tea."), "{}", patch.text);

    let adapter = set.adapter_for("anthropic").unwrap();
    let ctx = context(Api::OpenaiChat, "anthropic");
    let translated = adapter.translate_request(&ctx, r#"{"model":"m","messages":[{"role":"user","content":"Q"}]}"#);
    assert_eq!(translated.await.unwrap().path, "/v1/messages");
    let refused = adapter.translate_request(&ctx, r#"{"model":"m","messages":[],"n":3}"#).await.unwrap_err();
    assert_eq!(refused.param.as_deref(), Some("n"), "0.1.0's errors convert too");
    let mut stream = adapter.open_stream(&ctx).await.unwrap();
    let start =
        json!({ "type": "message_start", "message": { "id": "m", "model": "c", "usage": { "input_tokens": 2 } } });
    stream.push(SseEvent::named("message_start", start.to_string())).await.unwrap();
    let delta = json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "Hi" } });
    let out = stream.push(SseEvent::named("content_block_delta", delta.to_string())).await.unwrap();
    assert!(out.iter().any(|e| e.data.contains("Hi")), "{out:?}");
    let (_, completed) = stream.finish().await.unwrap();
    assert!(!completed, "no message_stop was sent");
}

#[tokio::test]
async fn claude_code_detector_reads_the_older_prompt_and_remembers_sessions() {
    let set = load("plugins:\n  detectors: [{name: claude-code-detector}]\n").await;
    let v20 = DetectRequest {
        api: Api::AnthropicMessages,
        model: "claude-sonnet-4-5".into(),
        headers: headers(&[("user-agent", "claude-cli/2.0.14 (external, cli)"), ("x-claude-code-session-id", "s-1")]),
        system_excerpt:
            "You are Claude Code.\n<env>\nWorking directory: /home/ana/shop\nIs directory a git repo: Yes\n</env>"
                .into(),
        user_excerpt: "hi".into(),
    };
    let first = set.detect(&v20).await.unwrap();
    assert_eq!(first.project.unwrap().value, "/home/ana/shop");
    // A later request of the same session that states no directory (a subagent, a
    // version without the line): the project seen before applies.
    let later = DetectRequest { system_excerpt: "You are a subagent.".into(), ..v20 };
    let second = set.detect(&later).await.unwrap();
    let project = second.project.unwrap();
    assert_eq!(project.value, "/home/ana/shop");
    assert!(project.reason.contains("seen before in this session"));
    // Not Claude Code: nothing decided.
    let other = set.detect(&request_with(headers(&[("user-agent", "curl/8")]))).await.unwrap();
    assert_eq!(other, Default::default());
}

#[tokio::test]
async fn codex_detector_reads_the_recorded_request_and_its_metadata_header() {
    let set = load("plugins:\n  detectors: [{name: codex-detector}]\n").await;
    let (headers, body) = fixture("codex-0.171.0.json");
    let request = detect_request(ClientApi::OpenAiResponses, &headers, &body);
    let detection = set.detect(&request).await.unwrap();
    assert_eq!(detection.client.unwrap().value, "codex");
    assert_eq!(detection.project.unwrap().value, "/tmp/demo-project");

    // Without the environment context, the turn metadata's workspace names the project.
    let without_cwd = DetectRequest { user_excerpt: "Say hello".into(), system_excerpt: String::new(), ..request };
    let detection = set.detect(&without_cwd).await.unwrap();
    let project = detection.project.unwrap();
    assert_eq!(project.value, "/tmp/demo-project");
    assert!(project.reason.contains("x-codex-turn-metadata"));
}

#[tokio::test]
async fn detectors_chain_first_answer_per_field_wins() {
    let set = load(&format!(
        "{SEED_MAPPINGS}plugins:\n  detectors: [{{name: claude-code-detector}}, {{name: header-detector}}]\n"
    ))
    .await;
    let (headers, body) = fixture("claude-code-2.1.197.json");
    let detection = set.detect(&detect_request(ClientApi::AnthropicMessages, &headers, &body)).await.unwrap();
    assert_eq!(detection.client.as_ref().unwrap().plugin, "claude-code-detector");
    assert_eq!(detection.project.as_ref().unwrap().plugin, "claude-code-detector");
    let user = detection.user.unwrap();
    assert_eq!((user.value.as_str(), user.plugin.as_str()), ("claude-cli", "header-detector"));
}

fn memory(id: &str, text: &str, score: f32) -> Memory {
    Memory { id: id.into(), text: text.into(), score, source: "local".into() }
}

#[tokio::test]
async fn system_prompt_injector_orders_dedupes_and_respects_the_budget() {
    let set = load("plugins:\n  memory_injector: {name: system-prompt-injector, config: {min_score: 0.3}}\n").await;
    let request = |memories, token_budget| InjectRequest {
        api: Api::AnthropicMessages,
        scope: Scope { user: "ana".into(), project: Some("/srv/app".into()), client: None },
        query: "how do we deploy?".into(),
        memories,
        token_budget,
    };
    let memories = vec![
        memory("1", "Deploys go through GitHub Actions.", 0.6),
        memory("2", "The team prefers Rust 2024.", 0.9),
        memory("3", "Deploys go through GitHub Actions.", 0.5),
        memory("4", "Unrelated trivia.", 0.1),
    ];
    let patch = set.inject(&request(memories.clone(), 1000)).await.unwrap().unwrap();
    assert_eq!(patch.position, Position::SystemAppend);
    let lines: Vec<&str> = patch.text.lines().collect();
    assert_eq!(lines.first(), Some(&"<memories>"));
    assert_eq!(lines[2..4], [r#"- "The team prefers Rust 2024.""#, r#"- "Deploys go through GitHub Actions.""#]);
    assert_eq!(lines.last(), Some(&"</memories>"));
    assert!(!patch.text.contains("trivia"), "below min_score");

    let tight = set.inject(&request(memories, 45)).await.unwrap().unwrap();
    assert!(tight.text.len() <= 45 * 4, "{}", tight.text.len());
    assert!(tight.text.contains("Rust 2024") && !tight.text.contains("GitHub"));
    assert!(set.inject(&request(Vec::new(), 1000)).await.unwrap().is_none());
}

#[tokio::test]
async fn injection_patches_the_body_in_the_clients_api() {
    let set =
        load("plugins:\n  memory_injector: {name: system-prompt-injector, config: {position: before-last-user}}\n")
            .await;
    let identity = memory_proxy::core::identity::Identity {
        user: memory_proxy::core::identity::Field {
            value: "ana".into(),
            source: memory_proxy::core::identity::Source::Default,
        },
        project: None,
        client: None,
        scaffolding: Vec::new(),
    };
    let mut body =
        JsonBody::parse(br#"{"model":"m","messages":[{"role":"user","content":"What did I say?"}]}"#).unwrap();
    let memories = vec![memory("1", "Ana likes tea.", 0.9)];
    let patch = memory_proxy::pipeline::inject::patch_for(
        &set,
        ClientApi::OpenAiChat,
        &identity,
        "What did I say?",
        memories,
        500,
    )
    .await
    .unwrap()
    .unwrap();
    memory_proxy::pipeline::inject::apply_patch(ClientApi::OpenAiChat, &mut body, &patch).unwrap();
    let content = body.get::<Value>("messages").unwrap().unwrap()[0]["content"].as_str().unwrap().to_owned();
    assert!(
        content.starts_with("<memories>")
            && content.contains(r#"- "Ana likes tea.""#)
            && content.ends_with("What did I say?")
    );
}

fn context(client_api: Api, provider: &str) -> AdapterContext {
    AdapterContext {
        client_api,
        provider: provider.into(),
        upstream_model: "up-model".into(),
        drop_params: false,
        include_usage: true,
        now: 1_700_000_000,
    }
}

#[tokio::test]
async fn anthropic_adapter_translates_requests_answers_errors_and_streams() {
    let set = load("plugins:\n  provider_adapters: [{name: anthropic-adapter, providers: [anthropic]}]\n").await;
    let adapter = set.adapter_for("anthropic").unwrap();
    let ctx = context(Api::OpenaiChat, "anthropic");
    let request = adapter
        .translate_request(
            &ctx,
            r#"{"model":"alias","messages":[{"role":"system","content":"S"},{"role":"user","content":"Q"}]}"#,
        )
        .await
        .unwrap();
    assert_eq!(request.path, "/v1/messages");
    assert!(request.headers.iter().any(|h| h.name == "anthropic-version"));
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!((body["model"].as_str(), body["system"].as_str()), (Some("up-model"), Some("S")));

    let refused = adapter.translate_request(&ctx, r#"{"model":"m","messages":[],"n":3}"#).await.unwrap_err();
    assert_eq!(refused.param.as_deref(), Some("n"));

    let answer = adapter
        .translate_response(&ctx, r#"{"id":"msg_1","model":"c","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}"#)
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "hi");
    assert_eq!(answer["created"], 1_700_000_000);

    let error = adapter
        .translate_error(&ctx, 529, r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#)
        .await
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&error).unwrap()["error"]["message"], "busy");

    let mut stream = adapter.open_stream(&ctx).await.unwrap();
    let events = [
        (
            "message_start",
            json!({ "type": "message_start", "message": { "id": "m", "model": "c", "usage": { "input_tokens": 2 } } }),
        ),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "Hi" } }),
        ),
        (
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn" }, "usage": { "output_tokens": 1 } }),
        ),
        ("message_stop", json!({ "type": "message_stop" })),
    ];
    let mut out = Vec::new();
    for (name, data) in events {
        out.extend(stream.push(SseEvent::named(name, data.to_string())).await.unwrap());
    }
    let (tail, completed) = stream.finish().await.unwrap();
    assert!(tail.is_empty() && completed);
    assert_eq!(out.last().unwrap().data, "[DONE]");
    let text: String = out
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Hi");
}

#[tokio::test]
async fn openai_and_gemini_adapters_pick_their_output_limit_field() {
    let set = load("plugins:\n  provider_adapters: [{name: openai-adapter, providers: [openai, ollama]}, {name: gemini-adapter, providers: [gemini]}]\n").await;
    let body = r#"{"model":"m","max_tokens":77,"messages":[{"role":"user","content":"Q"}]}"#;
    for (provider, field) in [("openai", "max_completion_tokens"), ("ollama", "max_tokens"), ("gemini", "max_tokens")] {
        let adapter = set.adapter_for(provider).unwrap();
        let request = adapter.translate_request(&context(Api::AnthropicMessages, provider), body).await.unwrap();
        assert_eq!(request.path, "/chat/completions");
        let translated: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(translated[field], 77, "{provider}");
    }
    // An adapter refuses a client API it does not translate.
    let wrong = set.adapter_for("openai").unwrap().translate_request(&context(Api::OpenaiChat, "openai"), body).await;
    assert!(wrong.unwrap_err().message.contains("cannot serve"));
}
