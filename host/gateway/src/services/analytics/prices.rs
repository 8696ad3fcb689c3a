//! What a request cost: its usage at the deployment's prices. Prices come from
//! `model_info` in config.yaml when given, else from the table shipped with the binary
//! (generated from LiteLLM's `model_prices_and_context_window.json` by
//! `cargo xtask prices`; `prices.json` records the LiteLLM version). An unknown model's
//! cost is unknown (None), never zero.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::usage::Usage;
use crate::config::Costs;

/// USD per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    pub reasoning: Option<f64>,
}

/// A row of `prices.json`, compact as `cargo xtask prices` writes it: input, output,
/// cache read, cache write and reasoning prices.
type PriceRow = (f64, f64, Option<f64>, Option<f64>, Option<f64>);

#[derive(Deserialize)]
struct Table {
    source: String,
    models: HashMap<String, PriceRow>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(include_str!("prices.json")).unwrap_or_else(|e| {
            tracing::error!("the built-in price table is unreadable: {e}; costs will be unknown");
            Table { source: String::new(), models: HashMap::new() }
        })
    })
}

/// Where the built-in prices come from.
pub fn source() -> &'static str {
    &table().source
}

/// The table's price of `model` at `provider`: as LiteLLM names it (`gemini/...`) or bare.
pub fn lookup(provider: &str, model: &str) -> Option<Price> {
    let models = &table().models;
    let (input, output, cache_read, cache_write, reasoning) =
        *models.get(&format!("{provider}/{model}")).or_else(|| models.get(model))?;
    Some(Price { input, output, cache_read, cache_write, reasoning })
}

/// The price of a deployment: its `model_info` costs over the table's.
pub fn for_deployment(costs: &Costs, provider: &str, model: &str) -> Option<Price> {
    let table = lookup(provider, model);
    let input = costs.input.or(table.map(|p| p.input))?;
    let output = costs.output.or(table.map(|p| p.output))?;
    Some(Price {
        input,
        output,
        cache_read: costs.cache_read.or(table.and_then(|p| p.cache_read)),
        cache_write: costs.cache_write.or(table.and_then(|p| p.cache_write)),
        reasoning: costs.reasoning.or(table.and_then(|p| p.reasoning)),
    })
}

/// USD for `usage` at `price`. Cached reads and cache writes take their own prices
/// when the model has them, else the input price; reasoning tokens are part of the
/// output and take the reasoning price when there is one.
pub fn cost(usage: &Usage, price: &Price) -> f64 {
    let plain_input = usage.input.saturating_sub(usage.cached + usage.cache_write);
    let plain_output = usage.output.saturating_sub(usage.reasoning);
    plain_input as f64 * price.input
        + usage.cached as f64 * price.cache_read.unwrap_or(price.input)
        + usage.cache_write as f64 * price.cache_write.unwrap_or(price.input)
        + plain_output as f64 * price.output
        + usage.reasoning as f64 * price.reasoning.unwrap_or(price.output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_knows_the_usual_models() {
        assert!(source().starts_with("litellm "), "{}", source());
        let gpt = lookup("openai", "gpt-4o").unwrap();
        assert_eq!((gpt.input, gpt.output), (2.5e-6, 1e-5));
        let claude = lookup("anthropic", "claude-sonnet-4-5").unwrap();
        assert_eq!((claude.cache_read, claude.cache_write), (Some(3e-7), Some(3.75e-6)));
        assert!(lookup("gemini", "gemini-2.5-flash").is_some(), "found under its provider prefix");
        assert!(lookup("openai", "mock-gpt").is_none());
    }

    #[test]
    fn cached_and_cache_write_tokens_take_their_prices() {
        let price =
            Price { input: 3e-6, output: 15e-6, cache_read: Some(0.3e-6), cache_write: Some(3.75e-6), reasoning: None };
        let usage = Usage { input: 1_120, output: 100, cached: 1_000, cache_write: 20, reasoning: 0 };
        let expected = 100.0 * 3e-6 + 1_000.0 * 0.3e-6 + 20.0 * 3.75e-6 + 100.0 * 15e-6;
        assert!((cost(&usage, &price) - expected).abs() < 1e-12);
    }

    #[test]
    fn config_prices_override_the_table_and_unknown_models_cost_nothing_known() {
        let costs = Costs { input: Some(1e-6), output: Some(2e-6), ..Costs::default() };
        let price = for_deployment(&costs, "openai", "gpt-4o").unwrap();
        assert_eq!((price.input, price.output, price.cache_read), (1e-6, 2e-6, Some(1.25e-6)));
        assert!(for_deployment(&Costs::default(), "openai", "mock-gpt").is_none());
    }
}
