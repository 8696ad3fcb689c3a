use serde_json::{Value, json};

use super::*;

fn context(client_api: Api, provider: &str) -> Context {
    Context {
        client_api,
        provider: provider.into(),
        upstream_model: "gemini-2.5-flash".into(),
        drop_params: false,
        include_usage: false,
        now: 5,
    }
}

fn upstream_request<U: Upstream>(context: &Context, body: Value) -> Result<UpstreamRequest, AdapterError> {
    Adapter::<U>(PhantomData).translate_request(context, body.to_string())
}

#[test]
fn the_gemini_adapter_picks_the_api_by_provider() {
    let chat = json!({ "model": "alias", "messages": [{ "role": "user", "content": "hi" }] });
    let native = upstream_request::<Gemini>(&context(Api::OpenaiChat, GEMINI_NATIVE), chat.clone()).unwrap();
    assert_eq!(native.path, "/models/gemini-2.5-flash:generateContent");
    let body: Value = serde_json::from_str(&native.body).unwrap();
    assert_eq!(body, json!({ "contents": [{ "role": "user", "parts": [{ "text": "hi" }] }] }));

    // The OpenAI-compatible endpoint takes OpenAI chat as it is: the adapter is not asked.
    let refused = upstream_request::<Gemini>(&context(Api::OpenaiChat, "gemini"), chat);
    assert!(matches!(refused, Err(AdapterError::InvalidRequest(_))));
    let messages = json!({ "model": "alias", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] });
    let compatible = upstream_request::<Gemini>(&context(Api::AnthropicMessages, "gemini"), messages).unwrap();
    assert_eq!(compatible.path, "/chat/completions");
    let body: Value = serde_json::from_str(&compatible.body).unwrap();
    assert_eq!(body["model"], "gemini-2.5-flash");
    assert_eq!(body["max_tokens"], 10);
}

#[test]
fn a_streamed_request_goes_to_stream_generate_content() {
    let messages = json!({ "model": "alias", "max_tokens": 10, "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
    let mut pro = context(Api::AnthropicMessages, GEMINI_NATIVE);
    pro.upstream_model = "models/gemini-2.5-pro".into();
    let request = upstream_request::<GeminiNative>(&pro, messages).unwrap();
    assert_eq!(request.path, "/models/gemini-2.5-pro:streamGenerateContent?alt=sse");
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert!(body.get("stream").is_none() && body.get("stream_options").is_none(), "{body}");
    let responses = json!({ "model": "alias", "input": "hi", "stream": false });
    let request = upstream_request::<GeminiNative>(&context(Api::OpenaiResponses, "any"), responses).unwrap();
    assert_eq!(request.path, "/models/gemini-2.5-flash:generateContent");
}

#[test]
fn answers_errors_and_streams_reach_each_client_in_its_api() {
    let adapter = Adapter::<Gemini>(PhantomData);
    let answer = json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "text": "Hello" }] },
        "finishReason": "STOP" }], "usageMetadata": { "promptTokenCount": 3, "candidatesTokenCount": 1 },
        "modelVersion": "gemini-2.5-flash", "responseId": "r1" });
    let chat = context(Api::OpenaiChat, GEMINI_NATIVE);
    let out: Value = serde_json::from_str(&adapter.translate_response(&chat, answer.to_string()).unwrap()).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "Hello");
    let messages = context(Api::AnthropicMessages, GEMINI_NATIVE);
    let out: Value = serde_json::from_str(&adapter.translate_response(&messages, answer.to_string()).unwrap()).unwrap();
    assert_eq!(out["content"][0]["text"], "Hello");
    let responses = context(Api::OpenaiResponses, GEMINI_NATIVE);
    let out: Value =
        serde_json::from_str(&adapter.translate_response(&responses, answer.to_string()).unwrap()).unwrap();
    assert_eq!(out["output"][0]["content"][0]["text"], "Hello");

    let error = r#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#;
    let out: Value = serde_json::from_str(&adapter.translate_error(&messages, 429, error.into())).unwrap();
    assert_eq!(out, json!({ "type": "error", "error": { "type": "rate_limit_error", "message": "Quota exceeded" } }));
    let out: Value = serde_json::from_str(&adapter.translate_error(&chat, 429, error.into())).unwrap();
    assert_eq!(out["error"]["code"], "RESOURCE_EXHAUSTED");

    let mut stream = <Stream<Gemini> as StreamTranslator>::new(&messages);
    let events = stream.push(SseEvent { event: None, data: answer.to_string() });
    assert_eq!(events[0].event.as_deref(), Some("message_start"));
    assert!(!stream.completed());
    let events = stream.finish();
    assert_eq!(events.last().and_then(|e| e.event.as_deref()), Some("message_stop"));
    assert!(stream.completed());
}
