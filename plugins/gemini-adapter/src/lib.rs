//! Gemini, by either of its APIs, picked by the provider's name in config.yaml:
//! `gemini`, its OpenAI-compatible endpoint, serving Anthropic and Responses clients
//! through chat completions; `gemini_native`, its own `generateContent` API, serving
//! OpenAI chat, Anthropic and Responses clients (see `adapter_kit::Gemini`).

memory_proxy_sdk::register_provider_adapter!(adapter_kit::Adapter<adapter_kit::Gemini>);
