//! Anthropic and Responses clients served by OpenAI chat completions or any
//! OpenAI-compatible server (Ollama, vLLM, llama.cpp).

memory_proxy_sdk::register_provider_adapter!(adapter_kit::Adapter<adapter_kit::OpenAi>);
