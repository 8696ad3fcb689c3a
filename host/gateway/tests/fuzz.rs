//! Property tests of what callers and upstreams can reach: a request body, an SSE
//! stream, a config file. Whatever comes in, the parsers answer or refuse; they never
//! panic. Bounded: a few hundred cases each, well under a second.

use memory_proxy::config::Config;
use memory_proxy::core::body::JsonBody;
use memory_proxy::core::sse::{SseDecoder, SseEvent};
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        "[a-z \\\\\"\\n\\u{e9}\\u{1F600}]{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_a_body_or_a_400(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = JsonBody::parse(&bytes);
    }

    #[test]
    fn an_object_comes_back_byte_for_byte(fields in prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..12)) {
        let text = serde_json::Value::Object(fields.into_iter().collect()).to_string();
        let body = JsonBody::parse(text.as_bytes()).expect("a JSON object parses");
        prop_assert_eq!(body.to_bytes(), text.as_bytes());
    }

    #[test]
    fn sse_decodes_the_same_however_the_bytes_are_split(
        events in prop::collection::vec(("[a-z_]{0,8}", "[ -~]{0,40}"), 0..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let events: Vec<SseEvent> = events
            .into_iter()
            .map(|(name, data)| SseEvent { event: (!name.is_empty()).then_some(name), data })
            .collect();
        let wire: String = events.iter().map(SseEvent::encode).collect();
        let bytes = wire.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        let mut start = 0;
        for point in points.into_iter().chain([bytes.len()]) {
            decoder.push(&bytes[start..point], &mut out);
            start = point;
        }
        decoder.finish(&mut out);
        prop_assert_eq!(out, events);
    }

    #[test]
    fn any_bytes_are_an_sse_stream_or_nothing(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        for chunk in &chunks {
            decoder.push(chunk, &mut out);
        }
        decoder.finish(&mut out);
    }

    #[test]
    fn any_config_text_loads_or_names_its_problem(text in "[a-z_:\\[\\]{}\\-/ \\n0-9.,'\"]{0,300}") {
        let _ = Config::parse(&text, &|_| None, std::path::Path::new("/tmp"));
    }

    #[test]
    fn any_json_as_a_config_loads_or_names_its_problem(value in json_value()) {
        let text = serde_yaml::to_string(&value).unwrap_or_default();
        let _ = Config::parse(&text, &|_| None, std::path::Path::new("/tmp"));
    }
}
