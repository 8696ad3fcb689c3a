//! Reading a prompt without parsing all of it: the excerpts detectors see and the
//! user's words of the newest turn. Agents send 40-120 KB conversations; these read
//! the messages one by one, each only as far as its role.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::api::ClientApi;
use super::body::JsonBody;

/// How much of the system prompt a detector sees: its start and its end (where
/// agents state their environment), not the middle of a 30 KB prompt.
const SYSTEM_HEAD: usize = 4 * 1024;
const SYSTEM_TAIL: usize = 12 * 1024;
/// How much of the first user message a detector sees.
const USER_HEAD: usize = 8 * 1024;

/// The system prompt's text (capped: head and tail) and the first user message's
/// text (capped: head), read without parsing the rest of the conversation.
pub fn excerpts(api: ClientApi, body: &JsonBody) -> (String, String) {
    let mut system = String::new();
    if let Some(raw) = body.raw("system").or_else(|| body.raw("instructions")) {
        system.push_str(&text_of(raw));
    }
    let conversation = body.raw("messages").or_else(|| body.raw("input"));
    let mut user = String::new();
    if let Some(raw) = conversation {
        if api == ClientApi::OpenAiResponses && raw.get().starts_with('"') {
            user = text_of(raw);
        } else {
            for message in messages(raw) {
                match message.role.as_ref() {
                    "system" | "developer" => {
                        if !system.is_empty() {
                            system.push('\n');
                        }
                        system.push_str(&message.content.map(text_of).unwrap_or_default());
                    }
                    "user" => {
                        user = message.content.map(text_of).unwrap_or_default();
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
    (head_and_tail(system, SYSTEM_HEAD, SYSTEM_TAIL), head_and_tail(user, USER_HEAD, 0))
}

/// The user's words a request carries: what memories are recalled for and a turn is
/// remembered by.
#[derive(Debug, PartialEq, Eq)]
pub struct UserWords {
    /// The text of the last user message that has any.
    pub text: String,
    /// That message ends the conversation: a new turn. Otherwise the client is going
    /// round a tool loop (its last message holds tool results).
    pub new_turn: bool,
}

pub fn user_words(body: &JsonBody) -> Option<UserWords> {
    let raw = body.raw("messages").or_else(|| body.raw("input"))?;
    if raw.get().starts_with('"') {
        return Some(UserWords { text: text_of(raw), new_turn: true }).filter(|w| !w.text.trim().is_empty());
    }
    let mut user_contents = Vec::new();
    let mut last_is_user = false;
    for message in messages(raw) {
        last_is_user = message.role == "user";
        if last_is_user {
            user_contents.push(message.content);
        }
    }
    let newest = user_contents.len();
    user_contents.into_iter().enumerate().rev().find_map(|(index, content)| {
        let text = content.map(text_of).unwrap_or_default();
        (!text.trim().is_empty()).then(|| UserWords { text, new_turn: last_is_user && index + 1 == newest })
    })
}

#[derive(Deserialize)]
struct MessageView<'a> {
    #[serde(borrow, default)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

/// The messages of a JSON array one by one, each parsed only as far as its role, so
/// reading the first user message does not parse a 100 KB conversation.
fn messages(raw: &RawValue) -> impl Iterator<Item = MessageView<'_>> {
    let text = raw.get();
    let mut position = text.find('[').map(|i| i + 1);
    std::iter::from_fn(move || {
        let start = position?;
        let rest = text[start..].trim_start();
        let offset = text.len() - rest.len();
        if rest.starts_with(']') || rest.is_empty() {
            position = None;
            return None;
        }
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<MessageView<'_>>();
        match stream.next() {
            Some(Ok(message)) => {
                let after = offset + stream.byte_offset();
                position = text[after..].trim_start().strip_prefix(',').map(|r| text.len() - r.len());
                Some(message)
            }
            // Not a message object (a bare string in Responses input, ...): stop.
            _ => {
                position = None;
                None
            }
        }
    })
}

/// The text of a content value: a string, or the `text` of each part.
fn text_of(raw: &RawValue) -> String {
    wire::content::text_of_json(raw.get())
}

/// `text` capped to its first `head` and last `tail` bytes (on char boundaries).
fn head_and_tail(text: String, head: usize, tail: usize) -> String {
    if text.len() <= head + tail {
        return text;
    }
    let head_end = text.floor_char_boundary(head);
    let tail_start = text.ceil_char_boundary(text.len() - tail);
    let mut out = String::with_capacity(head + tail + 8);
    out.push_str(&text[..head_end]);
    if tail > 0 {
        out.push_str("\n[...]\n");
        out.push_str(&text[tail_start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excerpt(api: ClientApi, body: &str) -> (String, String) {
        excerpts(api, &JsonBody::parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn openai_system_messages_and_first_user_message() {
        let (system, user) = excerpt(
            ClientApi::OpenAiChat,
            r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":[{"type":"text","text":"Dev."}]},{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"image_url","image_url":{"url":"x"}}]},{"role":"user","content":"later"}]}"#,
        );
        assert_eq!((system.as_str(), user.as_str()), ("Be brief.\nDev.", "Hi"));
    }

    #[test]
    fn anthropic_system_blocks_and_responses_input() {
        let (system, user) = excerpt(
            ClientApi::AnthropicMessages,
            r#"{"system":[{"type":"text","text":"A"},{"type":"text","text":"B"}],"messages":[{"role":"user","content":"Q"}]}"#,
        );
        assert_eq!((system.as_str(), user.as_str()), ("A\nB", "Q"));
        let (system, user) = excerpt(
            ClientApi::OpenAiResponses,
            r#"{"instructions":"I","input":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"D"}]},{"type":"message","role":"user","content":[{"type":"input_text","text":"<cwd>/x</cwd>"}]}]}"#,
        );
        assert_eq!((system.as_str(), user.as_str()), ("I\nD", "<cwd>/x</cwd>"));
        let (_, user) = excerpt(ClientApi::OpenAiResponses, r#"{"input":"just text"}"#);
        assert_eq!(user, "just text");
    }

    #[test]
    fn long_prompts_keep_their_head_and_tail() {
        let long = format!("{}{}", "a".repeat(20_000), "Primary working directory: /srv/x");
        let (system, _) =
            excerpt(ClientApi::AnthropicMessages, &serde_json::json!({ "system": long, "messages": [] }).to_string());
        assert!(system.len() <= SYSTEM_HEAD + SYSTEM_TAIL + 8);
        assert!(system.ends_with("Primary working directory: /srv/x"));
        assert!(system.starts_with("aaaa"));
    }

    #[test]
    fn user_words_of_new_turns_and_tool_loops() {
        let words = |body: &str| user_words(&JsonBody::parse(body.as_bytes()).unwrap());
        let new = words(
            r#"{"messages":[{"role":"user","content":"old"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"text","text":"new"}]}]}"#,
        );
        assert_eq!(new, Some(UserWords { text: "new".into(), new_turn: true }));
        let looping = words(
            r#"{"messages":[{"role":"user","content":"fix it"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"x","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"done"}]}]}"#,
        );
        assert_eq!(looping, Some(UserWords { text: "fix it".into(), new_turn: false }));
        let responses = words(
            r#"{"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"fix it"}]},{"type":"function_call_output","call_id":"c","output":"ok"}]}"#,
        );
        assert_eq!(responses, Some(UserWords { text: "fix it".into(), new_turn: false }));
        assert_eq!(words(r#"{"input":"hi"}"#), Some(UserWords { text: "hi".into(), new_turn: true }));
        assert_eq!(words(r#"{"messages":[{"role":"user","content":"  "}]}"#), None);
        assert_eq!(words(r#"{"messages":[]}"#), None);
    }

    #[test]
    fn iterates_messages_one_by_one() {
        let raw = RawValue::from_string(r#"[ {"role":"user","content":"first"} , {"role":"assistant"} ]"#.to_owned())
            .unwrap();
        let roles: Vec<String> = messages(&raw).map(|m| m.role.into_owned()).collect();
        assert_eq!(roles, ["user", "assistant"]);
        let empty = RawValue::from_string("[]".to_owned()).unwrap();
        assert_eq!(messages(&empty).count(), 0);
    }
}
