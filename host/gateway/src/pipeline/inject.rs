//! Stage 5, inject: newly recalled memories go to the memory-injector plugin, whose
//! patch becomes one of the conversation's blocks; every block of the conversation is
//! applied to the request body in the client's API, in its place. Only what a block
//! touches is re-encoded; everything else stays as the client sent it.

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::recall::Recalled;
use crate::core::api::ClientApi;
use crate::core::body::JsonBody;
use crate::core::error::{ErrorKind, GatewayError};
use crate::core::identity::Identity;
use crate::core::prompt::user_message_span;
use crate::plugins::PluginSet;
use crate::plugins::hooks::{InjectRequest, Memory, Patch, Position, Scope};
use crate::services::memory::conversation::{Block, Injected, Place};

/// What injection did to a request.
pub struct Injection {
    /// The conversation's state, when this request changed it (to be kept).
    pub changed: Option<Injected>,
    /// Memories offered to the injector for this request: id and score, best first.
    pub recalled: Vec<(String, f32)>,
}

/// Stage 5: a block for what was newly recalled (placed where the injector says on a
/// conversation's first turn, into the asking user message on later ones), then every
/// block of the conversation applied, each in its place, byte for byte as before.
pub async fn inject(
    plugins: &PluginSet,
    api: ClientApi,
    identity: &Identity,
    body: &mut JsonBody,
    recalled: Recalled,
    token_budget: u32,
) -> Result<Injection, GatewayError> {
    let Recalled { before, asked, query, memories, .. } = recalled;
    let recalled = memories.iter().map(|m| (m.id.clone(), m.score)).collect();
    let mut changed = None;
    if let Some(asked) = asked {
        let mut state = (*before).clone();
        let ids: Vec<String> = memories.iter().map(|m| m.id.clone()).collect();
        if let Some(patch) = patch_for(plugins, api, identity, &query, memories, token_budget).await? {
            let first_turn = state.asked.is_empty() && state.blocks.is_empty();
            let place = match patch.position {
                Position::SystemPrepend if first_turn => Place::SystemStart,
                Position::SystemAppend if first_turn => Place::SystemEnd,
                _ => Place::UserMessage { index: asked.index },
            };
            state.blocks.push(Block { place, text: patch.text });
            state.recalled.extend(ids);
        }
        state.asked.push(asked);
        changed = Some(state);
    }
    let blocks = changed.as_ref().map_or(&before.blocks, |state| &state.blocks);
    for block in blocks {
        apply_block(api, body, block)?;
    }
    Ok(Injection { changed, recalled })
}

/// The injector's patch for `memories` (recalled for `query`); None without memories,
/// an injector or a patch.
pub async fn patch_for(
    plugins: &PluginSet,
    api: ClientApi,
    identity: &Identity,
    query: &str,
    memories: Vec<Memory>,
    token_budget: u32,
) -> Result<Option<Patch>, GatewayError> {
    if memories.is_empty() {
        return Ok(None);
    }
    let request = InjectRequest {
        api: api.into(),
        scope: Scope {
            user: identity.user.value.clone(),
            project: identity.project().map(str::to_owned),
            client: identity.client().map(str::to_owned),
        },
        query: query.to_owned(),
        memories,
        token_budget,
    };
    plugins.inject(&request).await
}

/// Applies one of a conversation's blocks. A block whose user message is no longer
/// there (the client rewrote the conversation) is left out.
fn apply_block(api: ClientApi, body: &mut JsonBody, block: &Block) -> Result<(), GatewayError> {
    let position = match block.place {
        Place::SystemStart => Position::SystemPrepend,
        Place::SystemEnd => Position::SystemAppend,
        Place::UserMessage { index } => return into_user_message(api, body, index, &block.text),
    };
    apply_patch(api, body, &Patch { position, text: block.text.clone() })
}

/// `text` into the user message at `index`, before its words. Only that message is
/// parsed and written again; the rest of the conversation keeps its bytes.
fn into_user_message(api: ClientApi, body: &mut JsonBody, index: usize, text: &str) -> Result<(), GatewayError> {
    let field = if api == ClientApi::OpenAiResponses && body.contains("input") { "input" } else { "messages" };
    let Some(raw) = body.raw(field) else { return Ok(()) };
    let whole = raw.get();
    let spliced = if let Ok(only) = serde_json::from_str::<String>(whole) {
        serde_json::to_string(&format!("{text}\n\n{only}")).map_err(|e| internal(&e))?
    } else {
        let Some((start, end)) = user_message_span(raw, index) else { return Ok(()) };
        let mut message: Value = serde_json::from_str(&whole[start..end]).map_err(|_| malformed(field))?;
        let content = add_before_user_text(message["content"].take(), text, api).ok_or_else(|| malformed(field))?;
        message["content"] = content;
        let message = serde_json::to_string(&message).map_err(|e| internal(&e))?;
        [&whole[..start], &message, &whole[end..]].concat()
    };
    body.set_raw(field, RawValue::from_string(spliced).map_err(|e| internal(&e))?);
    Ok(())
}

fn internal(error: &serde_json::Error) -> GatewayError {
    GatewayError::new(ErrorKind::Internal, error.to_string())
}

fn malformed(field: &str) -> GatewayError {
    GatewayError::invalid(format!("`{field}` is malformed")).with_param(field)
}

fn read(body: &JsonBody, field: &str) -> Result<Value, GatewayError> {
    Ok(body.get::<Value>(field)?.unwrap_or(Value::Null))
}

fn write(body: &mut JsonBody, field: &str, value: &Value) -> Result<(), GatewayError> {
    body.set(field, value).map_err(|e| GatewayError::new(ErrorKind::Internal, e.to_string()))
}

/// Applies a patch to the body of a request in `api`.
pub fn apply_patch(api: ClientApi, body: &mut JsonBody, patch: &Patch) -> Result<(), GatewayError> {
    let text = patch.text.as_str();
    match (api, patch.position) {
        (
            ClientApi::AnthropicMessages | ClientApi::AnthropicCountTokens,
            Position::SystemPrepend | Position::SystemAppend,
        ) => {
            let system = add_to_content(read(body, "system")?, text, patch.position == Position::SystemPrepend)
                .ok_or_else(|| malformed("system"))?;
            write(body, "system", &system)
        }
        (ClientApi::OpenAiResponses, Position::SystemPrepend | Position::SystemAppend) => {
            let instructions = match read(body, "instructions")? {
                Value::String(existing) if patch.position == Position::SystemPrepend => format!("{text}\n\n{existing}"),
                Value::String(existing) => format!("{existing}\n\n{text}"),
                _ => text.to_owned(),
            };
            write(body, "instructions", &Value::String(instructions))
        }
        (ClientApi::OpenAiChat, Position::SystemPrepend | Position::SystemAppend) => {
            let mut messages = read(body, "messages")?;
            let list = messages.as_array_mut().ok_or_else(|| malformed("messages"))?;
            let prepend = patch.position == Position::SystemPrepend;
            match list.iter_mut().find(|m| m["role"] == "system" || m["role"] == "developer") {
                Some(system) => {
                    let content =
                        add_to_content(system["content"].take(), text, prepend).ok_or_else(|| malformed("messages"))?;
                    system["content"] = content;
                }
                None => list.insert(0, json!({ "role": "system", "content": text })),
            }
            write(body, "messages", &messages)
        }
        (_, Position::BeforeLastUser) => {
            let field = if api == ClientApi::OpenAiResponses { "input" } else { "messages" };
            let mut conversation = read(body, field)?;
            if let Value::String(only) = &conversation {
                conversation = Value::String(format!("{text}\n\n{only}"));
            } else {
                let list = conversation.as_array_mut().ok_or_else(|| malformed(field))?;
                let last_user = list.iter_mut().rev().find(|m| m["role"] == "user").ok_or_else(|| {
                    GatewayError::invalid(format!("`{field}` has no user message to put memories before"))
                        .with_param(field)
                })?;
                let content =
                    add_before_user_text(last_user["content"].take(), text, api).ok_or_else(|| malformed(field))?;
                last_user["content"] = content;
            }
            write(body, field, &conversation)
        }
        (ClientApi::OpenAiEmbeddings, _) => Ok(()),
    }
}

/// `text` added to a content value that is absent, a string or a list of text parts.
fn add_to_content(content: Value, text: &str, prepend: bool) -> Option<Value> {
    Some(match content {
        Value::Null => Value::String(text.to_owned()),
        Value::String(existing) if prepend => Value::String(format!("{text}\n\n{existing}")),
        Value::String(existing) => Value::String(format!("{existing}\n\n{text}")),
        Value::Array(mut parts) => {
            // Appending keeps any cached prefix (cache_control blocks) intact.
            let part = json!({ "type": "text", "text": text });
            if prepend {
                parts.insert(0, part);
            } else {
                parts.push(part);
            }
            Value::Array(parts)
        }
        _ => return None,
    })
}

/// `text` before the user's own words: after any tool results (Anthropic wants those
/// first in a user turn).
fn add_before_user_text(content: Value, text: &str, api: ClientApi) -> Option<Value> {
    Some(match content {
        Value::String(existing) => Value::String(format!("{text}\n\n{existing}")),
        Value::Array(mut parts) => {
            let kind = if api == ClientApi::OpenAiResponses { "input_text" } else { "text" };
            let at = parts.iter().take_while(|p| p["type"] == "tool_result").count();
            parts.insert(at, json!({ "type": kind, "text": text }));
            Value::Array(parts)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patched(api: ClientApi, body: &str, position: Position) -> Value {
        let mut body = JsonBody::parse(body.as_bytes()).unwrap();
        apply_patch(api, &mut body, &Patch { position, text: "MEM".into() }).unwrap();
        serde_json::from_slice(&body.to_bytes()).unwrap()
    }

    #[test]
    fn anthropic_system_string_blocks_or_none() {
        let out = patched(ClientApi::AnthropicMessages, r#"{"system":"S","messages":[]}"#, Position::SystemAppend);
        assert_eq!(out["system"], "S\n\nMEM");
        let out = patched(
            ClientApi::AnthropicMessages,
            r#"{"system":[{"type":"text","text":"S","cache_control":{"type":"ephemeral"}}],"messages":[]}"#,
            Position::SystemAppend,
        );
        assert_eq!(out["system"][1], json!({ "type": "text", "text": "MEM" }));
        assert_eq!(out["system"][0]["cache_control"]["type"], "ephemeral", "the cached prefix is untouched");
        let out = patched(ClientApi::AnthropicMessages, r#"{"messages":[]}"#, Position::SystemPrepend);
        assert_eq!(out["system"], "MEM");
    }

    #[test]
    fn openai_system_message_found_or_created() {
        let out = patched(
            ClientApi::OpenAiChat,
            r#"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"Q"}]}"#,
            Position::SystemPrepend,
        );
        assert_eq!(out["messages"][0]["content"], "MEM\n\nS");
        let out =
            patched(ClientApi::OpenAiChat, r#"{"messages":[{"role":"user","content":"Q"}]}"#, Position::SystemAppend);
        assert_eq!(out["messages"][0], json!({ "role": "system", "content": "MEM" }));
        assert_eq!(out["messages"][1]["content"], "Q");
    }

    #[test]
    fn before_the_last_user_words_after_tool_results() {
        let out = patched(
            ClientApi::AnthropicMessages,
            r#"{"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"r"},{"type":"text","text":"Q"}]}]}"#,
            Position::BeforeLastUser,
        );
        assert_eq!(out["messages"][0]["content"], "first");
        assert_eq!(out["messages"][2]["content"][0]["type"], "tool_result");
        assert_eq!(out["messages"][2]["content"][1], json!({ "type": "text", "text": "MEM" }));
        let out = patched(ClientApi::OpenAiResponses, r#"{"input":"Q"}"#, Position::BeforeLastUser);
        assert_eq!(out["input"], "MEM\n\nQ");
        let out = patched(ClientApi::OpenAiResponses, r#"{"instructions":"I","input":"Q"}"#, Position::SystemAppend);
        assert_eq!(out["instructions"], "I\n\nMEM");
    }

    #[test]
    fn other_fields_keep_their_bytes() {
        let mut body =
            JsonBody::parse(br#"{"model":"m","messages":[{"role":"user","content":"Q"}],"extra":{"n":1.50}}"#).unwrap();
        apply_patch(ClientApi::OpenAiChat, &mut body, &Patch { position: Position::SystemAppend, text: "MEM".into() })
            .unwrap();
        let text = String::from_utf8(body.to_bytes().to_vec()).unwrap();
        assert!(text.starts_with(r#"{"model":"m","messages":"#) && text.ends_with(r#""extra":{"n":1.50}}"#), "{text}");
    }
}
