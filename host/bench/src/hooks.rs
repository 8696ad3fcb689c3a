//! Cost per call of each built-in plugin hook, in process, on realistic inputs: the
//! recorded Claude Code request (~115 KB) and Codex request, a small SDK request, ten
//! memories to inject, a chat answer and stream events to translate.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use http::{HeaderMap, HeaderName, HeaderValue};
use memory_proxy::config::Config;
use memory_proxy::core::api::ClientApi;
use memory_proxy::core::body::JsonBody;
use memory_proxy::core::sse::SseEvent;
use memory_proxy::plugins::hooks::{AdapterContext, Api, DetectRequest, Header, InjectRequest, Memory, Scope};
use memory_proxy::plugins::{PluginHost, PluginSet};
use serde_json::{Value, json};

struct Recorded {
    api: ClientApi,
    headers: HeaderMap,
    body: JsonBody,
    size: usize,
}

fn recorded(root: &Path, name: &str, api: ClientApi) -> Result<Recorded> {
    let text =
        std::fs::read_to_string(root.join("tests/fixtures").join(name)).with_context(|| format!("fixture {name}"))?;
    let value: Value = serde_json::from_str(&text)?;
    let mut headers = HeaderMap::new();
    for (name, value) in value["headers"].as_object().context("headers")? {
        headers
            .insert(HeaderName::try_from(name.as_str())?, HeaderValue::try_from(value.as_str().unwrap_or_default())?);
    }
    let body = value["body"].to_string();
    Ok(Recorded {
        api,
        headers,
        size: body.len(),
        body: JsonBody::parse(body.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?,
    })
}

fn detect_request(recorded: &Recorded) -> DetectRequest {
    let (system_excerpt, user_excerpt) = memory_proxy::core::prompt::excerpts(recorded.api, &recorded.body);
    DetectRequest {
        api: recorded.api.into(),
        model: recorded.body.get::<String>("model").ok().flatten().unwrap_or_default(),
        headers: recorded
            .headers
            .iter()
            .map(|(n, v)| Header { name: n.as_str().to_owned(), value: v.to_str().unwrap_or_default().to_owned() })
            .collect(),
        system_excerpt,
        user_excerpt,
    }
}

/// Runs `call` `iterations` times after a warm-up; returns p50 and p99.
async fn measure<F: AsyncFnMut() -> Result<()>>(iterations: usize, mut call: F) -> Result<(Duration, Duration)> {
    for _ in 0..iterations.min(200) {
        call().await?;
    }
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        call().await?;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok((times[times.len() / 2], times[(times.len() * 99 / 100).min(times.len() - 1)]))
}

fn only(set: &PluginSet, name: &str) -> PluginSet {
    PluginSet {
        detectors: set.detectors.iter().filter(|p| p.name() == name).cloned().collect(),
        ..PluginSet::default()
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

pub async fn run(root: &Path, plugin_dir: &Path, iterations: usize) -> Result<()> {
    let dir = plugin_dir.display().to_string();
    let lookup = move |var: &str| (var == "MEMORY_PROXY_PLUGINS_DIR").then(|| dir.clone());
    let config = Config::parse(
        "user_id_mappings:\n  header_patterns:\n    - {header: user-agent, pattern: 'OpenAIClientImpl/Java', user_id: pycharm-ai}\n    - {header: user-agent, pattern: 'claude-cli', user_id: claude-cli}\n",
        &lookup,
        Path::new("."),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .config;
    let host = PluginHost::new(&config.plugins)?;
    let set = host.load_set(&config.plugins, None).await;
    anyhow::ensure!(set.problems.is_empty(), "plugins did not load: {:?}", set.problems);

    let claude = recorded(root, "claude-code-2.1.197.json", ClientApi::AnthropicMessages)?;
    let codex = recorded(root, "codex-0.171.0.json", ClientApi::OpenAiResponses)?;
    let small = DetectRequest {
        api: Api::OpenaiChat,
        model: "gpt-4o".into(),
        headers: vec![Header { name: "user-agent".into(), value: "OpenAI/Python 1.99.0".into() }],
        system_excerpt: "You are a helpful assistant.".into(),
        user_excerpt: "What is the capital of France?".into(),
    };
    let claude_request = detect_request(&claude);
    let codex_request = detect_request(&codex);

    println!("## Plugin hooks, cost per call ({iterations} calls each, after a warm-up)\n");
    println!("| hook | input | p50 | p99 |");
    println!("|---|---|---|---|");
    let row = |hook: &str, input: &str, (p50, p99): (Duration, Duration)| {
        println!("| {hook} | {input} | {} | {} |", us(p50), us(p99))
    };

    let kb = |r: &Recorded| format!("{:.0} KB", r.size as f64 / 1024.0);
    row(
        "host: prompt excerpt",
        &format!("Claude Code request, {}", kb(&claude)),
        measure(iterations, async || {
            std::hint::black_box(memory_proxy::core::prompt::excerpts(claude.api, &claude.body));
            Ok(())
        })
        .await?,
    );
    for (name, input, request) in [
        ("claude-code-detector", format!("Claude Code request, {}", kb(&claude)), &claude_request),
        ("codex-detector", format!("Codex request, {}", kb(&codex)), &codex_request),
        ("header-detector", format!("Claude Code request, {}", kb(&claude)), &claude_request),
        ("header-detector", "openai SDK request".to_owned(), &small),
    ] {
        let single = only(&set, name);
        row(
            name,
            &input,
            measure(iterations, async || single.detect(request).await.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}")))
                .await?,
        );
    }
    for (input, request) in [("Claude Code request", &claude_request), ("openai SDK request", &small)] {
        row(
            "all three detectors (chain)",
            input,
            measure(iterations, async || set.detect(request).await.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}")))
                .await?,
        );
    }

    let memories: Vec<Memory> = (0..10)
        .map(|i| Memory {
            id: format!("m{i}"),
            text: format!("Memory number {i}: the team deploys with GitHub Actions and prefers small pull requests."),
            score: 1.0 - i as f32 * 0.05,
            source: "local".into(),
        })
        .collect();
    let inject = InjectRequest {
        api: Api::AnthropicMessages,
        scope: Scope { user: "ana".into(), project: Some("/srv/app".into()), client: Some("claude-code".into()) },
        query: "how do we deploy?".into(),
        memories,
        token_budget: 1000,
    };
    row(
        "system-prompt-injector",
        "10 memories, 1000-token budget",
        measure(iterations, async || set.inject(&inject).await.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))).await?,
    );

    let adapter = set.adapter_for("anthropic").context("anthropic adapter")?;
    let context = AdapterContext {
        client_api: Api::OpenaiChat,
        provider: "anthropic".into(),
        upstream_model: "claude-sonnet-4-5".into(),
        drop_params: true,
        include_usage: true,
        now: 1_700_000_000,
    };
    let chat = json!({ "model": "claude", "messages": [
        { "role": "system", "content": "You are a helpful assistant that answers briefly." },
        { "role": "user", "content": "What is the capital of France? Please answer in one short sentence." }
    ], "max_tokens": 64 })
    .to_string();
    row(
        "anthropic-adapter: request",
        "OpenAI chat request, 240 B",
        measure(iterations, async || {
            adapter.translate_request(&context, &chat).await.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .await?,
    );
    let answer = json!({ "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{ "type": "text", "text": "Paris is the capital of France." }], "stop_reason": "end_turn",
        "usage": { "input_tokens": 30, "output_tokens": 9 } })
    .to_string();
    row(
        "anthropic-adapter: answer",
        "Anthropic message, 250 B",
        measure(iterations, async || {
            adapter.translate_response(&context, &answer).await.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .await?,
    );
    let mut stream = adapter.open_stream(&context).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let delta =
        json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "Paris " } })
            .to_string();
    row(
        "anthropic-adapter: stream event",
        "one text delta",
        measure(iterations, async || {
            stream
                .push(SseEvent::named("content_block_delta", delta.clone()))
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .await?,
    );
    let openai = set.adapter_for("openai").context("openai adapter")?;
    let anthropic_body = claude.body.to_bytes_with(&[("model", "\"gpt-4o\"")]);
    let openai_context = AdapterContext { client_api: Api::AnthropicMessages, provider: "openai".into(), ..context };
    let claude_text = String::from_utf8_lossy(&anthropic_body).into_owned();
    row(
        "openai-adapter: request",
        &format!("Claude Code request, {}", kb(&claude)),
        measure(iterations.min(500), async || {
            openai
                .translate_request(&openai_context, &claude_text)
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .await?,
    );
    println!();
    Ok(())
}
