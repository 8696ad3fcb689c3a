//! The analytics databank: one record per request of every API kind with the right
//! tokens, cost and timings; summaries that agree with the raw rows; records that
//! survive restarts and crashes; metrics; feedback; the report command; a full queue
//! that drops instead of blocking.

use std::time::Duration;

use e2e::{Gateway, Launch, Mock, TempDir, sse_events, wait_for};
use serde_json::{Value, json};

/// A gateway with a priced OpenAI-style model (its own prices), a model priced by the
/// shipped table (gpt-4o), an Anthropic model and an unpriced one, all on one mock.
fn config(mock: &Mock) -> String {
    format!(
        "model_list:
  - model_name: priced
    litellm_params: {{model: openai/priced-up, api_base: '{base}'}}
    model_info: {{input_cost_per_token: 0.000002, output_cost_per_token: 0.00001, cache_read_input_token_cost: 0.0000005}}
  - model_name: gpt-4o
    litellm_params: {{model: openai/gpt-4o, api_base: '{base}'}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: '{url}'}}
  - model_name: free
    litellm_params: {{model: openai/mystery, api_base: '{base}'}}
",
        base = mock.openai_base(),
        url = mock.url
    )
}

async fn records(gateway: &Gateway, query: &str, expected: usize) -> Vec<Value> {
    let found = wait_for(Duration::from_secs(5), || async {
        let page: Value =
            gateway.get(&format!("/analytics/requests?limit=1000{query}")).send().await.unwrap().json().await.unwrap();
        let rows = page["requests"].as_array().cloned().unwrap_or_default();
        (rows.len() >= expected).then_some(rows)
    })
    .await;
    found.unwrap_or_else(|| panic!("{expected} records did not arrive"))
}

fn chat(model: &str, stream: bool) -> Value {
    json!({ "model": model, "stream": stream, "messages": [{ "role": "user", "content": "count my tokens please" }] })
}

#[tokio::test]
async fn every_api_kind_is_recorded_with_tokens_cost_and_timings() {
    let mock = Mock::start_with(&["--cached-tokens", "100"]);
    let gateway = Gateway::start(&config(&mock));
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", gateway.url))
            .header("x-memory-user-id", "ana")
            .header("x-memory-project", "shop")
            .json(&body)
            .send()
    };

    let whole: Value = post("/v1/chat/completions", chat("priced", false)).await.unwrap().json().await.unwrap();
    let streamed = post("/v1/chat/completions", chat("priced", true)).await.unwrap().text().await.unwrap();
    post("/v1/chat/completions", chat("gpt-4o", false)).await.unwrap();
    post(
        "/v1/messages",
        json!({ "model": "claude", "max_tokens": 50, "messages": [{ "role": "user", "content": "hi" }] }),
    )
    .await
    .unwrap();
    post("/v1/messages", json!({ "model": "claude", "max_tokens": 50, "stream": true, "messages": [{ "role": "user", "content": "hi" }] }))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    post("/v1/responses", json!({ "model": "priced", "input": "hello" })).await.unwrap();
    post("/v1/embeddings", json!({ "model": "priced", "input": ["a", "b"] })).await.unwrap();
    post("/v1/messages/count_tokens", json!({ "model": "claude", "messages": [{ "role": "user", "content": "hi" }] }))
        .await
        .unwrap();
    post("/v1/chat/completions", chat("free", false)).await.unwrap();
    post("/v1/chat/completions", chat("nope", false)).await.unwrap();

    let rows = records(&gateway, "", 10).await;
    assert_eq!(rows.len(), 10, "one record per request");
    let by_api: Vec<(&str, &str)> =
        rows.iter().rev().map(|r| (r["api"].as_str().unwrap(), r["model"].as_str().unwrap())).collect();
    assert_eq!(
        by_api,
        [
            ("openai.chat", "priced"),
            ("openai.chat", "priced"),
            ("openai.chat", "gpt-4o"),
            ("anthropic.messages", "claude"),
            ("anthropic.messages", "claude"),
            ("openai.responses", "priced"),
            ("openai.embeddings", "priced"),
            ("anthropic.count_tokens", "claude"),
            ("openai.chat", "free"),
            ("openai.chat", "nope"),
        ]
    );
    for row in &rows {
        assert_eq!((row["user"].as_str(), row["project"].as_str()), (Some("ana"), Some("shop")), "{row}");
        assert!(row["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(row["id"].as_str().unwrap().len() == 36);
    }
    let oldest_first: Vec<&Value> = rows.iter().rev().collect();

    // Non-streamed chat: the provider's usage, cached tokens priced apart.
    let chat_row = oldest_first[0];
    let usage = &whole["usage"];
    assert_eq!(chat_row["input_tokens"], usage["prompt_tokens"]);
    assert_eq!(chat_row["output_tokens"], usage["completion_tokens"]);
    assert_eq!(chat_row["cached_tokens"], 100);
    let (input, output) = (usage["prompt_tokens"].as_f64().unwrap(), usage["completion_tokens"].as_f64().unwrap());
    let expected = (input - 100.0) * 0.000002 + 100.0 * 0.0000005 + output * 0.00001;
    assert!((chat_row["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-12, "{chat_row}");
    assert_eq!(chat_row["tokens_estimated"], false);
    assert_eq!(chat_row["stream"], false);
    assert_eq!(chat_row["deployment"], "model_list[0]");
    assert_eq!(chat_row["upstream_model"], "priced-up");
    assert!(chat_row["overhead_ms"].as_f64().unwrap() >= 0.0 && chat_row["upstream_ms"].as_f64().is_some());

    // Streamed chat: the gateway asked for usage, recorded it, and kept the extra chunk
    // from a client that had not asked.
    let stream_row = oldest_first[1];
    assert_eq!(stream_row["stream"], true);
    assert!(stream_row["ttft_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(stream_row["input_tokens"], chat_row["input_tokens"]);
    assert!(stream_row["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(stream_row["finish_reason"], "stop");
    assert!(!streamed.contains("\"usage\""), "no usage chunk for a client that did not ask");
    assert_eq!(sse_events(&streamed).last().unwrap().1, "[DONE]");
    assert_eq!(mock.calls().await[1]["body"]["stream_options"], json!({ "include_usage": true }));

    // gpt-4o is priced by the shipped table (2.5 $ / 10 $ per million, cached 1.25 $).
    let table_row = oldest_first[2];
    let (input, output) = (table_row["input_tokens"].as_f64().unwrap(), table_row["output_tokens"].as_f64().unwrap());
    let expected = (input - 100.0) * 2.5e-6 + 100.0 * 1.25e-6 + output * 1e-5;
    assert!((table_row["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-12, "{table_row}");

    // Anthropic: cache reads counted into the input, as OpenAI counts them.
    for row in &oldest_first[3..5] {
        assert_eq!(row["cached_tokens"], 100);
        assert!(row["input_tokens"].as_u64().unwrap() > 100);
        assert_eq!(row["finish_reason"], "end_turn");
        assert!(row["cost_usd"].as_f64().unwrap() > 0.0);
    }
    assert!(oldest_first[4]["ttft_ms"].as_f64().is_some());
    assert!(oldest_first[5]["output_tokens"].as_u64().unwrap() > 0, "Responses usage");
    assert!(oldest_first[6]["input_tokens"].as_u64().unwrap() > 0, "embeddings usage");
    assert_eq!(oldest_first[7]["cost_usd"], 0.0, "count_tokens costs nothing");
    assert!(oldest_first[8]["cost_usd"].is_null(), "an unknown model's cost is unknown, not zero");
    let failed = oldest_first[9];
    assert_eq!((failed["status"].as_u64(), failed["error"].as_str()), (Some(404), Some("model_not_found")));
}

#[tokio::test]
async fn summaries_agree_with_the_raw_rows() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock));
    let client = reqwest::Client::new();
    for (i, (user, project, model)) in
        [("ana", "shop", "priced"), ("ana", "blog", "priced"), ("bo", "shop", "gpt-4o"), ("bo", "shop", "free")]
            .iter()
            .cycle()
            .take(24)
            .enumerate()
    {
        let mut request = client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .header("x-memory-user-id", *user)
            .header("x-memory-project", *project);
        if i % 5 == 0 {
            request = request.header("user-agent", "OpenAI/Python 1.99.0");
        }
        request.json(&chat(model, i % 3 == 0)).send().await.unwrap().text().await.unwrap();
    }
    let rows = records(&gateway, "", 24).await;
    for group_by in ["user", "project", "model", "client", "day"] {
        let summary: Value =
            gateway.get(&format!("/analytics/summary?group_by={group_by}")).send().await.unwrap().json().await.unwrap();
        let groups = summary["groups"].as_array().unwrap();
        assert_eq!(summary["requests"], 24);
        for group in groups {
            let name = group["group"].as_str().unwrap();
            let members: Vec<&Value> = rows
                .iter()
                .filter(|r| match group_by {
                    "day" => r["started_at"].as_str().unwrap().starts_with(name),
                    field => r[field].as_str().unwrap_or("") == name,
                })
                .collect();
            let sum = |field: &str| members.iter().map(|r| r[field].as_i64().unwrap_or(0)).sum::<i64>();
            assert_eq!(group["requests"].as_i64().unwrap(), members.len() as i64, "{group_by} {name}");
            assert_eq!(group["input_tokens"].as_i64().unwrap(), sum("input_tokens"), "{group_by} {name}");
            assert_eq!(group["output_tokens"].as_i64().unwrap(), sum("output_tokens"), "{group_by} {name}");
            let cost: f64 = members.iter().filter_map(|r| r["cost_usd"].as_f64()).sum();
            assert!((group["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9, "{group_by} {name}");
            let unpriced = members.iter().filter(|r| r["cost_usd"].is_null()).count() as i64;
            assert_eq!(group["unpriced_requests"].as_i64().unwrap(), unpriced);
            // Percentiles come from a histogram: within one bucket (6.25%) above the truth.
            let mut latencies: Vec<f64> = members.iter().map(|r| r["latency_ms"].as_f64().unwrap()).collect();
            latencies.sort_by(f64::total_cmp);
            let truth = latencies[((latencies.len() as f64 * 0.5).ceil() as usize).max(1) - 1];
            let p50 = group["latency_ms_p50"].as_f64().unwrap();
            assert!(p50 >= truth * 0.999 && p50 <= truth * 1.07 + 0.002, "{group_by} {name}: p50 {p50} vs {truth}");
        }
    }
    let ana: Value =
        gateway.get("/analytics/summary?group_by=project&user=ana").send().await.unwrap().json().await.unwrap();
    assert_eq!(ana["requests"], 12, "filters narrow the scope");
    let clients: Value = gateway.get("/analytics/summary?group_by=client").send().await.unwrap().json().await.unwrap();
    assert!(clients["groups"].as_array().unwrap().iter().any(|g| g["group"] == "openai-python"));

    // The log, page by page: newest first, every record once.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value =
            gateway.get(&format!("/analytics/requests?limit=5{cursor}")).send().await.unwrap().json().await.unwrap();
        paged.extend(page["requests"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&before={next}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(paged, newest_first);
    assert!(paged.windows(2).all(|w| w[0] > w[1]), "ids sort by time");
}

#[tokio::test]
async fn records_survive_a_restart_and_a_crash() {
    let mock = Mock::start();
    let dir = TempDir::new();
    let launch = || Gateway::launch(&config(&mock), Launch { dir: Some(&dir.path), ..Launch::default() }).unwrap();
    let send = |gateway: &Gateway, n: usize| {
        let url = format!("{}/v1/chat/completions", gateway.url);
        async move {
            for _ in 0..n {
                reqwest::Client::new().post(&url).json(&chat("priced", false)).send().await.unwrap();
            }
        }
    };
    let mut gateway = launch();
    send(&gateway, 5).await;
    // Graceful: SIGTERM flushes whatever is queued.
    assert_eq!(gateway.terminate(), Some(0));
    let mut gateway = launch();
    assert_eq!(records(&gateway, "", 5).await.len(), 5);
    send(&gateway, 3).await;
    // A crash loses at most what was not yet committed (the last batch window): once
    // the three are in the databank, a SIGKILL loses nothing.
    records(&gateway, "", 8).await;
    gateway.kill();
    let gateway = launch();
    assert_eq!(records(&gateway, "", 8).await.len(), 8);
}

#[tokio::test]
async fn feedback_spend_logs_and_metrics() {
    let mock = Mock::start();
    let gateway = Gateway::start(&config(&mock));
    let response = gateway.post("/v1/chat/completions").json(&chat("priced", false)).send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let stored: Value = gateway
        .post("/v1/feedback")
        .json(&json!({ "request_id": id, "score": 0.25, "comment": "too long" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["stored"], true);
    let row = &records(&gateway, "", 1).await[0];
    assert_eq!(row["feedback"], json!({ "score": 0.25, "comment": "too long" }));
    let unknown = gateway.post("/v1/feedback").json(&json!({ "request_id": "nope", "score": 1 })).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    let logs: Value = gateway.get(&format!("/spend/logs?request_id={id}")).send().await.unwrap().json().await.unwrap();
    let entry = &logs.as_array().unwrap()[0];
    assert_eq!(entry["request_id"], id);
    assert_eq!(entry["call_type"], "openai.chat");
    assert!(entry["spend"].as_f64().unwrap() > 0.0);
    assert_eq!(
        entry["total_tokens"],
        entry["prompt_tokens"].as_i64().unwrap() + entry["completion_tokens"].as_i64().unwrap()
    );

    let text = gateway.get("/metrics").send().await.unwrap().text().await.unwrap();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        // Prometheus text format: name{labels} value
        let (name_and_labels, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line}"));
        value.parse::<f64>().unwrap_or_else(|_| panic!("bad value in {line}"));
        let name = name_and_labels.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "{line}");
        seen.insert(name.to_owned());
    }
    for metric in [
        "memory_proxy_requests_total",
        "memory_proxy_request_duration_seconds_bucket",
        "memory_proxy_tokens_total",
        "memory_proxy_cost_microdollars_total",
        "memory_proxy_plugin_calls_total",
        "memory_proxy_plugin_failures_total",
        "memory_proxy_analytics_queue_depth",
        "memory_proxy_analytics_dropped_total",
    ] {
        assert!(seen.contains(metric), "{metric} missing from:\n{text}");
    }
    assert!(
        text.contains("memory_proxy_requests_total{api=\"openai.chat\",model=\"priced\",status=\"200\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let mock = Mock::start();
    let gateway = Gateway::start(&format!("{}general_settings:\n  analytics_queue_size: 1\n", config(&mock)));
    let url = format!("{}/v1/chat/completions", gateway.url);
    let mut tasks = Vec::new();
    for _ in 0..60 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new().post(url).json(&chat("priced", false)).send().await.unwrap().status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200, "every request is served");
    }
    let text = gateway.get("/metrics").send().await.unwrap().text().await.unwrap();
    let dropped: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("memory_proxy_analytics_dropped_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(dropped > 0.0, "some records were dropped and counted");
    // Every request is either recorded (once its batch commits) or counted as dropped.
    let settled = wait_for(Duration::from_secs(5), || async {
        let summary: Value = gateway.get("/analytics/summary").send().await.unwrap().json().await.unwrap();
        (summary["requests"].as_f64().unwrap() + summary["queue"]["dropped"].as_f64().unwrap() == 60.0)
            .then_some(summary)
    })
    .await
    .expect("recorded + dropped = served");
    assert_eq!(settled["queue"]["dropped"].as_f64(), Some(dropped));
}

#[tokio::test]
async fn the_report_command_answers_what_a_project_cost() {
    let mock = Mock::start();
    let dir = TempDir::new();
    let config = config(&mock);
    let mut gateway = Gateway::launch(&config, Launch { dir: Some(&dir.path), ..Launch::default() }).unwrap();
    for (project, client) in
        [("shop", "OpenAI/Python 1.0"), ("shop", "claude-cli/2.1.197 (external, cli)"), ("blog", "curl/8")]
    {
        gateway
            .post("/v1/chat/completions")
            .header("x-memory-project", project)
            .header("user-agent", client)
            .json(&chat("priced", false))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(gateway.terminate(), Some(0));
    let output = std::process::Command::new(e2e::bin("memory-proxy"))
        .args(["report", "--by", "project", "--since", "1d", "--config"])
        .arg(dir.path.join("config.yaml"))
        .env("MEMORY_PROXY_PLUGINS_DIR", e2e::plugins_dist())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8(output.stdout).unwrap();
    let shop = table.lines().find(|l| l.starts_with("shop ")).unwrap_or_else(|| panic!("{table}"));
    let columns: Vec<&str> = shop.split_whitespace().collect();
    assert_eq!(columns[1], "2", "two requests for shop, from two clients: {table}");
    assert!(columns[4].parse::<f64>().unwrap() > 0.0);
    assert!(table.lines().any(|l| l.starts_with("blog ")));
    assert!(table.lines().last().unwrap().starts_with("total"));
}

/// Requests that do not end well are recorded all the same: a client that hangs up
/// while the gateway waits on the upstream, one that hangs up mid-stream (its tokens
/// estimated and paid, so leaving early is no way around a budget), and a stream the
/// upstream broke off (status 200 already sent, counted as an error).
#[tokio::test]
async fn requests_cut_short_are_recorded_and_paid() {
    let mock = Mock::start_with(&["--chunk-delay-ms", "100"]);
    let gateway = Gateway::start(&config(&mock));
    let url = format!("{}/v1/chat/completions", gateway.url);

    mock.fault(json!([{ "delay_ms": 3000 }])).await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    assert!(impatient.post(&url).json(&chat("priced", false)).send().await.is_err());

    let response = reqwest::Client::new().post(&url).json(&chat("priced", true)).send().await.unwrap();
    let mut body = response.bytes_stream();
    futures_util::StreamExt::next(&mut body).await.unwrap().unwrap();
    drop(body);

    mock.fault(json!([{ "drop_after_events": 2 }])).await;
    let broken = reqwest::Client::new().post(&url).json(&chat("priced", true)).send().await.unwrap();
    assert_eq!(broken.status(), 200);
    assert!(broken.text().await.unwrap().contains("error"));

    let rows = records(&gateway, "", 3).await;
    let (broken, mid_stream, waiting) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!((waiting["status"].as_u64(), waiting["error"].as_str()), (Some(499), Some("client_disconnected")));
    assert_eq!(waiting["stream"], false);

    assert_eq!((mid_stream["status"].as_u64(), mid_stream["error"].as_str()), (Some(499), Some("client_disconnected")));
    assert_eq!(mid_stream["tokens_estimated"], true, "{mid_stream}");
    assert!(mid_stream["cost_usd"].as_f64().unwrap() > 0.0, "{mid_stream}");

    assert_eq!((broken["status"].as_u64(), broken["error"].as_str()), (Some(200), Some("stream_incomplete")));
    let summary: Value = gateway.get("/analytics/summary?group_by=model").send().await.unwrap().json().await.unwrap();
    assert_eq!(summary["groups"][0]["errors"], 3, "{summary}");
}
