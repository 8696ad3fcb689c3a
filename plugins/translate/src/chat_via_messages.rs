//! An OpenAI chat completions client served by an Anthropic Messages upstream.

use serde_json::{Map, Value, json};

use wire::content::text_of_value;
use wire::errors::{ErrorKind, ErrorShape};

use crate::{
    Options, SseEvent, TranslateError, into_object, kind_of, push_turn, reject_unsupported, role_error,
    upstream_error_message,
};

/// OpenAI request fields with no effect on the answer that Anthropic has no place for.
const IGNORED: &[&str] = &["store", "metadata", "service_tier", "stream_options"];

/// OpenAI chat request -> Anthropic messages request.
pub fn request(body: Value, options: &Options) -> Result<Value, TranslateError> {
    let source = into_object(body, "request body")?;
    let mut out = Map::new();
    let mut unsupported = Vec::new();
    let mut system = Vec::new();
    let mut max_tokens = None;
    let mut parallel_tool_calls = true;
    let mut reasoning_effort = None;

    for (key, value) in source {
        match key.as_str() {
            // `thinking` and `top_k` are Anthropic's own, which LiteLLM lets OpenAI
            // clients (and `litellm_params` defaults) send.
            "model" | "temperature" | "top_p" | "stream" | "thinking" | "top_k" => {
                out.insert(key, value);
            }
            "reasoning_effort" => reasoning_effort = Some(value),
            "messages" => {
                let (messages, system_parts) = messages(value)?;
                system = system_parts;
                out.insert(key, Value::Array(messages));
            }
            "max_completion_tokens" => max_tokens = Some(value),
            "max_tokens" => {
                max_tokens.get_or_insert(value);
            }
            "stop" => match value {
                Value::Null => {}
                Value::String(s) => {
                    out.insert("stop_sequences".into(), json!([s]));
                }
                Value::Array(list) => {
                    out.insert("stop_sequences".into(), Value::Array(list));
                }
                other => {
                    return Err(TranslateError::param(
                        "stop",
                        format!("`stop` must be a string or an array, got {}", kind_of(&other)),
                    ));
                }
            },
            "tools" => {
                out.insert(key, tools(value)?);
            }
            "tool_choice" => {
                if let Some(choice) = tool_choice(value)? {
                    out.insert(key, choice);
                }
            }
            "parallel_tool_calls" => parallel_tool_calls = value.as_bool().unwrap_or(true),
            "user" => {
                if let Value::String(user) = value {
                    out.insert("metadata".into(), json!({ "user_id": user }));
                }
            }
            "n" if value.as_u64().is_none_or(|n| n == 1) => {}
            _ if IGNORED.contains(&key.as_str()) => {}
            _ if value.is_null() => {}
            _ => unsupported.push(key),
        }
    }
    reject_unsupported(&unsupported, "Anthropic", options)?;
    if let Some(effort) = reasoning_effort.filter(|_| !out.contains_key("thinking")) {
        match thinking_budget(&effort) {
            Some(budget) => {
                out.insert("thinking".into(), json!({ "type": "enabled", "budget_tokens": budget }));
            }
            None if effort.as_str() == Some("none") || effort.is_null() => {}
            None => {
                return Err(TranslateError::param(
                    "reasoning_effort",
                    format!("`reasoning_effort` must be none, minimal, low, medium or high, got {effort}"),
                ));
            }
        }
    }

    if !out.contains_key("messages") {
        return Err(TranslateError::param("messages", "`messages` is required"));
    }
    let max_tokens = max_tokens.filter(|v| !v.is_null()).unwrap_or_else(|| json!(options.default_max_tokens));
    out.insert("max_tokens".into(), max_tokens);
    if !system.is_empty() {
        let plain = system.len() == 1 && system[0].get("cache_control").is_none();
        let value = if plain { system[0]["text"].clone() } else { Value::Array(system) };
        out.insert("system".into(), value);
    }
    if !parallel_tool_calls && out.contains_key("tools") {
        let choice = out.entry("tool_choice").or_insert_with(|| json!({ "type": "auto" }));
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    Ok(Value::Object(out))
}

/// LiteLLM's thinking budget for an OpenAI `reasoning_effort`.
fn thinking_budget(effort: &Value) -> Option<u64> {
    match effort.as_str()? {
        "minimal" | "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        _ => None,
    }
}

/// OpenAI messages -> Anthropic messages (consecutive turns of one role merged, as
/// Anthropic requires alternation) and the system prompt's text blocks.
fn messages(value: Value) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    let Value::Array(list) = value else {
        return Err(TranslateError::param("messages", format!("`messages` must be an array, got {}", kind_of(&value))));
    };
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    let mut system = Vec::new();
    for (i, message) in list.into_iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.extend(content_blocks(&message["content"], i)?);
                continue;
            }
            "user" => ("user", content_blocks(&message["content"], i)?),
            "assistant" => ("assistant", assistant_blocks(&message, i)?),
            "tool" => {
                let tool_use_id = message.get("tool_call_id").and_then(Value::as_str).ok_or_else(|| {
                    TranslateError::param(
                        format!("messages[{i}].tool_call_id"),
                        format!("messages[{i}]: a tool message needs `tool_call_id`"),
                    )
                })?;
                let result = json!({ "type": "tool_result", "tool_use_id": tool_use_id, "content": text_of_value(&message["content"]) });
                ("user", vec![result])
            }
            other => return Err(role_error(i, other, "system, developer, user, assistant or tool")),
        };
        push_turn(&mut out, role, "content", blocks);
    }
    Ok((out, system))
}

/// User or system content (a string or OpenAI content parts) as Anthropic blocks.
fn content_blocks(content: &Value, i: usize) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({ "type": "text", "text": text })]),
        Value::Array(parts) => parts.iter().enumerate().map(|(j, part)| content_part(part, i, j)).collect(),
        other => Err(TranslateError::param(
            format!("messages[{i}].content"),
            format!("messages[{i}].content must be a string or an array, got {}", kind_of(other)),
        )),
    }
}

fn content_part(part: &Value, i: usize, j: usize) -> Result<Value, TranslateError> {
    let param = || format!("messages[{i}].content[{j}]");
    let mut block = match part.get("type").and_then(Value::as_str) {
        Some("text") => json!({ "type": "text", "text": part.get("text").and_then(Value::as_str).unwrap_or_default() }),
        Some("image_url") => {
            let url = part["image_url"]["url"]
                .as_str()
                .or_else(|| part["image_url"].as_str())
                .ok_or_else(|| TranslateError::param(param(), format!("{}: `image_url.url` is required", param())))?;
            image_block(url)
        }
        Some(other) => {
            return Err(TranslateError::param(
                param(),
                format!("{}: content part type `{other}` is not supported by Anthropic", param()),
            ));
        }
        None => return Err(TranslateError::param(param(), format!("{}: a content part needs a `type`", param()))),
    };
    if let Some(cache_control) = part.get("cache_control") {
        block["cache_control"] = cache_control.clone();
    }
    Ok(block)
}

/// An OpenAI image URL (a `data:` URL or a link) as an Anthropic image block.
fn image_block(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((media_type, data)) = rest.split_once(";base64,")
    {
        return json!({ "type": "image", "source": { "type": "base64", "media_type": media_type, "data": data } });
    }
    json!({ "type": "image", "source": { "type": "url", "url": url } })
}

fn assistant_blocks(message: &Value, i: usize) -> Result<Vec<Value>, TranslateError> {
    let mut blocks: Vec<Value> = content_blocks(&message["content"], i)?
        .into_iter()
        .filter(|b| b["type"] != "text" || b["text"].as_str().is_some_and(|t| !t.is_empty()))
        .collect();
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (j, call) in calls.iter().enumerate() {
            let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
            let input: Value = if arguments.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(arguments).map_err(|e| {
                    TranslateError::param(
                        format!("messages[{i}].tool_calls[{j}].function.arguments"),
                        format!("messages[{i}].tool_calls[{j}].function.arguments is not valid JSON: {e}"),
                    )
                })?
            };
            blocks.push(json!({
                "type": "tool_use",
                "id": call["id"].as_str().unwrap_or_default(),
                "name": call["function"]["name"].as_str().unwrap_or_default(),
                "input": input,
            }));
        }
    }
    Ok(blocks)
}

fn tools(value: Value) -> Result<Value, TranslateError> {
    let Value::Array(list) = value else {
        return Err(TranslateError::param("tools", "`tools` must be an array"));
    };
    list.into_iter()
        .enumerate()
        .map(|(i, tool)| {
            if tool["type"] != "function" {
                return Err(TranslateError::param(
                    format!("tools[{i}].type"),
                    format!("tools[{i}]: only `function` tools can be sent to Anthropic"),
                ));
            }
            let function = &tool["function"];
            let name = function["name"].as_str().ok_or_else(|| {
                TranslateError::param(
                    format!("tools[{i}].function.name"),
                    format!("tools[{i}].function.name is required"),
                )
            })?;
            let mut out = json!({
                "name": name,
                "input_schema": match &function["parameters"] {
                    Value::Null => json!({ "type": "object", "properties": {} }),
                    schema => schema.clone(),
                },
            });
            if let Some(description) = function.get("description") {
                out["description"] = description.clone();
            }
            if let Some(cache_control) = tool.get("cache_control") {
                out["cache_control"] = cache_control.clone();
            }
            Ok(out)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn tool_choice(value: Value) -> Result<Option<Value>, TranslateError> {
    let invalid = || TranslateError::param("tool_choice", "`tool_choice` must be auto, none, required or a function");
    Ok(Some(match &value {
        Value::Null => return Ok(None),
        Value::String(s) => match s.as_str() {
            "auto" => json!({ "type": "auto" }),
            "none" => json!({ "type": "none" }),
            "required" => json!({ "type": "any" }),
            _ => return Err(invalid()),
        },
        Value::Object(_) => {
            let name = value["function"]["name"].as_str().ok_or_else(invalid)?;
            json!({ "type": "tool", "name": name })
        }
        _ => return Err(invalid()),
    }))
}

fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Anthropic usage -> OpenAI usage. OpenAI counts cached prompt tokens inside
/// `prompt_tokens`; Anthropic counts them apart.
fn usage(usage: &Value) -> Value {
    let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    let cached = count("cache_read_input_tokens");
    let prompt = count("input_tokens") + cached + count("cache_creation_input_tokens");
    let completion = count("output_tokens");
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": { "cached_tokens": cached },
    })
}

/// Anthropic messages response -> OpenAI chat completion. `created` is the Unix time
/// to report (translation has no clock of its own).
pub fn response(body: Value, created: u64) -> Result<Value, TranslateError> {
    let message = into_object(body, "upstream response")?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in message.get("content").and_then(Value::as_array).into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("thinking") => reasoning.push_str(block["thinking"].as_str().unwrap_or_default()),
            Some("tool_use") => tool_calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": { "name": block["name"], "arguments": block["input"].to_string() },
            })),
            _ => {}
        }
    }
    let mut reply = json!({ "role": "assistant", "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { Value::String(text) } });
    if !tool_calls.is_empty() {
        reply["tool_calls"] = Value::Array(tool_calls);
    }
    if !reasoning.is_empty() {
        reply["reasoning_content"] = Value::String(reasoning);
    }
    let stop_reason = message.get("stop_reason").and_then(Value::as_str).unwrap_or("end_turn");
    Ok(json!({
        "id": message.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{ "index": 0, "message": reply, "logprobs": null, "finish_reason": finish_reason(stop_reason) }],
        "usage": usage(message.get("usage").unwrap_or(&Value::Null)),
    }))
}

/// An Anthropic error response -> the OpenAI error JSON for the same status.
pub fn error(status: u16, body: &[u8]) -> Value {
    let (message, _) = upstream_error_message(status, body);
    ErrorShape::OpenAi.body(ErrorKind::from_status(status), &message, None, None)
}

/// The event that tells an OpenAI client its stream broke off.
pub fn stream_error(message: &str) -> SseEvent {
    ErrorShape::OpenAi.stream_event(&ErrorShape::OpenAi.body(ErrorKind::BadGateway, message, None, None))
}

/// Anthropic stream events -> OpenAI chat completion chunks.
pub struct StreamTranslator {
    include_usage: bool,
    created: u64,
    id: Value,
    model: Value,
    /// The OpenAI tool call index of each Anthropic content block that is a tool use.
    tool_blocks: Vec<(u64, usize)>,
    input_usage: Value,
    output_tokens: u64,
    done: bool,
}

impl StreamTranslator {
    /// `include_usage`: the client asked for `stream_options.include_usage`.
    pub fn new(include_usage: bool, created: u64) -> Self {
        Self {
            include_usage,
            created,
            id: Value::Null,
            model: Value::Null,
            tool_blocks: Vec::new(),
            input_usage: Value::Null,
            output_tokens: 0,
            done: false,
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> SseEvent {
        SseEvent::data(
            json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
            })
            .to_string(),
        )
    }

    pub fn push(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            return Vec::new();
        };
        match data["type"].as_str().unwrap_or_default() {
            "message_start" => {
                let message = &data["message"];
                self.id = message["id"].clone();
                self.model = message["model"].clone();
                self.input_usage = message["usage"].clone();
                vec![self.chunk(json!({ "role": "assistant", "content": "" }), None)]
            }
            "content_block_start" => {
                let block = &data["content_block"];
                let index = data["index"].as_u64().unwrap_or(0);
                match block["type"].as_str() {
                    Some("tool_use") => {
                        let call = self.tool_blocks.len();
                        self.tool_blocks.push((index, call));
                        vec![self.chunk(
                            json!({ "tool_calls": [{ "index": call, "id": block["id"], "type": "function",
                                "function": { "name": block["name"], "arguments": "" } }] }),
                            None,
                        )]
                    }
                    Some("text") if block["text"].as_str().is_some_and(|t| !t.is_empty()) => {
                        vec![self.chunk(json!({ "content": block["text"] }), None)]
                    }
                    _ => Vec::new(),
                }
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                let index = data["index"].as_u64().unwrap_or(0);
                match delta["type"].as_str() {
                    Some("text_delta") => vec![self.chunk(json!({ "content": delta["text"] }), None)],
                    Some("thinking_delta") => vec![self.chunk(json!({ "reasoning_content": delta["thinking"] }), None)],
                    Some("input_json_delta") => {
                        let Some(&(_, call)) = self.tool_blocks.iter().find(|(block, _)| *block == index) else {
                            return Vec::new();
                        };
                        vec![self.chunk(json!({ "tool_calls": [{ "index": call, "function": { "arguments": delta["partial_json"] } }] }), None)]
                    }
                    _ => Vec::new(),
                }
            }
            "message_delta" => {
                if let Some(output) = data["usage"]["output_tokens"].as_u64() {
                    self.output_tokens = output;
                }
                // Newer API versions repeat the input counts here; prefer them.
                if data["usage"]["input_tokens"].is_u64() {
                    self.input_usage = data["usage"].clone();
                }
                let stop_reason = data["delta"]["stop_reason"].as_str().unwrap_or("end_turn");
                vec![self.chunk(json!({}), Some(finish_reason(stop_reason)))]
            }
            "message_stop" => {
                self.done = true;
                let mut events = Vec::with_capacity(2);
                if self.include_usage {
                    let mut counts = self.input_usage.clone();
                    if !counts.is_object() {
                        counts = json!({});
                    }
                    counts["output_tokens"] = json!(self.output_tokens);
                    events.push(SseEvent::data(
                        json!({
                            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                            "model": self.model, "choices": [], "usage": usage(&counts),
                        })
                        .to_string(),
                    ));
                }
                events.push(SseEvent::data("[DONE]"));
                events
            }
            "error" => {
                self.done = true;
                let message = data["error"]["message"].as_str().unwrap_or("upstream stream error");
                let kind = data["error"]["type"].as_str().unwrap_or("api_error");
                vec![SseEvent::data(
                    json!({ "error": { "message": message, "type": kind, "param": null, "code": null } }).to_string(),
                )]
            }
            _ => Vec::new(),
        }
    }

    /// The upstream stream ended. Anthropic always closes with `message_stop`, so
    /// nothing is left to send; `completed` says whether it arrived.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        Vec::new()
    }

    /// True once the upstream's stream reached its proper end (or its own error).
    pub fn completed(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests;
