//! OpenAI chat and Responses clients served by Anthropic's Messages API.

memory_proxy_sdk::register_provider_adapter!(adapter_kit::Adapter<adapter_kit::Anthropic>);
