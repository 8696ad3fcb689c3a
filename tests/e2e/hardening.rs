//! Callers and upstreams that misbehave: nothing they do reaches another caller, a
//! provider key goes nowhere but its provider, and the gateway keeps serving.

use e2e::{Gateway, Mock};
use serde_json::{Value, json};

fn hello(model: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": "hello" }] })
}

#[tokio::test]
async fn an_upstream_redirect_is_not_followed_with_the_provider_key() {
    let mock = Mock::start();
    let config = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params: {{model: openai/gpt, api_base: '{}', api_key: sk-provider-SECRET}}\n",
        mock.openai_base()
    );
    let gateway = Gateway::start(&config);
    let elsewhere = format!("{}/stolen/chat/completions", mock.url);
    mock.fault(json!([{ "status": 307, "location": elsewhere }])).await;
    let response = gateway.post("/v1/chat/completions").json(&hello("gpt")).send().await.unwrap();
    assert_eq!(response.status(), 502, "a redirect is the upstream misbehaving");
    let error: Value = response.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("does not follow"), "{error}");
    let paths: Vec<Value> = mock.calls().await.iter().map(|c| c["path"].clone()).collect();
    assert_eq!(paths, [json!("/v1/chat/completions")], "nothing went to the redirect's target");
}

#[tokio::test]
async fn huge_translated_requests_are_refused_without_pausing_the_adapter_for_everyone() {
    let mock = Mock::start();
    let gateway = Gateway::start(&e2e::one_model("gpt", "openai/gpt-up", &mock.openai_base()));
    let huge = "x".repeat(10 << 20);
    let body = json!({ "model": "gpt", "max_tokens": 10, "messages": [{ "role": "user", "content": huge }] });
    for _ in 0..6 {
        let response = gateway.post("/v1/messages").json(&body).send().await.unwrap();
        assert_eq!(response.status(), 413);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["type"], "error", "Anthropic's shape: {error}");
        assert!(error["error"]["message"].as_str().unwrap().contains("raise its memory_mb"), "{error}");
    }
    // Big but within the limit: translated, with the time it takes.
    let big = "word ".repeat(600_000);
    let body = json!({ "model": "gpt", "max_tokens": 10, "messages": [{ "role": "user", "content": big }] });
    assert_eq!(gateway.post("/v1/messages").json(&body).send().await.unwrap().status(), 200);
    let body = json!({ "model": "gpt", "max_tokens": 10, "messages": [{ "role": "user", "content": "hello" }] });
    assert_eq!(gateway.post("/v1/messages").json(&body).send().await.unwrap().status(), 200);
    let view: Value = gateway.get("/admin/plugins").send().await.unwrap().json().await.unwrap();
    let adapter = view["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "openai-adapter").unwrap();
    assert_eq!(adapter["paused"], false, "{adapter}");
    assert_eq!(mock.calls().await.len(), 2, "the refused ones never went upstream");
}

#[tokio::test]
async fn past_the_in_flight_cap_a_request_is_told_to_retry_instead_of_queueing() {
    let mock = Mock::start_with(&["--latency-ms", "800"]);
    let config = format!(
        "{}general_settings:\n  global_max_parallel_requests: 2\n",
        e2e::one_model("gpt", "openai/gpt-up", &mock.openai_base())
    );
    let gateway = Gateway::start(&config);
    let send = || gateway.post("/v1/chat/completions").json(&hello("gpt")).send();
    let (a, b) = (tokio::spawn(send()), tokio::spawn(send()));
    // Both are in flight once the mock has them.
    e2e::wait_for(std::time::Duration::from_secs(5), || async { (mock.requests().await.len() == 2).then_some(()) })
        .await
        .expect("two requests in flight");
    let refused = send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "gateway_overloaded", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("global_max_parallel_requests"));
    assert_eq!(a.await.unwrap().unwrap().status(), 200);
    assert_eq!(b.await.unwrap().unwrap().status(), 200);
    assert_eq!(send().await.unwrap().status(), 200, "places are given back");
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mock = Mock::start();
    let config = format!(
        "{}general_settings:\n  request_body_timeout: 0.5\n",
        e2e::one_model("gpt", "openai/gpt-up", &mock.openai_base())
    );
    let gateway = Gateway::start(&config);
    let address = gateway.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\"";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the gateway answered and closed rather than waiting");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_body_timeout"), "{answer}");
    assert!(mock.calls().await.is_empty());
}

#[tokio::test]
async fn hostile_bodies_get_a_400_naming_the_problem_and_pause_nothing() {
    let mock = Mock::start();
    let gateway = Gateway::start(&e2e::one_model("gpt", "openai/gpt-up", &mock.openai_base()));
    // 80,000 distinct top-level keys in 1 MB (the duplicate check was quadratic).
    let fields: Vec<String> = (0..80_000).map(|i| format!("\"k{i}\":1")).collect();
    let wide = format!("{{\"model\":\"gpt\",\"messages\":[],{}}}", fields.join(","));
    let response = gateway
        .post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(wide)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("top-level fields, the limit"), "{error}");

    // Nested past any parser's depth, to a translated model: the adapter refuses it
    // as the caller's mistake, however often it comes.
    let deep = format!("{}\"x\"{}", "[".repeat(5_000), "]".repeat(5_000));
    let body = format!(
        "{{\"model\":\"gpt\",\"max_tokens\":5,\"messages\":[{{\"role\":\"user\",\"content\":\"hi\",\"extra\":{deep}}}]}}"
    );
    for _ in 0..8 {
        let response = gateway
            .post("/v1/messages")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{}", response.text().await.unwrap());
    }
    let ok = json!({ "model": "gpt", "max_tokens": 5, "messages": [{ "role": "user", "content": "hello" }] });
    assert_eq!(gateway.post("/v1/messages").json(&ok).send().await.unwrap().status(), 200, "the adapter still serves");
    assert_eq!(mock.calls().await.len(), 1);
}

#[tokio::test]
async fn names_made_up_for_a_wildcard_group_do_not_grow_the_metrics() {
    let mock = Mock::start();
    let gateway = Gateway::start(&e2e::one_model("claude-*", "anthropic/claude-*", &mock.url));
    for i in 0..20 {
        let body = json!({ "model": format!("claude-made-up-{i}"), "max_tokens": 5,
            "messages": [{ "role": "user", "content": "hi" }] });
        assert_eq!(gateway.post("/v1/messages").json(&body).send().await.unwrap().status(), 200);
    }
    let metrics = e2e::wait_for(std::time::Duration::from_secs(5), || async {
        let text = gateway.get("/metrics").send().await.unwrap().text().await.unwrap();
        text.contains("memory_proxy_requests_total{").then_some(text)
    })
    .await
    .expect("metrics are rendered");
    assert!(metrics.contains("model=\"claude-*\""), "{metrics}");
    assert!(!metrics.contains("claude-made-up"), "one label per group, not per name asked for");
}

#[tokio::test]
async fn cookies_an_upstream_sets_for_one_forwarding_caller_never_reach_another() {
    let mock = Mock::start();
    let config = format!(
        "model_list:
  - model_name: claude
    litellm_params: {{model: anthropic/claude-up, api_base: '{}', forward_client_auth: true}}
general_settings:
  master_key: sk-gateway
",
        mock.url
    );
    let gateway = Gateway::start(&config);
    let body = json!({ "model": "claude", "max_tokens": 5, "messages": [{ "role": "user", "content": "hi" }] });
    let as_caller = |token: &str| {
        gateway
            .post("/v1/messages")
            .header("x-memory-proxy-key", "sk-gateway")
            .header("authorization", format!("Bearer {token}"))
            .json(&body)
            .send()
    };
    mock.fault(json!([{ "set_cookie": "session=of-ana; Path=/" }])).await;
    assert_eq!(as_caller("oauth-ana").await.unwrap().status(), 200);
    assert_eq!(as_caller("oauth-bo").await.unwrap().status(), 200);
    assert_eq!(as_caller("oauth-ana").await.unwrap().status(), 200);
    let calls = mock.calls().await;
    let cookie = |i: usize| calls[i]["headers"].get("cookie").cloned();
    assert_eq!(calls[1]["headers"]["authorization"], "Bearer oauth-bo");
    assert_eq!(cookie(1), None, "Bo never gets Ana's cookie");
    assert_eq!(cookie(2), Some(json!("session=of-ana")), "Ana keeps hers");
}

#[tokio::test]
async fn a_stream_that_never_ends_is_cut_off_at_the_deployments_timeout() {
    // Each chunk comes well within stream_timeout, but the whole would take 9 s.
    let mock = Mock::start_with(&["--chunk-delay-ms", "300"]);
    let config = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params: {{model: openai/gpt-up, api_base: '{}', timeout: 1.5, stream_timeout: 1}}\n",
        mock.openai_base()
    );
    let gateway = Gateway::start(&config);
    let words = "word ".repeat(30);
    let body = json!({ "model": "gpt", "stream": true, "messages": [{ "role": "user", "content": words }] });
    let started = std::time::Instant::now();
    let text = gateway.post("/v1/chat/completions").json(&body).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("was not over within the timeout"), "a well-formed error event ends it: {text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "it did not run to the end");
}
