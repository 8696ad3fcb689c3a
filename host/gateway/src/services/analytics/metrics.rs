//! Prometheus metrics (`GET /metrics`): requests, latency, tokens and cost as requests
//! finish; plugin calls and failures and the analytics queue as they are at scrape time.

use std::sync::OnceLock;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::Record;

/// Seconds: from a fast passthrough to a long agent turn.
const DURATION_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// The process-wide recorder (installed once; later calls reuse it).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!("metrics disabled: {error}");
                    None
                }
            }
        })
        .as_ref()
}

/// Counts a finished request.
pub fn record(record: &Record) {
    // The model group, not the name asked for: a wildcard group serves any name a
    // caller makes up, and a name that routed nowhere is free text. Either would grow
    // the metrics without bound.
    let model = record.model_group.clone().unwrap_or_else(|| "unknown".to_owned());
    let status = record.status.to_string();
    counter!("memory_proxy_requests_total", "api" => record.api, "model" => model.clone(), "status" => status)
        .increment(1);
    histogram!("memory_proxy_request_duration_seconds", "api" => record.api, "model" => model.clone())
        .record(record.latency.as_secs_f64());
    if let Some(ttft) = record.ttft {
        histogram!("memory_proxy_time_to_first_byte_seconds", "model" => model.clone()).record(ttft.as_secs_f64());
    }
    if let Some(overhead) = record.overhead() {
        histogram!("memory_proxy_overhead_seconds", "api" => record.api).record(overhead.as_secs_f64());
    }
    if let Some(usage) = &record.usage {
        for (kind, count) in [("input", usage.input), ("output", usage.output), ("cached", usage.cached)] {
            counter!("memory_proxy_tokens_total", "model" => model.clone(), "kind" => kind).increment(count);
        }
    }
    if let Some(cost) = record.cost_usd {
        // Counters are integers: cost is kept in micro-dollars.
        counter!("memory_proxy_cost_microdollars_total", "model" => model).increment((cost * 1e6).round() as u64);
    }
    if record.memories_recalled > 0 {
        counter!("memory_proxy_memories_recalled_total").increment(u64::from(record.memories_recalled));
    }
    if record.memories_captured > 0 {
        counter!("memory_proxy_memories_captured_total").increment(u64::from(record.memories_captured));
    }
    if let Some(error) = record.memory_error {
        counter!("memory_proxy_memory_backend_errors_total", "error" => error).increment(1);
    }
}

/// Sets the values read at scrape time.
pub fn observe_state(
    plugins: &crate::plugins::PluginSet,
    queue_depth: usize,
    dropped: u64,
    database: &crate::storage::writer::Health,
) {
    use std::sync::atomic::Ordering::Relaxed;
    counter!("memory_proxy_databank_write_errors_total").absolute(database.write_errors.load(Relaxed));
    counter!("memory_proxy_databank_refused_total").absolute(database.refused.load(Relaxed));
    gauge!("memory_proxy_databank_failing").set(f64::from(u8::from(database.failing.load(Relaxed))));
    for plugin in plugins.all() {
        let stats = plugin.stats.view();
        counter!("memory_proxy_plugin_calls_total", "plugin" => plugin.spec.name.clone()).absolute(stats.calls);
        counter!("memory_proxy_plugin_failures_total", "plugin" => plugin.spec.name.clone()).absolute(stats.failures);
        gauge!("memory_proxy_plugin_paused", "plugin" => plugin.spec.name.clone())
            .set(f64::from(u8::from(plugin.is_paused())));
    }
    gauge!("memory_proxy_analytics_queue_depth").set(queue_depth as f64);
    counter!("memory_proxy_analytics_dropped_total").absolute(dropped);
}
