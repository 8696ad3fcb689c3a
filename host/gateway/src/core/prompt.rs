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
/// text (capped: head), read without parsing the conversation past its first turn.
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
            // The first turn: system and developer messages around the first user
            // message (Claude Code 2.1.3xx states its environment in a system message
            // after it), up to the first answer.
            let mut seen_user = false;
            for message in messages(raw) {
                match message.role.as_ref() {
                    "system" | "developer" => {
                        if !system.is_empty() {
                            system.push('\n');
                        }
                        system.push_str(&message.content.map(text_of).unwrap_or_default());
                    }
                    "user" if !seen_user => {
                        user = message.content.map(text_of).unwrap_or_default();
                        seen_user = true;
                    }
                    "user" => {}
                    _ => break,
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
    /// The text of the last user message that has any of the user's own.
    pub text: String,
    /// That message's place in the conversation (`messages` or `input`).
    pub index: usize,
    /// Nothing but the client's own system messages follows it: a new turn. Otherwise
    /// the client is going round a tool loop (its last message holds tool results, or
    /// only scaffolding).
    pub new_turn: bool,
}

/// The user's words of the newest turn: the newest user message's text, without the
/// elements of the `scaffolding` tags the client wraps around them (its reminders,
/// context, command output); a user message left with no words is passed over.
pub fn user_words(body: &JsonBody, scaffolding: &[String]) -> Option<UserWords> {
    let raw = body.raw("messages").or_else(|| body.raw("input"))?;
    let words = |raw: &RawValue| {
        let text = text_of(raw);
        let text = match without_elements(&text, scaffolding) {
            Cow::Borrowed(_) => text,
            Cow::Owned(stripped) => stripped,
        };
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    };
    if raw.get().starts_with('"') {
        return words(raw).map(|text| UserWords { text, index: 0, new_turn: true });
    }
    let mut user_contents = Vec::new();
    // The last message that is neither a user's nor the client's own system text: a
    // user message after it is a new turn (an answer or tool call before it is not).
    let mut last_answer = None;
    for (index, message) in messages(raw).enumerate() {
        match message.role.as_ref() {
            "user" => user_contents.push((index, message.content)),
            "system" | "developer" => {}
            _ => last_answer = Some(index),
        }
    }
    user_contents.into_iter().rev().find_map(|(index, content)| {
        let text = words(content?)?;
        let new_turn = last_answer.is_none_or(|answer| answer < index);
        Some(UserWords { text, index, new_turn })
    })
}

/// `text` without each `<tag>...</tag>` element of `tags` (an element left open runs
/// to the end).
fn without_elements<'t>(text: &'t str, tags: &[String]) -> Cow<'t, str> {
    let mut text = Cow::Borrowed(text);
    for tag in tags {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        while let Some(start) = text.find(&open) {
            let end = text[start..].find(&close).map_or(text.len(), |at| start + at + close.len());
            text.to_mut().replace_range(start..end, "");
        }
    }
    text
}

#[derive(Deserialize)]
struct MessageView<'a> {
    #[serde(borrow, default)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    /// Where the message is in the array's text (set by [`messages`]).
    #[serde(skip)]
    span: (usize, usize),
}

/// How a conversation opens, as raw JSON text: from its start through its first user
/// message (system and developer messages before it included), or a whole string
/// input. Agents resend it unchanged on every turn.
pub fn opening(conversation: &RawValue) -> &str {
    let text = conversation.get();
    if text.starts_with('"') {
        return text;
    }
    match messages(conversation).find(|m| m.role == "user") {
        Some(first) => &text[..first.span.1],
        None => text,
    }
}

/// Where the message at `index` is in the conversation's text, when it is the user's.
pub fn user_message_span(conversation: &RawValue, index: usize) -> Option<(usize, usize)> {
    messages(conversation).nth(index).filter(|m| m.role == "user").map(|m| m.span)
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
            Some(Ok(mut message)) => {
                let after = offset + stream.byte_offset();
                message.span = (offset, after);
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
        let words = |body: &str| user_words(&JsonBody::parse(body.as_bytes()).unwrap(), &[]);
        let new = words(
            r#"{"messages":[{"role":"user","content":"old"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"text","text":"new"}]}]}"#,
        );
        assert_eq!(new, Some(UserWords { text: "new".into(), index: 2, new_turn: true }));
        let looping = words(
            r#"{"messages":[{"role":"user","content":"fix it"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"x","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"done"}]}]}"#,
        );
        assert_eq!(looping, Some(UserWords { text: "fix it".into(), index: 0, new_turn: false }));
        let responses = words(
            r#"{"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"fix it"}]},{"type":"function_call_output","call_id":"c","output":"ok"}]}"#,
        );
        assert_eq!(responses, Some(UserWords { text: "fix it".into(), index: 0, new_turn: false }));
        assert_eq!(words(r#"{"input":"hi"}"#), Some(UserWords { text: "hi".into(), index: 0, new_turn: true }));
        assert_eq!(words(r#"{"messages":[{"role":"user","content":"  "}]}"#), None);
        assert_eq!(words(r#"{"messages":[]}"#), None);
    }

    #[test]
    fn system_messages_after_the_user_message_neither_hide_it_nor_end_the_turn() {
        // Claude Code 2.1.3xx: the environment as a system message after the user's.
        let body = r#"{"system":"S","messages":[{"role":"user","content":"Q"},{"role":"system","content":"- Primary working directory: /srv/x"}]}"#;
        let (system, user) = excerpt(ClientApi::AnthropicMessages, body);
        assert_eq!((system.as_str(), user.as_str()), ("S\n- Primary working directory: /srv/x", "Q"));
        let words = user_words(&JsonBody::parse(body.as_bytes()).unwrap(), &[]);
        assert_eq!(words, Some(UserWords { text: "Q".into(), index: 0, new_turn: true }));
        let looping = r#"{"messages":[{"role":"user","content":"Q"},{"role":"system","content":"E"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"r"}]}]}"#;
        let words = user_words(&JsonBody::parse(looping.as_bytes()).unwrap(), &[]);
        assert_eq!(words, Some(UserWords { text: "Q".into(), index: 0, new_turn: false }));
        let (system, _) = excerpt(ClientApi::AnthropicMessages, looping);
        assert_eq!(system, "E", "the first turn only");
    }

    #[test]
    fn user_words_without_the_clients_scaffolding() {
        let tags = ["system-reminder".to_owned(), "environment_context".to_owned()];
        let words = |body: &str| user_words(&JsonBody::parse(body.as_bytes()).unwrap(), &tags);
        // Claude Code: reminders as blocks before the words, and inside a block.
        let claude = words(
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"<system-reminder>\nAgents: ...\n</system-reminder>"},{"type":"text","text":"Our staging database is called heron <system-reminder>today is Monday</system-reminder>"}]}]}"#,
        );
        assert_eq!(
            claude,
            Some(UserWords { text: "Our staging database is called heron".into(), index: 0, new_turn: true })
        );
        // A tool loop whose last user message holds a tool result and a reminder only.
        let looping = words(
            r#"{"messages":[{"role":"user","content":"fix it"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"x","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"done"},{"type":"text","text":"<system-reminder>x</system-reminder>"}]}]}"#,
        );
        assert_eq!(looping, Some(UserWords { text: "fix it".into(), index: 0, new_turn: false }));
        // Codex: the environment context is a user message of its own.
        let codex = words(
            r#"{"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"<environment_context>\n<cwd>/x</cwd>\n</environment_context>"}]},{"type":"message","role":"user","content":[{"type":"input_text","text":"Say hello"}]}]}"#,
        );
        assert_eq!(codex, Some(UserWords { text: "Say hello".into(), index: 1, new_turn: true }));
        let unclosed = words(r#"{"messages":[{"role":"user","content":"Hi <system-reminder> and the rest"}]}"#);
        assert_eq!(unclosed.map(|w| w.text).as_deref(), Some("Hi"));
        let only = words(r#"{"messages":[{"role":"user","content":"<system-reminder>x</system-reminder>"}]}"#);
        assert_eq!(only, None);
    }

    #[test]
    fn openings_and_user_message_spans() {
        let raw = RawValue::from_string(
            r#"[{"role":"system","content":"S"},{"role":"user","content":"Q1"},{"role":"assistant","content":"A"},{"role":"user","content":"Q2"}]"#.to_owned(),
        )
        .unwrap();
        assert_eq!(opening(&raw), r#"[{"role":"system","content":"S"},{"role":"user","content":"Q1"}"#);
        let (start, end) = user_message_span(&raw, 3).unwrap();
        assert_eq!(&raw.get()[start..end], r#"{"role":"user","content":"Q2"}"#);
        assert_eq!(user_message_span(&raw, 2), None, "not a user message");
        assert_eq!(user_message_span(&raw, 9), None);
        let input = RawValue::from_string(r#""just text""#.to_owned()).unwrap();
        assert_eq!(opening(&input), r#""just text""#);
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
