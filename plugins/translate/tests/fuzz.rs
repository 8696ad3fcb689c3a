//! Property tests: whatever JSON a client or an upstream sends, every translation
//! answers or refuses; none panics (in a plugin, a panic is a trap). Bounded: a few
//! hundred cases each.

use proptest::prelude::*;
use serde_json::{Value, json};
use translate::{
    Options, SseEvent, chat_via_gemini, chat_via_messages, messages_via_chat, messages_via_gemini, responses_via_chat,
    responses_via_gemini, responses_via_messages,
};

/// Arbitrary JSON, biased toward the shapes the translations look into.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "user",
            "assistant",
            "system",
            "tool",
            "developer",
            "text",
            "image",
            "tool_use",
            "tool_result",
            "function",
            "message",
            "input_text",
            "output_text",
            "function_call",
            "thinking",
            "auto",
            "none",
            "required",
            "stop",
            "length",
            "STOP",
            "MAX_TOKENS",
            "",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        "[a-z ]{0,8}".prop_map(Value::String),
    ];
    let keys = prop::sample::select(vec![
        "model",
        "messages",
        "role",
        "content",
        "type",
        "text",
        "tools",
        "tool_choice",
        "tool_calls",
        "function",
        "name",
        "arguments",
        "input",
        "id",
        "tool_call_id",
        "tool_use_id",
        "system",
        "max_tokens",
        "stream",
        "choices",
        "delta",
        "usage",
        "candidates",
        "parts",
        "functionCall",
        "contents",
        "output",
        "instructions",
        "stop",
        "response_format",
        "image_url",
        "source",
        "data",
        "index",
        "finish_reason",
        "stop_reason",
        "thinking",
        "reasoning",
        "error",
        "message",
        "content_block",
        "usageMetadata",
        "modelVersion",
    ]);
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn event(name: Option<String>, data: &Value) -> SseEvent {
    SseEvent { event: name, data: data.to_string() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn requests_translate_or_refuse(body in json_value(), drop_params in any::<bool>()) {
        let options = Options { drop_params, ..Options::new() };
        let _ = chat_via_messages::request(body.clone(), &options);
        let _ = messages_via_chat::request(body.clone(), &options);
        let _ = responses_via_chat::request(body.clone(), &options);
        let _ = responses_via_messages::request(body.clone(), &options);
        let _ = chat_via_gemini::request(body.clone(), &options);
        let _ = messages_via_gemini::request(body.clone(), &options);
        let _ = responses_via_gemini::request(body, &options);
    }

    #[test]
    fn answers_and_errors_translate_or_refuse(body in json_value(), status in 100u16..600) {
        let _ = chat_via_messages::response(body.clone(), 1);
        let _ = messages_via_chat::response(body.clone());
        let _ = responses_via_chat::response(body.clone(), 1);
        let _ = responses_via_messages::response(body.clone(), 1);
        let _ = chat_via_gemini::response(body.clone(), 1);
        let _ = messages_via_gemini::response(body.clone(), 1);
        let _ = responses_via_gemini::response(body.clone(), 1);
        let bytes = body.to_string().into_bytes();
        let _ = chat_via_messages::error(status, &bytes);
        let _ = messages_via_chat::error(status, &bytes);
        let _ = responses_via_chat::error(status, &bytes);
        let _ = responses_via_messages::error(status, &bytes);
        let _ = chat_via_gemini::error(status, &bytes);
        let _ = messages_via_gemini::error(status, &bytes);
        let _ = responses_via_gemini::error(status, &bytes);
    }

    #[test]
    fn streams_translate_any_events(events in prop::collection::vec((prop::option::of("[a-z_]{1,20}"), json_value()), 0..10)) {
        let events: Vec<SseEvent> = events.iter().map(|(name, data)| event(name.clone(), data)).collect();
        let mut a = chat_via_messages::StreamTranslator::new(true, 1);
        let mut b = messages_via_chat::StreamTranslator::new();
        let mut c = responses_via_chat::StreamTranslator::new(1);
        let mut d = responses_via_messages::StreamTranslator::new(1);
        let mut e = chat_via_gemini::StreamTranslator::new(true, 1);
        let mut f = messages_via_gemini::StreamTranslator::new(1);
        let mut g = responses_via_gemini::StreamTranslator::new(1);
        for event in &events {
            a.push(event);
            b.push(event);
            c.push(event);
            d.push(event);
            e.push(event);
            f.push(event);
            g.push(event);
        }
        a.finish();
        b.finish();
        c.finish();
        d.finish();
        e.finish();
        f.finish();
        g.finish();
    }
}
