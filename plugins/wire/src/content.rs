//! The text of a message's content, as every API writes it: a string, or a list of
//! parts whose `text` fields (and bare strings) count; images, tool calls, tool
//! results and thinking carry no `text` of their own and are left out.
//!
//! Read through serde, so the gateway takes it from raw JSON without building a tree
//! and the translators from a `serde_json::Value` they already hold.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Deserialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Parts(#[serde(borrow)] Vec<Part<'a>>),
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Part<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Block {
        #[serde(borrow, default)]
        text: Option<Cow<'a, str>>,
    },
    Other(serde::de::IgnoredAny),
}

/// The text of a content value from any deserializer; the parts' texts are joined by
/// newlines. Content that is neither a string nor a list has no text.
pub fn text<'de, D: Deserializer<'de>>(content: D) -> String {
    let texts = match Content::deserialize(content) {
        Ok(Content::Text(text)) => return text.into_owned(),
        Ok(Content::Parts(parts)) => parts,
        _ => return String::new(),
    };
    let mut out = String::new();
    for text in texts.iter().filter_map(|part| match part {
        Part::Text(text) | Part::Block { text: Some(text) } => Some(text),
        _ => None,
    }) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(text);
    }
    out
}

/// The text of content given as JSON text.
pub fn text_of_json(json: &str) -> String {
    text(&mut serde_json::Deserializer::from_str(json))
}

/// The text of content already parsed.
pub fn text_of_value(content: &Value) -> String {
    text(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_text_parts_of_every_api() {
        assert_eq!(text_of_json(r#""plain""#), "plain");
        let chat = r#"[{"type":"text","text":"Hi"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"there"}]"#;
        assert_eq!(text_of_json(chat), "Hi\nthere");
        let anthropic = r#"[{"type":"thinking","thinking":"hm"},{"type":"text","text":"Teal."},{"type":"tool_use","id":"t","name":"x","input":{}}]"#;
        assert_eq!(text_of_json(anthropic), "Teal.");
        let responses = r#"[{"type":"output_text","text":"a"},"b"]"#;
        assert_eq!(text_of_json(responses), "a\nb");
        assert_eq!(text_of_json("null"), "");
        assert_eq!(text_of_json("42"), "");
        assert_eq!(text_of_value(&serde_json::json!([{"type": "text", "text": "v"}])), "v");
    }
}
