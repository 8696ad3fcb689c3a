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
