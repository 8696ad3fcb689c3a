//! Providers beyond the plain OpenAI and Anthropic APIs, checked at the mock in the
//! shape each expects: Azure OpenAI (deployment URL, `api-version`, `api-key`), AWS
//! Bedrock (InvokeModel path, Bedrock's envelope, a SigV4 signature, event-stream
//! answers), and Gemini's own API (`models/{model}:generateContent`). And what
//! LiteLLM configs ask of every provider: default parameters in `litellm_params`,
//! `additional_drop_params` and `context_window_fallbacks`.

use e2e::{Gateway, Launch, Mock, sse_events};
use serde_json::{Value, json};

const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// The text an Anthropic stream's deltas carry.
fn said_in(events: &[(Option<String>, String)]) -> String {
    events
        .iter()
        .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
        .filter_map(|event| event["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// The databank's rows once `count` requests are in it.
async fn recorded(gateway: &Gateway, count: usize) -> Vec<Value> {
    e2e::wait_for(std::time::Duration::from_secs(5), || async {
        let rows = gateway.requests("", "limit=5").await;
        (rows.len() == count).then_some(rows)
    })
    .await
    .expect("the requests are recorded")
}

fn hello() -> Value {
    json!([{ "role": "user", "content": "hello" }])
}

#[tokio::test]
async fn azure_gets_its_deployment_url_version_and_key_header() {
    let mock = Mock::start();
    let config = format!(
        "model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/my-gpt4o-deployment
      api_base: {}/
      api_version: 2024-10-21
      api_key: os.environ/AZURE_API_KEY
  - model_name: gpt-4o-entra
    litellm_params:
      model: azure/my-gpt4o-deployment
      api_base: {}
      azure_ad_token: entra-token-123
",
        mock.url, mock.url
    );
    let gateway =
        Gateway::launch(&config, Launch { env: vec![("AZURE_API_KEY", "azure-key-456")], ..Launch::default() })
            .unwrap();
    let body = json!({ "model": "gpt-4o", "messages": hello() });
    let answer: Value = gateway.post("/v1/chat/completions").json(&body).send().await.unwrap().json().await.unwrap();
    assert!(answer["choices"][0]["message"]["content"].as_str().unwrap().contains("You said: hello"), "{answer}");

    // An Anthropic client, translated, to the same deployment.
    let body = json!({ "model": "gpt-4o", "max_tokens": 50, "messages": hello() });
    let response = gateway.post("/v1/messages").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["type"], "message", "{answer}");

    let body = json!({ "model": "gpt-4o-entra", "messages": hello() });
    assert_eq!(gateway.post("/v1/chat/completions").json(&body).send().await.unwrap().status(), 200);

    let calls = mock.calls().await;
    assert_eq!(calls.len(), 3);
    for call in &calls[..2] {
        assert_eq!(call["path"], "/openai/deployments/my-gpt4o-deployment/chat/completions");
        assert_eq!(call["query"], "api-version=2024-10-21");
        assert_eq!(call["headers"]["api-key"], "azure-key-456");
        assert!(call["headers"].get("authorization").is_none(), "the key goes in api-key only: {call}");
    }
    assert_eq!(calls[2]["query"], "api-version=2025-02-01-preview", "LiteLLM's default version");
    assert_eq!(calls[2]["headers"]["authorization"], "Bearer entra-token-123");
    assert!(calls[2]["headers"].get("api-key").is_none());
}

fn bedrock_config(mock: &Mock) -> String {
    format!(
        "model_list:
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0
      aws_access_key_id: os.environ/AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY
      aws_session_token: session-789
      aws_region_name: eu-central-1
      aws_bedrock_runtime_endpoint: {}
router_settings:
  num_retries: 0
",
        mock.url
    )
}

fn bedrock_gateway(mock: &Mock) -> Gateway {
    let env = vec![("AWS_ACCESS_KEY_ID", "AKIDTEST123"), ("AWS_SECRET_ACCESS_KEY", AWS_SECRET)];
    Gateway::launch(&bedrock_config(mock), Launch { env, ..Launch::default() }).unwrap()
}

#[tokio::test]
async fn bedrock_gets_invoke_model_signed_with_sigv4() {
    let mock = Mock::start();
    let gateway = bedrock_gateway(&mock);
    let body = json!({ "model": "claude-bedrock", "max_tokens": 50, "messages": hello() });
    let response = gateway
        .post("/v1/messages")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "context-1m-2025-08-07")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["content"][0]["text"].as_str().unwrap().contains("You said: hello"), "{answer}");

    let call = &mock.calls().await[0];
    assert_eq!(call["path"], "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke");
    let authorization = call["headers"]["authorization"].as_str().unwrap();
    assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST123/"), "{authorization}");
    assert!(authorization.contains("/eu-central-1/bedrock/aws4_request"), "{authorization}");
    assert!(authorization.contains("Signature="), "{authorization}");
    assert_eq!(call["headers"]["x-amz-security-token"], "session-789");
    assert!(call["headers"]["x-amz-date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(call["body"]["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(call["body"]["anthropic_beta"], json!(["context-1m-2025-08-07"]));
    assert!(call["body"].get("model").is_none() && call["body"].get("stream").is_none(), "{call}");
    assert!(call["headers"].get("anthropic-version").is_none());
    assert!(!call.to_string().contains(AWS_SECRET), "the secret key itself never travels");
    assert!(!gateway.logs().contains(AWS_SECRET));
}

#[tokio::test]
async fn bedrock_streams_reach_anthropic_and_openai_clients_as_sse() {
    let mock = Mock::start();
    let gateway = bedrock_gateway(&mock);
    let body = json!({ "model": "claude-bedrock", "max_tokens": 50, "stream": true, "messages": hello() });
    let response = gateway.post("/v1/messages").json(&body).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let events = sse_events(&text);
    let names: Vec<&str> = events.iter().filter_map(|(name, _)| name.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"message_stop"), "{text}");
    assert!(said_in(&events).contains("You said: hello"), "{text}");

    let body = json!({ "model": "claude-bedrock", "stream": true, "stream_options": { "include_usage": true },
        "messages": hello() });
    let text = gateway.post("/v1/chat/completions").json(&body).send().await.unwrap().text().await.unwrap();
    let chunks: Vec<Value> = sse_events(&text).iter().filter_map(|(_, data)| serde_json::from_str(data).ok()).collect();
    let said: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(said.contains("You said: hello"), "{text}");
    assert!(chunks.iter().any(|c| c["usage"]["completion_tokens"].as_u64() > Some(0)), "usage reached: {text}");
    assert!(text.trim_end().ends_with("data: [DONE]"));
    let calls = mock.calls().await;
    assert!(calls.iter().all(|c| c["path"].as_str().unwrap().ends_with("/invoke-with-response-stream")));

    // The databank read the usage from the unwrapped events.
    let recorded = recorded(&gateway, 2).await;
    assert!(
        recorded.iter().all(|r| r["output_tokens"].as_u64() > Some(0) && r["provider"] == "bedrock"),
        "{recorded:?}"
    );
}

#[tokio::test]
async fn bedrock_errors_read_as_anthropic_errors() {
    let mock = Mock::start();
    let gateway = bedrock_gateway(&mock);
    mock.fault(json!([{ "status": 429, "message": "Too many tokens, slow down" }])).await;
    let body = json!({ "model": "claude-bedrock", "max_tokens": 50, "messages": hello() });
    let response = gateway.post("/v1/messages").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "rate_limit_error");
    assert_eq!(error["error"]["message"], "Too many tokens, slow down");

    let body = json!({ "model": "claude-bedrock", "messages": [{ "role": "user", "content": "count me" }] });
    let response = gateway.post("/v1/messages/count_tokens").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200, "Bedrock has no count_tokens: the gateway estimates");
    assert_eq!(response.headers()["x-token-count"], "estimated");
}

#[tokio::test]
async fn gemini_at_a_custom_api_base_gets_its_own_api() {
    let mock = Mock::start();
    let config = format!(
        "model_list:
  - model_name: gemini-flash
    litellm_params:
      model: gemini/gemini-2.5-flash
      api_base: {}/v1beta
      api_key: gemini-key-321
",
        mock.url
    );
    let gateway = Gateway::start(&config);
    let body = json!({ "model": "gemini-flash", "messages": hello() });
    let answer: Value = gateway.post("/v1/chat/completions").json(&body).send().await.unwrap().json().await.unwrap();
    assert!(answer["choices"][0]["message"]["content"].as_str().unwrap().contains("You said: hello"), "{answer}");
    assert!(answer["usage"]["prompt_tokens"].as_u64() > Some(0));

    let body = json!({ "model": "gemini-flash", "max_tokens": 40, "stream": true, "messages": hello() });
    let text = gateway.post("/v1/messages").json(&body).send().await.unwrap().text().await.unwrap();
    let events = sse_events(&text);
    assert_eq!(events.last().and_then(|(name, _)| name.as_deref()), Some("message_stop"), "{text}");
    assert!(said_in(&events).contains("You said: hello"), "{text}");

    let calls = mock.calls().await;
    assert_eq!(calls[0]["path"], "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(calls[0]["headers"]["x-goog-api-key"], "gemini-key-321");
    assert!(calls[0]["headers"].get("authorization").is_none());
    assert_eq!(calls[0]["body"]["contents"][0]["parts"][0]["text"], "hello");
    assert_eq!(calls[1]["path"], "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    assert_eq!(calls[1]["query"], "alt=sse");
    assert_eq!(calls[1]["body"]["generationConfig"]["maxOutputTokens"], 40);

    let recorded = recorded(&gateway, 2).await;
    assert!(
        recorded.iter().all(|r| r["output_tokens"].as_u64() > Some(0)),
        "usage read after translation: {recorded:?}"
    );
}

#[tokio::test]
async fn litellm_params_defaults_reach_the_upstream_and_the_client_wins() {
    let mock = Mock::start();
    let config = format!(
        "model_list:
  - model_name: claude-thinking
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: {url}
      thinking: {{type: enabled, budget_tokens: 1024}}
      max_tokens: 4000
      temperature: 1
  - model_name: gpt-careful
    litellm_params:
      model: openai/gpt-4o
      api_base: {openai}
      temperature: 0.1
      reasoning_effort: low
      seed: 7
      additional_drop_params: [user]
",
        url = mock.url,
        openai = mock.openai_base()
    );
    let gateway = Gateway::start(&config);
    // Claude Code's shape: its own max_tokens, no thinking.
    let body = json!({ "model": "claude-thinking", "max_tokens": 8000, "messages": hello() });
    assert_eq!(gateway.post("/v1/messages").json(&body).send().await.unwrap().status(), 200);
    // An OpenAI client, translated: the defaults too.
    let body = json!({ "model": "claude-thinking", "messages": hello() });
    assert_eq!(gateway.post("/v1/chat/completions").json(&body).send().await.unwrap().status(), 200);
    let body = json!({ "model": "gpt-careful", "temperature": 0.9, "user": "someone", "messages": hello() });
    assert_eq!(gateway.post("/v1/chat/completions").json(&body).send().await.unwrap().status(), 200);

    let calls = mock.calls().await;
    let thinking = json!({ "type": "enabled", "budget_tokens": 1024 });
    assert_eq!(calls[0]["body"]["thinking"], thinking);
    assert_eq!(calls[0]["body"]["max_tokens"], 8000, "the client's own value wins");
    assert_eq!(calls[0]["body"]["temperature"], 1);
    assert_eq!(calls[1]["body"]["thinking"], thinking, "translated requests get the defaults too");
    assert_eq!(calls[1]["body"]["max_tokens"], 4000);
    let openai = &calls[2]["body"];
    assert_eq!(
        (&openai["temperature"], &openai["reasoning_effort"], &openai["seed"]),
        (&json!(0.9), &json!("low"), &json!(7))
    );
    assert!(openai.get("user").is_none(), "additional_drop_params: {openai}");
}

#[tokio::test]
async fn a_prompt_too_long_goes_to_the_context_window_fallback() {
    let mock = Mock::start();
    let base = mock.openai_base();
    let config = format!(
        "model_list:
  - model_name: small
    litellm_params: {{ model: openai/small-up, api_base: {base} }}
  - model_name: large
    litellm_params: {{ model: openai/large-up, api_base: {base} }}
  - model_name: other
    litellm_params: {{ model: openai/other-up, api_base: {base} }}
router_settings:
  context_window_fallbacks: [{{small: [large]}}]
  fallbacks: [{{small: [other]}}]
"
    );
    let gateway = Gateway::start(&config);
    let overflow =
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.";
    mock.fault(json!([{ "model": "small-up", "status": 400, "message": overflow }])).await;
    let body = json!({ "model": "small", "messages": hello() });
    let answer: Value = gateway.post("/v1/chat/completions").json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["model"], "large-up", "{answer}");

    // Any other 400 is the client's to read, with no fallback.
    mock.fault(json!([{ "model": "small-up", "status": 400, "message": "bad temperature" }])).await;
    let response = gateway.post("/v1/chat/completions").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let models: Vec<String> =
        mock.calls().await.iter().map(|c| c["body"]["model"].as_str().unwrap().to_owned()).collect();
    assert_eq!(models, ["small-up", "large-up", "small-up"]);
}
