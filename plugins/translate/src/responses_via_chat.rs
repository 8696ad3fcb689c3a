//! An OpenAI Responses client (Codex CLI, the SDKs' `responses.create`) served by an
//! OpenAI chat completions upstream (a chat-only OpenAI-compatible server).
//!
//! Through translation the Responses API is stateless: the client sends its whole
//! conversation in `input` (as Codex does with `store: false`); `previous_response_id`
//! and item references need a provider that stores responses and are refused.
//! What chat completions cannot express is documented in docs/clients.md: hosted tools
//! (web search, file search, ...) and namespaced tools are left out of `tools`, replayed
//! reasoning items are dropped, and only `reasoning.effort` travels (as
//! `reasoning_effort`).

use serde_json::{Map, Value, json};

use wire::content::text_of_value;
use wire::errors::{ErrorKind, ErrorShape};

use crate::{Options, SseEvent, TranslateError, into_object, kind_of, reject_unsupported, upstream_error_message};

/// Responses request fields with no effect on the answer, or none a chat upstream can
/// honour, that are safe to leave out.
const IGNORED: &[&str] = &[
    "store",
    "include",
    "prompt_cache_key",
    "client_metadata",
    "metadata",
    "service_tier",
    "truncation",
    "safety_identifier",
    "stream_options",
];

/// Responses request -> chat completions request.
pub fn request(body: Value, options: &Options) -> Result<Value, TranslateError> {
    let source = into_object(body, "request body")?;
    let mut out = Map::new();
    let mut instructions = None;
    let mut input = None;
    let mut unsupported = Vec::new();

    for (key, value) in source {
        match key.as_str() {
            "model" | "temperature" | "top_p" | "parallel_tool_calls" | "user" => {
                out.insert(key, value);
            }
            "stream" => {
                if value == Value::Bool(true) {
                    // A Responses stream always ends with its usage; a chat stream only when asked.
                    out.insert("stream_options".into(), json!({ "include_usage": true }));
                }
                out.insert(key, value);
            }
            "instructions" => instructions = Some(value),
            "input" => input = Some(value),
            "max_output_tokens" => {
                out.insert(options.max_tokens_field.key().into(), value);
            }
            "tools" => {
                if let Some(tools) = tools(value)? {
                    out.insert(key, tools);
                }
            }
            "tool_choice" => {
                if let Some(choice) = tool_choice(value)? {
                    out.insert(key, choice);
                }
            }
            "reasoning" => {
                if let Some(effort) = value.get("effort").filter(|e| e.is_string()) {
                    out.insert("reasoning_effort".into(), effort.clone());
                }
            }
            "text" => {
                if let Some(format) = response_format(&value["format"])? {
                    out.insert("response_format".into(), format);
                }
            }
            "previous_response_id" | "conversation" if !value.is_null() => {
                return Err(TranslateError::param(
                    key.clone(),
                    format!(
                        "`{key}` needs a provider that stores responses; this model is reached through chat completions, so send the whole conversation in `input`"
                    ),
                ));
            }
            "background" if value != Value::Bool(true) => {}
            _ if IGNORED.contains(&key.as_str()) => {}
            _ if value.is_null() => {}
            _ => unsupported.push(key),
        }
    }
    reject_unsupported(&unsupported, "chat completions", options)?;

    let mut messages = Vec::new();
    match instructions {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(json!({ "role": "system", "content": text })),
        Some(other) => {
            return Err(TranslateError::param(
                "instructions",
                format!("`instructions` must be a string, got {}", kind_of(&other)),
            ));
        }
    }
    match input {
        Some(Value::String(text)) => messages.push(json!({ "role": "user", "content": text })),
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                push_item(&mut messages, i, item)?;
            }
        }
        None | Some(Value::Null) => return Err(TranslateError::param("input", "`input` is required")),
        Some(other) => {
            return Err(TranslateError::param(
                "input",
                format!("`input` must be a string or an array of items, got {}", kind_of(&other)),
            ));
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    Ok(Value::Object(out))
}

/// One Responses input item as chat messages. A function call joins the assistant
/// message before it, so parallel calls stay one assistant turn.
fn push_item(messages: &mut Vec<Value>, i: usize, item: Value) -> Result<(), TranslateError> {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
    match kind {
        "message" => {
            let role = match item.get("role").and_then(Value::as_str) {
                Some("system" | "developer") => "system",
                Some("user") => "user",
                Some("assistant") => "assistant",
                Some(other) => {
                    return Err(TranslateError::param(
                        format!("input[{i}].role"),
                        format!(
                            "input[{i}]: role `{other}` is not supported; use developer, system, user or assistant"
                        ),
                    ));
                }
                None => {
                    return Err(TranslateError::param(format!("input[{i}].role"), format!("input[{i}] has no `role`")));
                }
            };
            let content = message_content(&item["content"], i, role == "user")?;
            messages.push(json!({ "role": role, "content": content }));
        }
        "function_call" => {
            let call = json!({
                "id": item["call_id"],
                "type": "function",
                "function": { "name": item["name"], "arguments": item["arguments"].as_str().unwrap_or("{}") },
            });
            match messages.last_mut() {
                Some(last) if last["role"] == "assistant" => match last.get_mut("tool_calls") {
                    Some(Value::Array(calls)) => calls.push(call),
                    _ => last["tool_calls"] = json!([call]),
                },
                _ => messages.push(json!({ "role": "assistant", "content": null, "tool_calls": [call] })),
            }
        }
        "function_call_output" => {
            let output = match &item["output"] {
                Value::String(text) => text.clone(),
                other => text_of_value(other),
            };
            messages.push(json!({ "role": "tool", "tool_call_id": item["call_id"], "content": output }));
        }
        // Reasoning belongs to the model that produced it; chat has no place to replay it.
        "reasoning" => {}
        "item_reference" => {
            return Err(TranslateError::param(
                format!("input[{i}]"),
                format!("input[{i}]: item references need a provider that stores responses; send the item itself"),
            ));
        }
        other => {
            return Err(TranslateError::param(
                format!("input[{i}].type"),
                format!("input[{i}]: items of type `{other}` cannot be sent through chat completions"),
            ));
        }
    }
    Ok(())
}

/// A message's content in chat form: a string for text alone (what every chat server
/// takes), content parts when a user message carries images.
fn message_content(content: &Value, i: usize, user: bool) -> Result<Value, TranslateError> {
    let parts = match content {
        Value::String(text) => return Ok(Value::String(text.clone())),
        Value::Array(parts) => parts,
        Value::Null => return Ok(Value::String(String::new())),
        other => {
            return Err(TranslateError::param(
                format!("input[{i}].content"),
                format!("input[{i}].content must be a string or an array, got {}", kind_of(other)),
            ));
        }
    };
    let mut text = String::new();
    let mut chat_parts = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        match part.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                let piece = part["text"].as_str().unwrap_or_default();
                text.push_str(piece);
                chat_parts.push(json!({ "type": "text", "text": piece }));
            }
            Some("refusal") => text.push_str(part["refusal"].as_str().unwrap_or_default()),
            Some("input_image") if user => {
                let url = part["image_url"].as_str().ok_or_else(|| {
                    TranslateError::param(
                        format!("input[{i}].content[{j}].image_url"),
                        format!("input[{i}].content[{j}]: an image needs `image_url` (file ids are not supported)"),
                    )
                })?;
                let mut image = json!({ "url": url });
                if let Some(detail) = part.get("detail") {
                    image["detail"] = detail.clone();
                }
                chat_parts.push(json!({ "type": "image_url", "image_url": image }));
            }
            other => {
                return Err(TranslateError::param(
                    format!("input[{i}].content[{j}].type"),
                    format!(
                        "input[{i}].content[{j}]: content of type `{}` cannot be sent through chat completions",
                        other.unwrap_or("(none)")
                    ),
                ));
            }
        }
    }
    let has_images = chat_parts.iter().any(|p| p["type"] == "image_url");
    Ok(if has_images { Value::Array(chat_parts) } else { Value::String(text) })
}

/// Responses tools -> chat tools: function tools travel; hosted tools (web search, file
/// search, ...) and namespaced tools exist only at OpenAI and are left out.
fn tools(value: Value) -> Result<Option<Value>, TranslateError> {
    let Value::Array(list) = value else {
        return Err(TranslateError::param("tools", "`tools` must be an array"));
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, tool) in list.into_iter().enumerate() {
        if tool["type"] != "function" {
            continue;
        }
        let name = tool["name"].as_str().ok_or_else(|| {
            TranslateError::param(format!("tools[{i}].name"), format!("tools[{i}]: a function tool needs a `name`"))
        })?;
        let mut function = json!({ "name": name });
        for key in ["description", "parameters"] {
            if let Some(value) = tool.get(key).filter(|v| !v.is_null()) {
                function[key] = value.clone();
            }
        }
        if tool["strict"] == Value::Bool(true) {
            function["strict"] = Value::Bool(true);
        }
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

fn tool_choice(value: Value) -> Result<Option<Value>, TranslateError> {
    Ok(Some(match &value {
        Value::Null => return Ok(None),
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => value,
        Value::Object(_) if value["type"] == "function" => {
            let name = value["name"].as_str().ok_or_else(|| {
                TranslateError::param("tool_choice.name", "`tool_choice` of type function needs a `name`")
            })?;
            json!({ "type": "function", "function": { "name": name } })
        }
        _ => {
            return Err(TranslateError::param(
                "tool_choice",
                "`tool_choice` must be auto, none, required or a function when served through chat completions",
            ));
        }
    }))
}

/// `text.format` -> chat's `response_format`.
fn response_format(format: &Value) -> Result<Option<Value>, TranslateError> {
    Ok(match format["type"].as_str() {
        None | Some("text") => None,
        Some("json_object") => Some(json!({ "type": "json_object" })),
        Some("json_schema") => {
            let mut schema = json!({ "name": format["name"], "schema": format["schema"] });
            for key in ["strict", "description"] {
                if let Some(value) = format.get(key) {
                    schema[key] = value.clone();
                }
            }
            Some(json!({ "type": "json_schema", "json_schema": schema }))
        }
        Some(other) => {
            return Err(TranslateError::param(
                "text.format.type",
                format!("`text.format` of type `{other}` is not supported"),
            ));
        }
    })
}

/// Chat usage -> Responses usage.
fn usage(usage: &Value) -> Value {
    let count = |value: &Value| value.as_u64().unwrap_or(0);
    let input = count(&usage["prompt_tokens"]);
    let output = count(&usage["completion_tokens"]);
    json!({
        "input_tokens": input,
        "input_tokens_details": { "cached_tokens": count(&usage["prompt_tokens_details"]["cached_tokens"]) },
        "output_tokens": output,
        "output_tokens_details": { "reasoning_tokens": count(&usage["completion_tokens_details"]["reasoning_tokens"]) },
        "total_tokens": input + output,
    })
}

/// How an answer ended, in Responses terms: its status and, when cut short, why.
fn status_of(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({ "reason": "max_output_tokens" })),
        Some("content_filter") => ("incomplete", json!({ "reason": "content_filter" })),
        _ => ("completed", Value::Null),
    }
}

/// The Responses object around `output`.
fn response_object(id: &str, model: &Value, created: u64, status: &str, output: Vec<Value>, usage: Value) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": model,
        "output": output,
        "usage": usage,
        "error": null,
        "incomplete_details": null,
    })
}

fn response_id(chat_id: &Value) -> String {
    format!("resp_{}", chat_id.as_str().unwrap_or("chat"))
}

fn reasoning_item(id: &str, text: &str) -> Value {
    json!({ "type": "reasoning", "id": id, "summary": [{ "type": "summary_text", "text": text }] })
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message", "id": id, "status": status, "role": "assistant",
        "content": [{ "type": "output_text", "text": text, "annotations": [] }],
    })
}

fn call_item(call_id: &Value, name: &Value, arguments: &str, status: &str) -> Value {
    json!({
        "type": "function_call", "id": format!("fc_{}", call_id.as_str().unwrap_or_default()), "status": status,
        "call_id": call_id, "name": name, "arguments": arguments,
    })
}

/// The reasoning text of a chat message or delta: `reasoning_content` (DeepSeek, vLLM,
/// this crate's Anthropic translation) or `reasoning` (Ollama, OpenRouter).
fn reasoning_text(message: &Value) -> &str {
    message["reasoning_content"].as_str().or_else(|| message["reasoning"].as_str()).unwrap_or_default()
}

/// Chat completion -> Responses object. `created` is the Unix time to report.
pub fn response(body: Value, created: u64) -> Result<Value, TranslateError> {
    let completion = into_object(body, "upstream response")?;
    let id = response_id(&completion.get("id").cloned().unwrap_or(Value::Null));
    let choice = completion.get("choices").and_then(|c| c.get(0)).cloned().unwrap_or(Value::Null);
    let message = &choice["message"];
    let mut output = Vec::new();
    let reasoning = reasoning_text(message);
    if !reasoning.is_empty() {
        output.push(reasoning_item(&format!("rs_{id}"), reasoning));
    }
    let text = message["content"].as_str().unwrap_or_default();
    if !text.is_empty() {
        output.push(message_item(&format!("msg_{id}"), text, "completed"));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
        output.push(call_item(&call["id"], &call["function"]["name"], arguments, "completed"));
    }
    let (status, incomplete) = status_of(choice["finish_reason"].as_str());
    let model = completion.get("model").cloned().unwrap_or(Value::Null);
    let created = completion.get("created").and_then(Value::as_u64).unwrap_or(created);
    let mut response =
        response_object(&id, &model, created, status, output, usage(completion.get("usage").unwrap_or(&Value::Null)));
    response["incomplete_details"] = incomplete;
    Ok(response)
}

/// A chat upstream's error -> the OpenAI error JSON Responses clients read.
pub fn error(status: u16, body: &[u8]) -> Value {
    let (message, _) = upstream_error_message(status, body);
    ErrorShape::OpenAi.body(ErrorKind::from_status(status), &message, None, None)
}

/// One output item of a streamed answer, as it builds up.
enum Item {
    Reasoning { id: String, text: String },
    Message { id: String, text: String },
    Call { id: String, call_id: Value, name: Value, arguments: String, chat_index: u64 },
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Self::Reasoning { id, .. } | Self::Message { id, .. } | Self::Call { id, .. } => id,
        }
    }

    fn done(&self) -> Value {
        match self {
            Self::Reasoning { id, text } => reasoning_item(id, text),
            Self::Message { id, text } => message_item(id, text, "completed"),
            Self::Call { call_id, name, arguments, .. } => call_item(call_id, name, arguments, "completed"),
        }
    }
}

/// Chat completion chunks -> Responses stream events (`response.created`, items
/// added, text and argument deltas, items done, `response.completed`).
pub struct StreamTranslator {
    created: u64,
    id: String,
    model: Value,
    sequence: u64,
    started: bool,
    items: Vec<Item>,
    /// The item text and reasoning deltas go to: the last one opened, while open.
    open: Option<usize>,
    finish_reason: Option<String>,
    usage: Value,
    done: bool,
}

impl StreamTranslator {
    pub fn new(created: u64) -> Self {
        Self {
            created,
            id: String::new(),
            model: Value::Null,
            sequence: 0,
            started: false,
            items: Vec::new(),
            open: None,
            finish_reason: None,
            usage: Value::Null,
            done: false,
        }
    }

    fn event(&mut self, kind: &str, mut data: Value) -> SseEvent {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        SseEvent::named(kind, data.to_string())
    }

    fn response(&self, status: &str, output: Vec<Value>, usage: Value) -> Value {
        response_object(&self.id, &self.model, self.created, status, output, usage)
    }

    pub fn push(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        if self.done {
            return Vec::new();
        }
        if event.data == "[DONE]" {
            return self.complete();
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        if let Some(error) = chunk.get("error") {
            self.done = true;
            let message = error["message"].as_str().unwrap_or("upstream stream error");
            let code = error["code"].as_str().or_else(|| error["type"].as_str()).unwrap_or("server_error");
            let mut response = self.response("failed", Vec::new(), Value::Null);
            response["error"] = json!({ "code": code, "message": message });
            events.push(self.event("response.failed", json!({ "response": response })));
            return events;
        }
        if !self.started {
            self.started = true;
            self.id = response_id(&chunk["id"]);
            self.model = chunk["model"].clone();
            let response = self.response("in_progress", Vec::new(), Value::Null);
            events.push(self.event("response.created", json!({ "response": response.clone() })));
            events.push(self.event("response.in_progress", json!({ "response": response })));
        }
        if chunk["usage"].is_object() {
            self.usage = usage(&chunk["usage"]);
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        let reasoning = reasoning_text(delta);
        if !reasoning.is_empty() {
            self.text_delta(true, reasoning, &mut events);
        }
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text_delta(false, text, &mut events);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            self.call_delta(call, &mut events);
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        events
    }

    /// Text or reasoning for the open item of that kind, opening one when needed.
    fn text_delta(&mut self, reasoning: bool, delta: &str, events: &mut Vec<SseEvent>) {
        let open = self.open.filter(|&i| matches!(self.items[i], Item::Reasoning { .. }) == reasoning);
        let index = match open {
            Some(index) => index,
            None => {
                self.close_open(events);
                let index = self.items.len();
                let id = format!("{}_{}_{index}", if reasoning { "rs" } else { "msg" }, self.id);
                let (added, part) = if reasoning {
                    let item = json!({ "type": "reasoning", "id": id, "summary": [] });
                    let part = json!({ "item_id": id, "output_index": index, "summary_index": 0,
                        "part": { "type": "summary_text", "text": "" } });
                    (item, ("response.reasoning_summary_part.added", part))
                } else {
                    let item = json!({ "type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": [] });
                    let part = json!({ "item_id": id, "output_index": index, "content_index": 0,
                        "part": { "type": "output_text", "text": "", "annotations": [] } });
                    (item, ("response.content_part.added", part))
                };
                events.push(self.event("response.output_item.added", json!({ "output_index": index, "item": added })));
                events.push(self.event(part.0, part.1));
                self.items.push(if reasoning {
                    Item::Reasoning { id, text: String::new() }
                } else {
                    Item::Message { id, text: String::new() }
                });
                self.open = Some(index);
                index
            }
        };
        let id = self.items[index].id().to_owned();
        match &mut self.items[index] {
            Item::Reasoning { text, .. } | Item::Message { text, .. } => text.push_str(delta),
            Item::Call { .. } => {}
        }
        let event = if reasoning {
            self.event(
                "response.reasoning_summary_text.delta",
                json!({ "item_id": id, "output_index": index, "summary_index": 0, "delta": delta }),
            )
        } else {
            self.event(
                "response.output_text.delta",
                json!({ "item_id": id, "output_index": index, "content_index": 0, "delta": delta }),
            )
        };
        events.push(event);
    }

    /// A piece of a tool call: its start (id and name) or more of its arguments.
    fn call_delta(&mut self, call: &Value, events: &mut Vec<SseEvent>) {
        let chat_index = call["index"].as_u64().unwrap_or(0);
        let existing =
            self.items.iter().position(|item| matches!(item, Item::Call { chat_index: c, .. } if *c == chat_index));
        let index = match existing {
            Some(index) => index,
            None => {
                self.close_open(events);
                let index = self.items.len();
                let call_id = call["id"].clone();
                let name = call["function"]["name"].clone();
                let item = call_item(&call_id, &name, "", "in_progress");
                let id = item["id"].as_str().unwrap_or_default().to_owned();
                events.push(self.event("response.output_item.added", json!({ "output_index": index, "item": item })));
                self.items.push(Item::Call { id, call_id, name, arguments: String::new(), chat_index });
                index
            }
        };
        let Some(delta) = call["function"]["arguments"].as_str().filter(|d| !d.is_empty()) else {
            return;
        };
        let id = self.items[index].id().to_owned();
        if let Item::Call { arguments, .. } = &mut self.items[index] {
            arguments.push_str(delta);
        }
        events.push(self.event(
            "response.function_call_arguments.delta",
            json!({ "item_id": id, "output_index": index, "delta": delta }),
        ));
    }

    /// Close the open text or reasoning item: its text done, its part done, the item done.
    fn close_open(&mut self, events: &mut Vec<SseEvent>) {
        if let Some(index) = self.open.take() {
            self.close(index, events);
        }
    }

    fn close(&mut self, index: usize, events: &mut Vec<SseEvent>) {
        let item = self.items[index].done();
        let id = self.items[index].id().to_owned();
        match &self.items[index] {
            Item::Reasoning { text, .. } => {
                let text = text.clone();
                events.push(self.event(
                    "response.reasoning_summary_text.done",
                    json!({ "item_id": id, "output_index": index, "summary_index": 0, "text": text }),
                ));
                events.push(self.event(
                    "response.reasoning_summary_part.done",
                    json!({ "item_id": id, "output_index": index, "summary_index": 0,
                        "part": { "type": "summary_text", "text": text } }),
                ));
            }
            Item::Message { text, .. } => {
                let text = text.clone();
                events.push(self.event(
                    "response.output_text.done",
                    json!({ "item_id": id, "output_index": index, "content_index": 0, "text": text }),
                ));
                events.push(self.event(
                    "response.content_part.done",
                    json!({ "item_id": id, "output_index": index, "content_index": 0,
                        "part": { "type": "output_text", "text": text, "annotations": [] } }),
                ));
            }
            Item::Call { arguments, .. } => {
                let arguments = arguments.clone();
                events.push(self.event(
                    "response.function_call_arguments.done",
                    json!({ "item_id": id, "output_index": index, "arguments": arguments }),
                ));
            }
        }
        events.push(self.event("response.output_item.done", json!({ "output_index": index, "item": item })));
    }

    /// The answer is whole: close what is open and send the final response.
    fn complete(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.started {
            // An empty stream is no answer: leave it to read as broken off.
            return events;
        }
        self.done = true;
        self.close_open(&mut events);
        for index in 0..self.items.len() {
            if matches!(self.items[index], Item::Call { .. }) {
                self.close(index, &mut events);
            }
        }
        let (status, incomplete) = status_of(self.finish_reason.as_deref());
        let output = self.items.iter().map(Item::done).collect();
        let usage = if self.usage.is_null() { usage(&Value::Null) } else { self.usage.clone() };
        let mut response = self.response(status, output, usage);
        response["incomplete_details"] = incomplete;
        let kind = if status == "completed" { "response.completed" } else { "response.incomplete" };
        events.push(self.event(kind, json!({ "response": response })));
        events
    }

    /// The upstream stream ended. A server that sent its finish reason but no `[DONE]`
    /// still gave a whole answer; without a finish reason the stream broke off.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        if self.done || self.finish_reason.is_none() {
            return Vec::new();
        }
        self.complete()
    }

    /// True once the answer reached its proper end (or the upstream's own error).
    pub fn completed(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests;
