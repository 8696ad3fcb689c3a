//! Retries, load balancing, fallbacks, and what the client hears when the upstream
//! cannot be reached or is too slow.

use std::time::{Duration, Instant};

use e2e::{Gateway, Mock, one_model};
use serde_json::{Value, json};

fn chat(model: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] })
}

#[tokio::test]
async fn retries_5xx_and_429_until_the_upstream_answers() {
    let mock = Mock::start();
    let gateway = Gateway::start(&format!(
        "{}router_settings:\n  num_retries: 3\n",
        one_model("m", "openai/up", &mock.openai_base())
    ));
    mock.fault(json!([{ "status": 503 }, { "status": 429 }, { "status": 500 }])).await;
    let response = gateway.post("/v1/chat/completions").json(&chat("m")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(mock.calls().await.len(), 4, "three failures, then success");
}

#[tokio::test]
async fn gives_up_after_num_retries_and_returns_the_upstream_status() {
    let mock = Mock::start();
    let gateway = Gateway::start(&format!(
        "{}router_settings:\n  num_retries: 1\n",
        one_model("m", "openai/up", &mock.openai_base())
    ));
    mock.fault(json!([{ "status": 503, "times": 5, "retry_after": "0" }])).await;
    let response = gateway.post("/v1/chat/completions").json(&chat("m")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "0", "the upstream's retry hint is passed on");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "mock fault: status 503");
    assert_eq!(mock.calls().await.len(), 2);
}

#[tokio::test]
async fn does_not_retry_a_client_error() {
    let mock = Mock::start();
    let gateway = Gateway::start(&one_model("m", "openai/up", &mock.openai_base()));
    mock.fault(json!([{ "status": 422 }])).await;
    let response = gateway.post("/v1/chat/completions").json(&chat("m")).send().await.unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(mock.calls().await.len(), 1);
}

#[tokio::test]
async fn balances_load_across_deployments_of_one_model() {
    let (a, b) = (Mock::start(), Mock::start());
    let config = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: '{}'}}\n  - model_name: m\n    litellm_params: {{model: openai/b, api_base: '{}'}}\n",
        a.openai_base(),
        b.openai_base()
    );
    let gateway = Gateway::start(&config);
    for _ in 0..60 {
        let response = gateway.post("/v1/chat/completions").json(&chat("m")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let (served_a, served_b) = (a.calls().await.len(), b.calls().await.len());
    assert_eq!(served_a + served_b, 60);
    assert!(served_a >= 15 && served_b >= 15, "both deployments serve: {served_a} / {served_b}");
}

#[tokio::test]
async fn a_failing_deployment_is_retried_on_its_sibling() {
    let good = Mock::start();
    let config = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/dead, api_base: 'http://127.0.0.1:9/v1'}}\n  - model_name: m\n    litellm_params: {{model: openai/alive, api_base: '{}'}}\nrouter_settings:\n  num_retries: 1\n",
        good.openai_base()
    );
    let gateway = Gateway::start(&config);
    for _ in 0..10 {
        let response = gateway.post("/v1/chat/completions").json(&chat("m")).send().await.unwrap();
        assert_eq!(response.status(), 200, "a connection refused on one deployment is retried on the other");
    }
    assert_eq!(good.calls().await.len(), 10);
}

#[tokio::test]
async fn falls_back_to_another_model_group() {
    let (primary, backup) = (Mock::start(), Mock::start());
    let config = format!(
        "model_list:\n  - model_name: primary\n    litellm_params: {{model: openai/p, api_base: '{}'}}\n  - model_name: backup\n    litellm_params: {{model: anthropic/b, api_base: '{}'}}\nlitellm_settings:\n  num_retries: 0\n  fallbacks: [{{primary: [backup]}}]\n",
        primary.openai_base(),
        backup.url
    );
    let gateway = Gateway::start(&config);
    primary.fault(json!([{ "status": 500 }])).await;
    let response = gateway.post("/v1/chat/completions").json(&chat("primary")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"], "Hello from the mock model b. You said: hi",
        "answered by the backup, translated"
    );
    assert_eq!(primary.calls().await.len(), 1);
    assert_eq!(backup.calls().await[0]["path"], "/v1/messages");
    assert!(gateway.logs().contains("falling back to another model group"));
}

#[tokio::test]
async fn falls_back_to_and_from_models_a_wildcard_group_serves() {
    let (primary, backup) = (Mock::start(), Mock::start());
    let config = format!(
        "model_list:\n  - model_name: primary\n    litellm_params: {{model: openai/p, api_base: '{}'}}\n  - model_name: claude-*\n    litellm_params: {{model: anthropic/claude-*, api_base: '{}'}}\nlitellm_settings:\n  num_retries: 0\n  fallbacks: [{{primary: [claude-3-5-haiku]}}, {{claude-3-opus: [primary]}}]\n",
        primary.openai_base(),
        backup.url
    );
    let gateway = Gateway::start(&config);
    primary.fault(json!([{ "status": 500 }])).await;
    let response = gateway.post("/v1/chat/completions").json(&chat("primary")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(backup.calls().await[0]["body"]["model"], "claude-3-5-haiku", "the model the fallback names");

    backup.fault(json!([{ "status": 500 }])).await;
    let response = gateway.post("/v1/chat/completions").json(&chat("claude-3-opus")).send().await.unwrap();
    assert_eq!(response.status(), 200, "claude-3-opus, served by claude-*, falls back as configured");
    assert_eq!(primary.calls().await.last().unwrap()["body"]["model"], "p");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_in_the_clients_shape() {
    let gateway = Gateway::start(&format!(
        "{}router_settings:\n  num_retries: 0\n",
        one_model("m", "anthropic/x", "http://127.0.0.1:9")
    ));
    let response = gateway
        .post("/v1/messages")
        .json(&json!({ "model": "m", "max_tokens": 5, "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("could not be reached") && message.contains("refused"), "{message}");
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_after_the_timeout() {
    let mock = Mock::start();
    let mut config = one_model("m", "openai/up", &mock.openai_base());
    config.push_str("      timeout: 0.3\nrouter_settings:\n  num_retries: 0\n");
    let gateway = Gateway::start(&config);
    mock.fault(json!([{ "delay_ms": 3000 }])).await;
    let started = Instant::now();
    let response = gateway.post("/v1/chat/completions").json(&chat("m")).send().await.unwrap();
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(2), "the timeout cut the wait short");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");
}

#[tokio::test]
async fn wildcard_models_send_the_requested_name_upstream() {
    let mock = Mock::start();
    let gateway = Gateway::start(&one_model("'claude-*'", "'anthropic/claude-*'", &mock.url));
    let response = gateway
        .post("/v1/messages")
        .json(&json!({ "model": "claude-sonnet-4-5-20250929", "max_tokens": 5, "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(mock.calls().await[0]["body"]["model"], "claude-sonnet-4-5-20250929");
}

#[tokio::test]
async fn a_stream_broken_before_its_first_byte_is_retried() {
    let mock = Mock::start();
    let gateway = Gateway::start(&one_model("m", "openai/up", &mock.openai_base()));
    mock.fault(json!([{ "drop_after_events": 0 }])).await;
    let body = gateway
        .post("/v1/chat/completions")
        .json(&json!({ "model": "m", "stream": true, "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    assert_eq!(mock.calls().await.len(), 2);
}
