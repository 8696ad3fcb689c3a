//! An Anthropic Messages client served by an OpenAI chat completions upstream.

use serde_json::{Map, Value, json};

use wire::content::text_of_value;
use wire::errors::{ErrorKind, ErrorShape};

use crate::{
    Options, SseEvent, TranslateError, into_object, kind_of, reject_unsupported, role_error, upstream_error_message,
};

/// Anthropic request fields that steer how the model works (extended thinking, server
/// context management, priority) rather than what it answers; an OpenAI upstream has
/// no equivalent, and the answer stands without them.
const IGNORED: &[&str] = &["thinking", "context_management", "service_tier"];

/// Anthropic's `output_config` (Claude Code sends `{"effort": "high"}` on every
/// request): `effort` steers how hard the model thinks, which an OpenAI chat model
/// takes no instruction for, so it goes; `format` (structured output) becomes
/// `response_format`; anything else is unsupported.
fn output_config(config: Value, out: &mut Map<String, Value>, unsupported: &mut Vec<String>) {
    let Value::Object(config) = config else { return };
    for (key, value) in config {
        match key.as_str() {
            "effort" => {}
            "format" if value["type"] == "json_schema" => {
                let schema = value.get("schema").cloned().unwrap_or_else(|| json!({}));
                let format = json!({ "name": "output", "schema": schema, "strict": true });
                out.insert("response_format".into(), json!({ "type": "json_schema", "json_schema": format }));
            }
            _ => unsupported.push(format!("output_config.{key}")),
        }
    }
}

/// Anthropic messages request -> OpenAI chat request.
pub fn request(body: Value, options: &Options) -> Result<Value, TranslateError> {
    let source = into_object(body, "request body")?;
    let mut out = Map::new();
    let mut unsupported = Vec::new();
    let mut system = None;
    let mut messages_in = None;
    let mut parallel_tool_calls = true;

    for (key, value) in source {
        match key.as_str() {
            "model" | "temperature" | "top_p" => {
                out.insert(key, value);
            }
            "stream" => {
                if value == Value::Bool(true) {
                    // Anthropic clients expect usage at the end of every stream.
                    out.insert("stream_options".into(), json!({ "include_usage": true }));
                }
                out.insert(key, value);
            }
            "system" => system = Some(value),
            "messages" => messages_in = Some(value),
            "max_tokens" => {
                out.insert(options.max_tokens_field.key().into(), value);
            }
            "stop_sequences" => {
                out.insert("stop".into(), value);
            }
            "tools" => {
                let (tools, server_tools) = tools(value)?;
                unsupported.extend(server_tools);
                if !tools.is_empty() {
                    out.insert(key, Value::Array(tools));
                }
            }
            "tool_choice" => {
                parallel_tool_calls = value["disable_parallel_tool_use"] != true;
                out.insert(key, tool_choice(&value)?);
            }
            "metadata" => {
                if let Some(user) = value.get("user_id").and_then(Value::as_str) {
                    out.insert("user".into(), Value::String(user.to_owned()));
                }
            }
            "output_config" => output_config(value, &mut out, &mut unsupported),
            _ if IGNORED.contains(&key.as_str()) => {}
            _ if value.is_null() => {}
            _ => unsupported.push(key),
        }
    }
    reject_unsupported(&unsupported, "an OpenAI chat upstream", options)?;

    let mut messages = Vec::new();
    if let Some(system) = system {
        let text = text_of_value(&system);
        if !text.is_empty() {
            messages.push(json!({ "role": "system", "content": text }));
        }
    }
    let Some(messages_in) = messages_in else {
        return Err(TranslateError::param("messages", "`messages` is required"));
    };
    convert_messages(messages_in, &mut messages)?;
    out.insert("messages".into(), Value::Array(messages));
    if !parallel_tool_calls && out.contains_key("tools") {
        out.insert("parallel_tool_calls".into(), Value::Bool(false));
    }
    Ok(Value::Object(out))
}

fn convert_messages(value: Value, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let Value::Array(list) = value else {
        return Err(TranslateError::param("messages", format!("`messages` must be an array, got {}", kind_of(&value))));
    };
    for (i, message) in list.into_iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        match role {
            "user" => user_message(&message["content"], i, out)?,
            "assistant" => out.push(assistant_message(&message["content"], i)?),
            // Claude Code (2.1.3xx) puts its environment in a system turn among the
            // messages; chat takes system messages anywhere.
            "system" => out.push(json!({ "role": "system", "content": text_of_value(&message["content"]) })),
            other => return Err(role_error(i, other, "user, assistant or system")),
        }
    }
    Ok(())
}

/// A user turn: its tool results become `tool` messages (they answer the previous
/// assistant turn, so they come first), the rest one user message.
fn user_message(content: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let blocks = match content {
        Value::String(text) => {
            out.push(json!({ "role": "user", "content": text }));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        other => {
            return Err(TranslateError::param(
                format!("messages[{i}].content"),
                format!("messages[{i}].content must be a string or an array, got {}", kind_of(other)),
            ));
        }
    };
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        match block["type"].as_str() {
            Some("text") => parts.push(json!({ "type": "text", "text": block["text"] })),
            Some("image") => parts.push(json!({ "type": "image_url", "image_url": { "url": image_url(&block["source"]).ok_or_else(|| TranslateError::param(param(), format!("{}: unsupported image source", param())))? } })),
            Some("tool_result") => {
                let mut text = text_of_value(&block["content"]);
                if block["is_error"] == true {
                    text = format!("Error: {text}");
                }
                out.push(json!({ "role": "tool", "tool_call_id": block["tool_use_id"], "content": text }));
            }
            Some(other) => {
                return Err(TranslateError::param(param(), format!("{}: content block type `{other}` is not supported by an OpenAI chat upstream", param())));
            }
            None => return Err(TranslateError::param(param(), format!("{}: a content block needs a `type`", param()))),
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    // Plain text goes as a string: some OpenAI-compatible servers accept nothing else.
    let content = if parts.iter().all(|p| p["type"] == "text") {
        Value::String(parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n"))
    } else {
        Value::Array(parts)
    };
    out.push(json!({ "role": "user", "content": content }));
    Ok(())
}

fn image_url(source: &Value) -> Option<String> {
    match source["type"].as_str()? {
        "base64" => Some(format!("data:{};base64,{}", source["media_type"].as_str()?, source["data"].as_str()?)),
        "url" => source["url"].as_str().map(str::to_owned),
        _ => None,
    }
}

fn assistant_message(content: &Value, i: usize) -> Result<Value, TranslateError> {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    match content {
        Value::String(s) => text.push_str(s),
        Value::Array(blocks) => {
            for block in blocks {
                match block["type"].as_str() {
                    Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
                    Some("tool_use") => tool_calls.push(json!({
                        "id": block["id"],
                        "type": "function",
                        "function": { "name": block["name"], "arguments": block["input"].to_string() },
                    })),
                    // The upstream cannot read another model's thinking; it is dropped.
                    _ => {}
                }
            }
        }
        other => {
            return Err(TranslateError::param(
                format!("messages[{i}].content"),
                format!("messages[{i}].content must be a string or an array, got {}", kind_of(other)),
            ));
        }
    }
    let mut message = json!({ "role": "assistant", "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { Value::String(text) } });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    Ok(message)
}

/// Anthropic tools -> OpenAI function tools, and the names of server tools (web
/// search, code execution, ...) that only Anthropic can run.
fn tools(value: Value) -> Result<(Vec<Value>, Vec<String>), TranslateError> {
    let Value::Array(list) = value else {
        return Err(TranslateError::param("tools", "`tools` must be an array"));
    };
    let mut functions = Vec::with_capacity(list.len());
    let mut server_tools = Vec::new();
    for (i, tool) in list.into_iter().enumerate() {
        if tool.get("type").and_then(Value::as_str).is_some_and(|t| t != "custom") {
            server_tools.push(format!("tools[{i}] ({})", tool["type"].as_str().unwrap_or_default()));
            continue;
        }
        let name = tool["name"]
            .as_str()
            .ok_or_else(|| TranslateError::param(format!("tools[{i}].name"), format!("tools[{i}].name is required")))?;
        let mut function = json!({ "name": name, "parameters": tool["input_schema"] });
        if let Some(description) = tool.get("description") {
            function["description"] = description.clone();
        }
        functions.push(json!({ "type": "function", "function": function }));
    }
    Ok((functions, server_tools))
}

fn tool_choice(value: &Value) -> Result<Value, TranslateError> {
    Ok(match value["type"].as_str() {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({ "type": "function", "function": { "name": value["name"] } }),
        _ => return Err(TranslateError::param("tool_choice", "`tool_choice.type` must be auto, any, tool or none")),
    })
}

fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// OpenAI usage -> Anthropic usage (cached prompt tokens are counted apart).
fn usage(usage: &Value) -> Value {
    let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
    let cached = usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0);
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "output_tokens": usage["completion_tokens"].as_u64().unwrap_or(0),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    })
}

/// OpenAI chat completion -> Anthropic messages response.
pub fn response(body: Value) -> Result<Value, TranslateError> {
    let completion = into_object(body, "upstream response")?;
    let choice = completion
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| TranslateError::new("upstream response has no choices"))?;
    let message = &choice["message"];
    let mut content = Vec::new();
    let text = text_of_value(&message["content"]);
    if !text.is_empty() {
        content.push(json!({ "type": "text", "text": text }));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
        let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
        content.push(json!({ "type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": input }));
    }
    Ok(json!({
        "id": completion.get("id").cloned().unwrap_or(Value::Null),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model").cloned().unwrap_or(Value::Null),
        "content": content,
        "stop_reason": stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
        "stop_sequence": null,
        "usage": usage(completion.get("usage").unwrap_or(&Value::Null)),
    }))
}

/// An OpenAI error response -> the Anthropic error JSON for the same status.
pub fn error(status: u16, body: &[u8]) -> Value {
    let (message, _) = upstream_error_message(status, body);
    ErrorShape::Anthropic.body(ErrorKind::from_status(status), &message, None, None)
}

/// The event that tells an Anthropic client its stream broke off.
pub fn stream_error(message: &str) -> SseEvent {
    ErrorShape::Anthropic.stream_event(&ErrorShape::Anthropic.body(ErrorKind::BadGateway, message, None, None))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    /// A tool use, by the OpenAI tool call index that feeds it.
    Tool(u64),
}

/// OpenAI chat completion chunks -> Anthropic stream events.
pub struct StreamTranslator {
    started: bool,
    /// The content block being streamed: its Anthropic index and what it holds.
    open: Option<(usize, Block)>,
    next_index: usize,
    stop_reason: Option<&'static str>,
    usage: Value,
    done: bool,
}

impl Default for StreamTranslator {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamTranslator {
    pub fn new() -> Self {
        Self { started: false, open: None, next_index: 0, stop_reason: None, usage: Value::Null, done: false }
    }

    fn event(kind: &str, data: Value) -> SseEvent {
        SseEvent::named(kind, data.to_string())
    }

    fn close_block(&mut self, events: &mut Vec<SseEvent>) {
        if let Some((index, _)) = self.open.take() {
            events.push(Self::event("content_block_stop", json!({ "type": "content_block_stop", "index": index })));
        }
    }

    /// Makes `kind` the open block, closing any other; returns its index.
    fn open_block(&mut self, kind: Block, start: Value, events: &mut Vec<SseEvent>) -> usize {
        if let Some((index, open)) = self.open
            && open == kind
        {
            return index;
        }
        self.close_block(events);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, kind));
        events.push(Self::event(
            "content_block_start",
            json!({ "type": "content_block_start", "index": index, "content_block": start }),
        ));
        index
    }

    pub fn push(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if event.data.trim() == "[DONE]" {
            self.end_message(&mut events);
            return events;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else {
            return events;
        };
        if let Some(error) = chunk.get("error") {
            self.done = true;
            let message = error["message"].as_str().unwrap_or("upstream stream error");
            events.push(stream_error(message));
            return events;
        }
        if !self.started {
            self.started = true;
            events.push(Self::event(
                "message_start",
                json!({ "type": "message_start", "message": {
                    "id": chunk["id"], "type": "message", "role": "assistant", "model": chunk["model"],
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": { "input_tokens": 0, "output_tokens": 0 },
                } }),
            ));
        }
        if chunk["usage"].is_object() {
            self.usage = chunk["usage"].clone();
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            let index = self.open_block(Block::Text, json!({ "type": "text", "text": "" }), &mut events);
            events.push(Self::event(
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": index, "delta": { "type": "text_delta", "text": text } }),
            ));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let call_index = call["index"].as_u64().unwrap_or(0);
            let start = json!({ "type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": {} });
            let index = self.open_block(Block::Tool(call_index), start, &mut events);
            if let Some(arguments) = call["function"]["arguments"].as_str().filter(|a| !a.is_empty()) {
                events.push(Self::event(
                    "content_block_delta",
                    json!({ "type": "content_block_delta", "index": index, "delta": { "type": "input_json_delta", "partial_json": arguments } }),
                ));
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.stop_reason = Some(stop_reason(reason));
        }
        events
    }

    fn end_message(&mut self, events: &mut Vec<SseEvent>) {
        if self.done || !self.started {
            return;
        }
        self.done = true;
        self.close_block(events);
        let mut usage = usage(&self.usage);
        if self.usage.is_null() {
            usage = json!({ "output_tokens": 0 });
        }
        events.push(Self::event(
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null }, "usage": usage }),
        ));
        events.push(Self::event("message_stop", json!({ "type": "message_stop" })));
    }

    /// The upstream stream ended: closes the message if the upstream had finished it
    /// (some servers end without `[DONE]`).
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if self.stop_reason.is_some() {
            self.end_message(&mut events);
        }
        events
    }

    /// True once the upstream's stream reached its proper end (or its own error).
    pub fn completed(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests;
