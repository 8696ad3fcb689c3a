//! An OpenAI chat completions client served by Gemini's own API: `POST
//! {base}/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse` for
//! streams, whose events are bare `data: <GenerateContentResponse>` lines.
//!
//! The model and streaming travel in the URL, so the body carries neither. Gemini
//! refuses fields it does not know, in the body and in tool schemas alike, so
//! everything sent is rebuilt from what Gemini documents.
//!
//! Gemini's function calls have no ids: answers name them `call_<n>` (by position),
//! and a tool result, which Gemini matches by function name, takes the name of the
//! call it answers. Gemini's thought signatures have no place in chat completions;
//! replayed function calls carry the placeholder Gemini accepts instead (see
//! [`REPLAY_SIGNATURE`]).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use wire::content::text_of_value;
use wire::errors::{ErrorKind, ErrorShape};

use crate::{
    Options, SseEvent, TranslateError, into_object, kind_of, push_turn, reject_unsupported, role_error,
    upstream_error_message,
};

/// OpenAI request fields with no place in a Gemini request that the answer stands
/// without: the model and streaming are in the URL; Gemini has no end users,
/// metadata, storage or tiers, and calls functions in parallel as it sees fit.
const IGNORED: &[&str] =
    &["model", "stream", "stream_options", "user", "metadata", "store", "parallel_tool_calls", "service_tier"];

/// OpenAI sampling parameters and their names in Gemini's `generationConfig`.
const GENERATION: &[(&str, &str)] = &[
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
    ("n", "candidateCount"),
];

/// The thought signature sent with replayed function calls. Gemini 3 refuses a
/// conversation whose function calls lack the signature it gave them, and chat
/// completions cannot carry one back; this is the value Google documents for calls
/// it did not sign (another model's, or a client's history), which every Gemini
/// model accepts.
const REPLAY_SIGNATURE: &str = "skip_thought_signature_validator";

/// Chat request -> Gemini `GenerateContentRequest`.
pub fn request(body: Value, options: &Options) -> Result<Value, TranslateError> {
    let source = into_object(body, "request body")?;
    let mut out = Map::new();
    let mut config = Map::new();
    let mut unsupported = Vec::new();
    let mut messages = None;
    let mut max_tokens = None;
    let mut effort_budget = None;
    let mut thinking = None;

    for (key, value) in source {
        if value.is_null() {
            continue;
        }
        if let Some((_, gemini)) = GENERATION.iter().find(|(openai, _)| *openai == key) {
            config.insert((*gemini).into(), value);
            continue;
        }
        match key.as_str() {
            "messages" => messages = Some(value),
            "max_completion_tokens" => max_tokens = Some(value),
            "max_tokens" => {
                max_tokens.get_or_insert(value);
            }
            "stop" => {
                let stops = match value {
                    Value::String(stop) => json!([stop]),
                    Value::Array(list) => Value::Array(list),
                    other => {
                        return Err(TranslateError::param(
                            "stop",
                            format!("`stop` must be a string or an array, got {}", kind_of(&other)),
                        ));
                    }
                };
                config.insert("stopSequences".into(), stops);
            }
            "response_format" => response_format(&value, &mut config)?,
            "reasoning_effort" => effort_budget = Some(effort_budget_of(&value)?),
            "thinking" => thinking = Some(thinking_config(&value)?),
            "tools" => {
                if let Some(tools) = tools(value)? {
                    out.insert("tools".into(), tools);
                }
            }
            "tool_choice" => {
                out.insert("toolConfig".into(), tool_config(&value)?);
            }
            _ if IGNORED.contains(&key.as_str()) => {}
            _ => unsupported.push(key),
        }
    }
    reject_unsupported(&unsupported, "Gemini", options)?;

    let Some(messages) = messages else {
        return Err(TranslateError::param("messages", "`messages` is required"));
    };
    let (contents, system) = contents(messages)?;
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    if let Some(max_tokens) = max_tokens {
        config.insert("maxOutputTokens".into(), max_tokens);
    }
    // An explicit thinking budget is more precise than an effort; it wins.
    if let Some(thinking) = thinking.or_else(|| effort_budget.map(|budget| json!({ "thinkingBudget": budget }))) {
        config.insert("thinkingConfig".into(), thinking);
    }
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(out))
}

/// `reasoning_effort` as a thinking budget in tokens. `minimal` is 128, the least a
/// model that cannot stop thinking (2.5 Pro) accepts.
fn effort_budget_of(value: &Value) -> Result<u64, TranslateError> {
    Ok(match value.as_str() {
        Some("none") => 0,
        Some("minimal") => 128,
        Some("low") => 1024,
        Some("medium") => 2048,
        Some("high") => 4096,
        _ => {
            return Err(TranslateError::param(
                "reasoning_effort",
                format!("`reasoning_effort` must be none, minimal, low, medium or high, got {value}"),
            ));
        }
    })
}

/// Anthropic-style `thinking` (some chat clients send it): a budget, and the
/// thoughts shown (they come back as `reasoning_content`).
fn thinking_config(value: &Value) -> Result<Value, TranslateError> {
    match value["type"].as_str() {
        Some("enabled") => {
            let mut config = json!({ "includeThoughts": true });
            if let Some(budget) = value.get("budget_tokens").filter(|b| b.is_u64()) {
                config["thinkingBudget"] = budget.clone();
            }
            Ok(config)
        }
        Some("disabled") => Ok(json!({ "thinkingBudget": 0 })),
        _ => Err(TranslateError::param("thinking.type", "`thinking.type` must be enabled or disabled")),
    }
}

/// `response_format` -> the answer's MIME type and, for a JSON schema, the schema.
fn response_format(value: &Value, config: &mut Map<String, Value>) -> Result<(), TranslateError> {
    match value["type"].as_str() {
        Some("text") => {}
        Some("json_object") => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            config.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = value["json_schema"].get("schema").filter(|s| !s.is_null()) {
                config.insert("responseSchema".into(), gemini_schema(schema));
            }
        }
        _ => {
            return Err(TranslateError::param(
                "response_format.type",
                "`response_format.type` must be text, json_object or json_schema",
            ));
        }
    }
    Ok(())
}

/// Chat messages -> Gemini `contents` (consecutive turns of one role merged, so a
/// turn's parallel tool results answer its calls together) and the system
/// instruction's parts.
fn contents(value: Value) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    let Value::Array(list) = value else {
        return Err(TranslateError::param("messages", format!("`messages` must be an array, got {}", kind_of(&value))));
    };
    let mut contents: Vec<Value> = Vec::with_capacity(list.len());
    let mut system = Vec::new();
    // The function each tool call id called: Gemini matches results by name.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, message) in list.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        let (role, parts) = match role {
            "system" | "developer" => {
                let text = text_of_value(&message["content"]);
                if !text.is_empty() {
                    system.push(json!({ "text": text }));
                }
                continue;
            }
            "user" => ("user", user_parts(&message["content"], i)?),
            "assistant" => ("model", model_parts(message, i, &mut call_names)?),
            "tool" => ("user", vec![function_response(message, i, &call_names)?]),
            other => return Err(role_error(i, other, "system, developer, user, assistant or tool")),
        };
        push_turn(&mut contents, role, "parts", parts);
    }
    for content in contents.iter_mut().filter(|c| c["role"] == "model") {
        sign_first_call(content);
    }
    Ok((contents, system))
}

/// Gemini validates the signature on the first function call of each model turn.
fn sign_first_call(content: &mut Value) {
    let Some(parts) = content["parts"].as_array_mut() else { return };
    if parts.iter().any(|p| p.get("thoughtSignature").is_some()) {
        return;
    }
    if let Some(call) = parts.iter_mut().find(|p| p.get("functionCall").is_some()) {
        call["thoughtSignature"] = json!(REPLAY_SIGNATURE);
    }
}

/// User content (a string or OpenAI content parts) as Gemini parts.
fn user_parts(content: &Value, i: usize) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({ "text": text })]),
        Value::Array(parts) => parts.iter().enumerate().map(|(j, part)| content_part(part, i, j)).collect(),
        other => Err(TranslateError::param(
            format!("messages[{i}].content"),
            format!("messages[{i}].content must be a string or an array, got {}", kind_of(other)),
        )),
    }
}

fn content_part(part: &Value, i: usize, j: usize) -> Result<Value, TranslateError> {
    let param = || format!("messages[{i}].content[{j}]");
    match part.get("type").and_then(Value::as_str) {
        Some("text") => Ok(json!({ "text": part.get("text").and_then(Value::as_str).unwrap_or_default() })),
        Some("image_url") => {
            let url = part["image_url"]["url"]
                .as_str()
                .or_else(|| part["image_url"].as_str())
                .ok_or_else(|| TranslateError::param(param(), format!("{}: `image_url.url` is required", param())))?;
            Ok(media_part(url))
        }
        Some("input_audio") => {
            let audio = &part["input_audio"];
            let (Some(data), Some(format)) = (audio["data"].as_str(), audio["format"].as_str()) else {
                return Err(TranslateError::param(
                    param(),
                    format!("{}: `input_audio` needs `data` and `format`", param()),
                ));
            };
            Ok(json!({ "inlineData": { "mimeType": format!("audio/{format}"), "data": data } }))
        }
        Some(other) => Err(TranslateError::param(
            param(),
            format!("{}: content part type `{other}` is not supported by Gemini", param()),
        )),
        None => Err(TranslateError::param(param(), format!("{}: a content part needs a `type`", param()))),
    }
}

/// An OpenAI image URL as a Gemini part: a `data:` URL travels inline; a link is
/// passed as a file URI, which Gemini fetches where it can (its own file URIs,
/// public URLs on recent models).
fn media_part(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((mime_type, data)) = rest.split_once(";base64,")
    {
        return json!({ "inlineData": { "mimeType": mime_type, "data": data } });
    }
    json!({ "fileData": { "fileUri": url, "mimeType": mime_type_of(url) } })
}

/// The MIME type a link's extension suggests; an image URL without one is most
/// likely a JPEG.
fn mime_type_of(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => "image/jpeg",
    }
}

/// An assistant message as model parts: its text, then its tool calls as function
/// calls. Its reasoning is dropped: Gemini reads back only its own signed thoughts.
fn model_parts(
    message: &Value,
    i: usize,
    call_names: &mut HashMap<String, String>,
) -> Result<Vec<Value>, TranslateError> {
    let mut parts = Vec::new();
    let text = text_of_value(&message["content"]);
    if !text.is_empty() {
        parts.push(json!({ "text": text }));
    }
    for (j, call) in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let param = format!("messages[{i}].tool_calls[{j}].function");
        let name = call["function"]["name"]
            .as_str()
            .ok_or_else(|| TranslateError::param(format!("{param}.name"), format!("{param}.name is required")))?;
        let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
        let args: Value = if arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                TranslateError::param(format!("{param}.arguments"), format!("{param}.arguments is not valid JSON: {e}"))
            })?
        };
        if let Some(id) = call["id"].as_str() {
            // A later call reusing an id (ours restart at `call_0` every answer)
            // takes it over: a result answers the call just before it.
            call_names.insert(id.to_owned(), name.to_owned());
        }
        parts.push(json!({ "functionCall": { "name": name, "args": args } }));
    }
    Ok(parts)
}

/// A `tool` message as a function response, named after the call it answers. Its
/// content goes as JSON when it is JSON, which Gemini reads best, else as text.
fn function_response(message: &Value, i: usize, call_names: &HashMap<String, String>) -> Result<Value, TranslateError> {
    let id = message.get("tool_call_id").and_then(Value::as_str).ok_or_else(|| {
        TranslateError::param(
            format!("messages[{i}].tool_call_id"),
            format!("messages[{i}]: a tool message needs `tool_call_id`"),
        )
    })?;
    let name = call_names.get(id).map(String::as_str).or_else(|| message["name"].as_str()).ok_or_else(|| {
        TranslateError::param(
            format!("messages[{i}].tool_call_id"),
            format!("messages[{i}]: no earlier assistant message has a tool call with id `{id}`"),
        )
    })?;
    let text = text_of_value(&message["content"]);
    let content = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    Ok(json!({ "functionResponse": { "name": name, "response": { "content": content } } }))
}

/// OpenAI function tools -> one Gemini tool holding their declarations.
fn tools(value: Value) -> Result<Option<Value>, TranslateError> {
    let Value::Array(list) = value else {
        return Err(TranslateError::param("tools", "`tools` must be an array"));
    };
    let mut declarations = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        if tool["type"] != "function" {
            return Err(TranslateError::param(
                format!("tools[{i}].type"),
                format!("tools[{i}]: only `function` tools can be sent to Gemini"),
            ));
        }
        let function = &tool["function"];
        let name = function["name"].as_str().ok_or_else(|| {
            TranslateError::param(format!("tools[{i}].function.name"), format!("tools[{i}].function.name is required"))
        })?;
        let mut declaration = json!({ "name": name });
        if let Some(description) = function.get("description").filter(|d| d.is_string()) {
            declaration["description"] = description.clone();
        }
        if let Some(parameters) = parameters(&function["parameters"]) {
            declaration["parameters"] = parameters;
        }
        declarations.push(declaration);
    }
    Ok((!declarations.is_empty()).then(|| json!([{ "functionDeclarations": declarations }])))
}

/// A function's parameters schema. Gemini refuses an object schema without
/// properties at the top, so a function without arguments goes without one.
fn parameters(schema: &Value) -> Option<Value> {
    if schema.is_null() {
        return None;
    }
    let schema = gemini_schema(schema);
    let no_arguments = schema["type"] == "object" && schema.get("properties").is_none();
    (!no_arguments).then_some(schema)
}

/// The keywords of Gemini's `Schema`, a subset of OpenAPI's. Gemini refuses a schema
/// with any other (`$schema`, `additionalProperties`, `strict`, `propertyNames`,
/// `exclusiveMinimum`, ...), so the rest go.
const SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "title",
    "description",
    "nullable",
    "enum",
    "default",
    "example",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "required",
    "propertyOrdering",
];

/// The `format`s Gemini accepts; it refuses others (`uri`, `email`, ...).
const SCHEMA_FORMATS: &[&str] = &["enum", "date-time", "int32", "int64", "float", "double"];

/// A JSON schema in the form Gemini accepts: unknown keywords dropped, at every
/// depth; a type list (`["string", "null"]`) as one type and `nullable`; `oneOf` as
/// `anyOf`; a string `const` as a one-value `enum`; `required` naming only
/// properties that exist.
fn gemini_schema(schema: &Value) -> Value {
    let Value::Object(source) = schema else {
        // `true` (anything goes) and other non-object schemas: no constraint.
        return json!({});
    };
    let mut out = Map::new();
    for (key, value) in source {
        match key.as_str() {
            "properties" => {
                if let Value::Object(properties) = value {
                    let properties: Map<String, Value> =
                        properties.iter().map(|(name, property)| (name.clone(), gemini_schema(property))).collect();
                    if !properties.is_empty() {
                        out.insert(key.clone(), Value::Object(properties));
                    }
                }
            }
            "items" => {
                out.insert(key.clone(), gemini_schema(value));
            }
            "anyOf" | "oneOf" => {
                if let Value::Array(options) = value {
                    out.insert("anyOf".into(), options.iter().map(gemini_schema).collect());
                }
            }
            "type" => match value {
                Value::Array(types) => {
                    if let Some(first) = types.iter().find(|t| *t != "null") {
                        out.insert(key.clone(), first.clone());
                    }
                    if types.iter().any(|t| t == "null") {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                }
                other => {
                    out.insert(key.clone(), other.clone());
                }
            },
            "const" if value.is_string() && !source.contains_key("enum") => {
                out.insert("enum".into(), json!([value]));
            }
            "format" if value.as_str().is_some_and(|f| SCHEMA_FORMATS.contains(&f)) => {
                out.insert(key.clone(), value.clone());
            }
            _ if SCHEMA_KEYWORDS.contains(&key.as_str()) => {
                out.entry(key.clone()).or_insert_with(|| value.clone());
            }
            _ => {}
        }
    }
    if let Some(Value::Array(required)) = out.get("required") {
        let properties = out.get("properties").and_then(Value::as_object);
        let known: Vec<Value> = required
            .iter()
            .filter(|name| name.as_str().is_some_and(|n| properties.is_some_and(|p| p.contains_key(n))))
            .cloned()
            .collect();
        if known.is_empty() {
            out.remove("required");
        } else {
            out.insert("required".into(), Value::Array(known));
        }
    }
    Value::Object(out)
}

/// `tool_choice` -> Gemini's function calling mode (and the one function allowed).
fn tool_config(value: &Value) -> Result<Value, TranslateError> {
    let invalid = || TranslateError::param("tool_choice", "`tool_choice` must be auto, none, required or a function");
    let config = match value {
        Value::String(choice) => match choice.as_str() {
            "auto" => json!({ "mode": "AUTO" }),
            "none" => json!({ "mode": "NONE" }),
            "required" => json!({ "mode": "ANY" }),
            _ => return Err(invalid()),
        },
        Value::Object(_) => {
            let name = value["function"]["name"].as_str().ok_or_else(invalid)?;
            json!({ "mode": "ANY", "allowedFunctionNames": [name] })
        }
        _ => return Err(invalid()),
    };
    Ok(json!({ "functionCallingConfig": config }))
}

/// A candidate's finish reason in OpenAI terms. Gemini ends a turn that calls
/// functions with `STOP`; OpenAI clients look for `tool_calls`.
fn finish_reason(reason: Option<&str>, called: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => "length",
        Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY") => {
            "content_filter"
        }
        _ if called => "tool_calls",
        _ => "stop",
    }
}

/// Gemini `usageMetadata` -> OpenAI usage. Gemini counts thinking apart from the
/// answer and cached tokens (and those its built-in tools read) inside the prompt;
/// OpenAI counts reasoning inside the completion.
fn usage(metadata: &Value) -> Value {
    let count = |key: &str| metadata[key].as_u64().unwrap_or(0);
    let prompt = count("promptTokenCount") + count("toolUsePromptTokenCount");
    let thoughts = count("thoughtsTokenCount");
    let completion = count("candidatesTokenCount") + thoughts;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": { "cached_tokens": count("cachedContentTokenCount") },
        "completion_tokens_details": { "reasoning_tokens": thoughts },
    })
}

/// The chat completion id for a Gemini answer: its `responseId`, or (older servers
/// send none) one made from the time.
fn completion_id(response_id: &Value, now: u64) -> Value {
    match response_id.as_str() {
        Some(id) => json!(format!("chatcmpl-{id}")),
        None => json!(format!("chatcmpl-gemini-{now}")),
    }
}

/// A tool call as chat completions names it: Gemini's calls have no id.
fn call_id(n: u64) -> String {
    format!("call_{n}")
}

/// One candidate as a chat choice.
fn choice(candidate: &Value, position: usize) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for part in candidate["content"]["parts"].as_array().into_iter().flatten() {
        if let Some(call) = part.get("functionCall") {
            let arguments = call.get("args").filter(|a| !a.is_null()).cloned().unwrap_or_else(|| json!({}));
            tool_calls.push(json!({
                "id": call_id(tool_calls.len() as u64),
                "type": "function",
                "function": { "name": call["name"], "arguments": arguments.to_string() },
            }));
        } else if let Some(piece) = part["text"].as_str() {
            if part["thought"] == true {
                reasoning.push_str(piece);
            } else {
                text.push_str(piece);
            }
        }
    }
    let finish = finish_reason(candidate["finishReason"].as_str(), !tool_calls.is_empty());
    let content = if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { Value::String(text) };
    let mut message = json!({ "role": "assistant", "content": content });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    let index = candidate["index"].as_u64().unwrap_or(position as u64);
    json!({ "index": index, "message": message, "logprobs": null, "finish_reason": finish })
}

/// Gemini `GenerateContentResponse` -> chat completion. `now` is the Unix time to
/// report (translation has no clock of its own).
pub fn response(body: Value, now: u64) -> Result<Value, TranslateError> {
    let answer = into_object(body, "upstream response")?;
    let candidates = answer.get("candidates").and_then(Value::as_array).filter(|c| !c.is_empty());
    let choices: Vec<Value> = match candidates {
        Some(candidates) => candidates.iter().enumerate().map(|(position, c)| choice(c, position)).collect(),
        // No candidate at all: Gemini blocked the prompt itself.
        None if answer.get("promptFeedback").is_some_and(|f| f.get("blockReason").is_some()) => {
            vec![json!({
                "index": 0,
                "message": { "role": "assistant", "content": "" },
                "logprobs": null,
                "finish_reason": "content_filter",
            })]
        }
        None => return Err(TranslateError::new("upstream response has no candidates")),
    };
    Ok(json!({
        "id": completion_id(answer.get("responseId").unwrap_or(&Value::Null), now),
        "object": "chat.completion",
        "created": now,
        "model": answer.get("modelVersion").cloned().unwrap_or(Value::Null),
        "choices": choices,
        "usage": usage(answer.get("usageMetadata").unwrap_or(&Value::Null)),
    }))
}

/// The OpenAI error JSON for a Gemini error (`{"error": {"code", "message",
/// "status"}}`): the type follows the HTTP status, Gemini's status
/// (`INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, ...) is the code.
pub fn error(status: u16, body: &[u8]) -> Value {
    let (message, _) = upstream_error_message(status, body);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().and_then(|v| v["error"]["status"].as_str());
    ErrorShape::OpenAi.body(ErrorKind::from_status(status), &message, None, code)
}

/// One candidate of a streamed answer, as it goes.
struct Choice {
    index: u64,
    /// Function calls streamed so far (the next one's `call_<n>`).
    calls: u64,
    finished: bool,
}

/// Gemini stream events (each a whole `GenerateContentResponse` holding the next
/// piece of the answer) -> OpenAI chat completion chunks. Gemini ends its stream
/// without a marker, so the usage chunk and `[DONE]` go out in [`Self::finish`].
pub struct StreamTranslator {
    include_usage: bool,
    created: u64,
    id: Value,
    model: Value,
    choices: Vec<Choice>,
    /// The latest usage, in OpenAI terms (Gemini repeats it as it grows).
    usage: Value,
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
            choices: Vec::new(),
            usage: Value::Null,
            done: false,
        }
    }

    fn chunk(&self, index: u64, delta: Value, finish_reason: Option<&str>) -> SseEvent {
        SseEvent::data(
            json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{ "index": index, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
            })
            .to_string(),
        )
    }

    /// The state of candidate `index`, announcing the assistant's turn when it is new.
    fn choice(&mut self, index: u64, events: &mut Vec<SseEvent>) -> usize {
        if let Some(at) = self.choices.iter().position(|c| c.index == index) {
            return at;
        }
        events.push(self.chunk(index, json!({ "role": "assistant", "content": "" }), None));
        self.choices.push(Choice { index, calls: 0, finished: false });
        self.choices.len() - 1
    }

    pub fn push(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if self.done {
            return events;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else {
            return events;
        };
        if let Some(error) = chunk.get("error") {
            self.done = true;
            let message = error["message"].as_str().unwrap_or("upstream stream error");
            let kind = error["code"]
                .as_u64()
                .and_then(|code| u16::try_from(code).ok())
                .map_or(ErrorKind::BadGateway, ErrorKind::from_status);
            let body = ErrorShape::OpenAi.body(kind, message, None, error["status"].as_str());
            events.push(ErrorShape::OpenAi.stream_event(&body));
            return events;
        }
        if self.id.is_null() {
            self.id = completion_id(&chunk["responseId"], self.created);
        }
        if let Some(model) = chunk.get("modelVersion").filter(|m| m.is_string()) {
            self.model = model.clone();
        }
        if chunk["usageMetadata"].is_object() {
            self.usage = usage(&chunk["usageMetadata"]);
        }
        let candidates = chunk["candidates"].as_array().map(Vec::as_slice).unwrap_or_default();
        if candidates.is_empty() && chunk["promptFeedback"].get("blockReason").is_some() {
            // Gemini blocked the prompt itself: an empty answer, filtered.
            let at = self.choice(0, &mut events);
            self.choices[at].finished = true;
            events.push(self.chunk(0, json!({}), Some("content_filter")));
        }
        for (position, candidate) in candidates.iter().enumerate() {
            self.candidate(candidate, position, &mut events);
        }
        events
    }

    /// The next piece of one candidate: text, thoughts, whole function calls, its end.
    fn candidate(&mut self, candidate: &Value, position: usize, events: &mut Vec<SseEvent>) {
        let index = candidate["index"].as_u64().unwrap_or(position as u64);
        let at = self.choice(index, events);
        for part in candidate["content"]["parts"].as_array().into_iter().flatten() {
            if let Some(call) = part.get("functionCall") {
                let n = self.choices[at].calls;
                self.choices[at].calls += 1;
                let arguments = call.get("args").filter(|a| !a.is_null()).cloned().unwrap_or_else(|| json!({}));
                let delta = json!({ "tool_calls": [{ "index": n, "id": call_id(n), "type": "function",
                    "function": { "name": call["name"], "arguments": arguments.to_string() } }] });
                events.push(self.chunk(index, delta, None));
            } else if let Some(text) = part["text"].as_str().filter(|t| !t.is_empty()) {
                let key = if part["thought"] == true { "reasoning_content" } else { "content" };
                events.push(self.chunk(index, json!({ key: text }), None));
            }
        }
        if let Some(reason) = candidate["finishReason"].as_str() {
            self.choices[at].finished = true;
            let finish = finish_reason(Some(reason), self.choices[at].calls > 0);
            events.push(self.chunk(index, json!({}), Some(finish)));
        }
    }

    /// Every candidate begun has its finish reason.
    fn finished(&self) -> bool {
        !self.choices.is_empty() && self.choices.iter().all(|c| c.finished)
    }

    /// The upstream stream ended: when the answer is whole, its usage (if the client
    /// asked) and `[DONE]`; when it broke off, nothing (`completed` says so).
    pub fn finish(&mut self) -> Vec<SseEvent> {
        if self.done || !self.finished() {
            return Vec::new();
        }
        self.done = true;
        let mut events = Vec::with_capacity(2);
        if self.include_usage {
            let usage = if self.usage.is_null() { usage(&Value::Null) } else { self.usage.clone() };
            events.push(SseEvent::data(
                json!({
                    "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [], "usage": usage,
                })
                .to_string(),
            ));
        }
        events.push(SseEvent::data("[DONE]"));
        events
    }

    /// True once every candidate reached its finish reason (or the upstream sent its
    /// own error).
    pub fn completed(&self) -> bool {
        self.done || self.finished()
    }
}

#[cfg(test)]
mod tests;
