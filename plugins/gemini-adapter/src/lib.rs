//! Anthropic and Responses clients served by Gemini's OpenAI-compatible endpoint.

memory_proxy_sdk::register_provider_adapter!(adapter_kit::Adapter<adapter_kit::Gemini>);
