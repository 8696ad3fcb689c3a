//! Same API on both sides: the upstream receives exactly what the client sent (but the
//! model name), and the client exactly what the upstream answered.

use e2e::{Gateway, Mock, one_model, sse_events};
use serde_json::{Value, json};

#[tokio::test]
async fn openai_request_reaches_the_upstream_unchanged_but_for_the_model() {
    let mock = Mock::start();
    let gateway = Gateway::start(&one_model("fast", "openai/upstream-name", &mock.openai_base()));
    let sent = json!({
        "model": "fast",
        "messages": [{ "role": "user", "content": "hi" }],
        "temperature": 0.25,
        "logit_bias": { "42": -100 },
        "a_field_from_tomorrow": { "nested": [1, 2, { "x": null }] },
        "tools": [{ "type": "function", "function": { "name": "f", "parameters": { "type": "object" } }, "strict": true }],
        "tool_choice": "none"
    });
    let response = gateway.post("/v1/chat/completions").json(&sent).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "Hello from the mock model upstream-name. You said: hi");

    let calls = mock.calls().await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["path"], "/v1/chat/completions");
    let mut expected = sent.clone();
    expected["model"] = json!("upstream-name");
    assert_eq!(calls[0]["body"], expected, "every field, unknown ones included, goes up as sent");
}

#[tokio::test]
async fn anthropic_request_keeps_its_fields_and_version_headers() {
    let mock = Mock::start();
    let mut config = one_model("claude", "anthropic/claude-upstream", &mock.url);
    config.push_str("      api_key: sk-ant-SECRET\n");
    let gateway = Gateway::start(&config);
    let sent = json!({
        "model": "claude",
        "max_tokens": 64,
        "system": [{ "type": "text", "text": "Be brief.", "cache_control": { "type": "ephemeral" } }],
        "messages": [{ "role": "user", "content": [{ "type": "text", "text": "hi", "cache_control": { "type": "ephemeral" } }] }],
        "thinking": { "type": "enabled", "budget_tokens": 1024 },
        "metadata": { "user_id": "user_abc" },
        "context_management": { "edits": [] }
    });
    let response = gateway
        .post("/v1/messages")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14")
        .header("x-api-key", "client-key-not-for-upstream")
        .header("x-stainless-lang", "python")
        .json(&sent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["type"], "message");

    let call = &mock.calls().await[0];
    assert_eq!(call["path"], "/v1/messages");
    let mut expected = sent.clone();
    expected["model"] = json!("claude-upstream");
    assert_eq!(call["body"], expected);
    let headers = &call["headers"];
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(headers["anthropic-beta"], "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14");
    assert_eq!(headers["x-api-key"], "sk-ant-SECRET", "the deployment's key, not the client's");
    assert!(headers.get("x-stainless-lang").is_none(), "client headers are not forwarded wholesale");
}

#[tokio::test]
async fn openai_stream_is_relayed_event_for_event() {
    let mock = Mock::start();
    let gateway = Gateway::start(&one_model("fast", "openai/up", &mock.openai_base()));
    let request = json!({ "model": "fast", "stream": true, "stream_options": { "include_usage": true },
        "messages": [{ "role": "user", "content": "stream please" }] });
    let through = gateway.post("/v1/chat/completions").json(&request).send().await.unwrap();
    assert_eq!(through.status(), 200);
    assert_eq!(through.headers()["content-type"], "text/event-stream");
    let through = through.text().await.unwrap();

    let mut direct_request = request.clone();
    direct_request["model"] = json!("up");
    let direct = reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.openai_base()))
        .json(&direct_request)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Ids and timestamps differ per request; everything else is byte-identical.
    let normalise = |body: &str| -> Vec<Value> {
        sse_events(body)
            .into_iter()
            .map(|(_, data)| match serde_json::from_str::<Value>(&data) {
                Ok(mut chunk) => {
                    chunk["id"] = Value::Null;
                    chunk["created"] = Value::Null;
                    chunk
                }
                Err(_) => Value::String(data),
            })
            .collect()
    };
    assert_eq!(normalise(&through), normalise(&direct));
    assert_eq!(normalise(&through).last(), Some(&json!("[DONE]")));
    assert!(normalise(&through).iter().any(|c| c["usage"]["total_tokens"].is_u64()));
}

#[tokio::test]
async fn embeddings_and_count_tokens_pass_through() {
    let mock = Mock::start();
    let mut config = one_model("embed", "openai/text-embedding-3-small", &mock.openai_base());
    config.push_str(&format!(
        "  - model_name: claude\n    litellm_params:\n      model: anthropic/c\n      api_base: {}\n",
        mock.url
    ));
    let gateway = Gateway::start(&config);
    let embedded: Value = gateway
        .post("/v1/embeddings")
        .json(&json!({ "model": "embed", "input": ["a", "b"], "dimensions": 4 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(embedded["data"].as_array().unwrap().len(), 2);
    assert_eq!(embedded["data"][1]["embedding"].as_array().unwrap().len(), 4);

    let counted: Value = gateway
        .post("/v1/messages/count_tokens")
        .json(&json!({ "model": "claude", "messages": [{ "role": "user", "content": "count these words" }] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(counted["input_tokens"].as_u64().unwrap() > 0);
    let paths: Vec<String> = mock.calls().await.iter().map(|c| c["path"].as_str().unwrap().to_owned()).collect();
    assert_eq!(paths, ["/v1/embeddings", "/v1/messages/count_tokens"]);
}

#[tokio::test]
async fn count_tokens_for_an_openai_model_is_estimated_locally() {
    let mock = Mock::start();
    let gateway = Gateway::start(&one_model("gpt", "openai/g", &mock.openai_base()));
    let response = gateway
        .post("/v1/messages/count_tokens")
        .json(&json!({ "model": "gpt", "system": "You are terse.", "messages": [{ "role": "user", "content": "x".repeat(400) }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-token-count"], "estimated");
    let counted: Value = response.json().await.unwrap();
    let tokens = counted["input_tokens"].as_u64().unwrap();
    assert!((100..140).contains(&tokens), "about a token per four bytes, got {tokens}");
    assert!(mock.calls().await.is_empty(), "no upstream call for an estimate");
}
