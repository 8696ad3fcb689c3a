//! Different APIs on the two sides: OpenAI chat clients served by Anthropic, and
//! Anthropic clients served by OpenAI, streaming and tool calls included.

use e2e::{Gateway, Mock, sse_events};
use serde_json::{Value, json};

fn both_ways(mock: &Mock) -> String {
    format!(
        "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-up\n      api_base: {}\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-up\n      api_base: {}\n",
        mock.url,
        mock.openai_base()
    )
}

const WEATHER_TOOL_OPENAI: &str = r#"{ "type": "function", "function": { "name": "weather", "description": "Weather by city", "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } } }"#;

#[tokio::test]
async fn openai_client_to_anthropic_upstream() {
    let mock = Mock::start();
    let gateway = Gateway::start(&both_ways(&mock));
    let answer: Value = gateway
        .post("/v1/chat/completions")
        .json(&json!({ "model": "claude", "max_tokens": 100, "messages": [
            { "role": "system", "content": "Be brief." },
            { "role": "user", "content": "hello there" }
        ] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Hello from the mock model claude-up. You said: hello there"
    );
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let call = &mock.calls().await[0];
    assert_eq!(call["path"], "/v1/messages");
    assert_eq!(call["body"]["system"], "Be brief.");
    assert_eq!(
        call["body"]["messages"],
        json!([{ "role": "user", "content": [{ "type": "text", "text": "hello there" }] }])
    );
    assert_eq!(call["headers"]["anthropic-version"], "2023-06-01");
}

#[tokio::test]
async fn openai_client_gets_tool_calls_from_anthropic_streaming() {
    let mock = Mock::start();
    let gateway = Gateway::start(&both_ways(&mock));
    let tool: Value = serde_json::from_str(WEATHER_TOOL_OPENAI).unwrap();
    let body = gateway
        .post("/v1/chat/completions")
        .json(&json!({ "model": "claude", "stream": true, "stream_options": { "include_usage": true },
            "messages": [{ "role": "user", "content": "Paris" }], "tools": [tool] }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&body);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events.iter().filter_map(|(_, d)| serde_json::from_str(d).ok()).collect();
    let start =
        chunks.iter().find_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["name"].as_str()).unwrap();
    assert_eq!(start, "weather");
    let arguments: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), json!({ "input": "Paris" }));
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    assert!(chunks.iter().any(|c| c["usage"]["completion_tokens"].is_u64()), "include_usage was honoured");

    let call = &mock.calls().await[0];
    assert_eq!(call["body"]["tools"][0]["name"], "weather");
    assert_eq!(call["body"]["stream"], true);
}

#[tokio::test]
async fn anthropic_client_to_openai_upstream_with_tool_results() {
    let mock = Mock::start();
    let gateway = Gateway::start(&both_ways(&mock));
    let answer: Value = gateway
        .post("/v1/messages")
        .json(&json!({ "model": "gpt", "max_tokens": 100, "system": "Be brief.", "messages": [
            { "role": "user", "content": "Weather in Paris?" },
            { "role": "assistant", "content": [{ "type": "tool_use", "id": "toolu_1", "name": "weather", "input": { "city": "Paris" } }] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny" }] }
        ], "tools": [{ "name": "weather", "input_schema": { "type": "object" } }] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["content"][0], json!({ "type": "text", "text": "The tool said: sunny" }));
    assert_eq!(answer["stop_reason"], "end_turn");

    let call = &mock.calls().await[0];
    assert_eq!(call["path"], "/v1/chat/completions");
    let messages = call["body"]["messages"].as_array().unwrap();
    assert_eq!(messages[0], json!({ "role": "system", "content": "Be brief." }));
    assert_eq!(messages[2]["tool_calls"][0]["function"]["name"], "weather");
    assert_eq!(messages[3], json!({ "role": "tool", "tool_call_id": "toolu_1", "content": "sunny" }));
    assert_eq!(call["body"]["max_completion_tokens"], 100, "OpenAI takes max_completion_tokens");
}

#[tokio::test]
async fn anthropic_client_streams_tool_use_from_openai() {
    let mock = Mock::start();
    let gateway = Gateway::start(&both_ways(&mock));
    let body = gateway
        .post("/v1/messages")
        .json(&json!({ "model": "gpt", "max_tokens": 100, "stream": true,
            "messages": [{ "role": "user", "content": "Rome" }],
            "tools": [{ "name": "weather", "input_schema": { "type": "object" } }] }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&body);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap_or("")).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start: Value = serde_json::from_str(&events[1].1).unwrap();
    assert_eq!(start["content_block"]["name"], "weather");
    let json: String = events[2..4]
        .iter()
        .map(|(_, d)| serde_json::from_str::<Value>(d).unwrap()["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), json!({ "input": "Rome" }));
    let delta: Value = serde_json::from_str(&events[5].1).unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0, "usage asked upstream and passed on");

    let call = &mock.calls().await[0];
    assert_eq!(call["body"]["stream_options"], json!({ "include_usage": true }));
}

#[tokio::test]
async fn upstream_errors_reach_the_client_in_its_own_shape() {
    let mock = Mock::start();
    let gateway = Gateway::start(&both_ways(&mock));
    mock.fault(json!([{ "status": 400 }, { "status": 400 }])).await;
    let openai = gateway
        .post("/v1/chat/completions")
        .json(&json!({ "model": "claude", "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 400);
    let body: Value = openai.json().await.unwrap();
    assert_eq!(body["error"]["message"], "mock fault: status 400");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let anthropic = gateway
        .post("/v1/messages")
        .json(&json!({ "model": "gpt", "max_tokens": 5, "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 400);
    let body: Value = anthropic.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "type": "error", "error": { "type": "invalid_request_error", "message": "mock fault: status 400" } })
    );
}

#[tokio::test]
async fn unsupported_parameters_are_refused_or_dropped_as_configured() {
    let mock = Mock::start();
    let strict = Gateway::start(&both_ways(&mock));
    let request = json!({ "model": "claude", "n": 3, "messages": [{ "role": "user", "content": "x" }] });
    let refused = strict.post("/v1/chat/completions").json(&request).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["param"], "n");
    assert!(body["error"]["message"].as_str().unwrap().contains("drop_params"));

    let dropping = Gateway::start(&format!("{}litellm_settings:\n  drop_params: true\n", both_ways(&mock)));
    let accepted = dropping.post("/v1/chat/completions").json(&request).send().await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert!(mock.calls().await[0]["body"].get("n").is_none());
}
