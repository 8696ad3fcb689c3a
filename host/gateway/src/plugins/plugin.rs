//! One loaded plugin: its compiled component, a bounded pool of warm instances, and
//! the sandboxed call that every hook goes through.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;
use wasmtime::component::Component;

use super::bindings::{Instance, Pre};
use super::metadata::Metadata;
use super::runtime::{EPOCH_TICK, PluginRuntime, State};
use super::stats::Stats;
use super::{PluginError, PluginShared};
use crate::config::plugins::{Isolation, PluginSpec};

/// Which hook a plugin serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Detector,
    MemoryInjector,
    ProviderAdapter,
}

/// Idle warm instances kept per plugin. Calls are short and run on the runtime's
/// worker threads, so a handful covers the concurrency a plugin ever sees; stream
/// translators hold theirs for the stream and may exceed it briefly.
const MAX_IDLE: usize = 8;
/// A warm instance is replaced after this many calls, so a slow leak in a plugin's
/// heap cannot grow without end.
const MAX_USES: u32 = 10_000;

/// An instance ready to call, with the Store it lives in.
pub struct Warm {
    pub store: Store<State>,
    pub instance: Instance,
    uses: u32,
    _permit: OwnedSemaphorePermit,
}

pub struct Plugin {
    pub spec: PluginSpec,
    pub kind: Kind,
    pub metadata: Metadata,
    /// sha256 of the component file.
    pub hash: String,
    pub loaded_at: SystemTime,
    pub stats: Stats,
    shared: Arc<PluginShared>,
    runtime: Arc<PluginRuntime>,
    pre: Pre,
    idle: Mutex<Vec<Warm>>,
    failures_in_a_row: AtomicU32,
    disabled: AtomicBool,
    max_failures: u32,
}

impl Plugin {
    /// Links a compiled component for its hook. Instantiation and the self-check come
    /// after (see [`Plugin::self_check`]).
    #[allow(clippy::too_many_arguments)]
    pub fn link(
        runtime: Arc<PluginRuntime>,
        spec: PluginSpec,
        kind: Kind,
        metadata: Metadata,
        hash: String,
        component: &Component,
        shared: Arc<PluginShared>,
        max_failures: u32,
    ) -> Result<Self, String> {
        let pre = runtime.linker.instantiate_pre(component).map_err(|e| format!("cannot link: {e:#}"))?;
        let pre = Pre::new(&metadata.api, kind, pre)
            .map_err(|e| format!("does not export the {kind:?} interface of plugin API {}: {e:#}", metadata.api))?;
        Ok(Self {
            spec,
            kind,
            metadata,
            hash,
            loaded_at: SystemTime::now(),
            stats: Stats::default(),
            shared,
            runtime,
            pre,
            idle: Mutex::new(Vec::new()),
            failures_in_a_row: AtomicU32::new(0),
            disabled: AtomicBool::new(false),
            max_failures,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    /// Epoch ticks in the plugin's CPU deadline (at least one).
    fn deadline_ticks(&self) -> u64 {
        (self.spec.timeout.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
    }

    /// A fresh instance: a new Store within the memory cap, instantiated and
    /// initialised (`init`, which builds the plugin from its config).
    async fn instantiate(&self) -> Result<Warm, PluginError> {
        let permit = tokio::time::timeout(self.spec.timeout, self.runtime.permits.clone().acquire_owned())
            .await
            .map_err(|_| PluginError::Busy)?
            .map_err(|_| PluginError::Busy)?;
        let mut store = Store::new(&self.runtime.engine, self.runtime.state(self.shared.clone()));
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks());
        let instance = self
            .pre
            .instantiate(&mut store)
            .await
            .map_err(|e| PluginError::Trap(format!("instantiation failed: {e:#}")))?;
        match instance.init(&mut store).await {
            Ok(Ok(())) => Ok(Warm { store, instance, uses: 0, _permit: permit }),
            Ok(Err(message)) => Err(PluginError::Init(message)),
            Err(trap) => Err(PluginError::Trap(describe_trap(&trap, &store.data().stderr.text(), self.spec.timeout))),
        }
    }

    /// A warm instance to call: an idle one, or a new one.
    pub async fn checkout(&self) -> Result<Warm, PluginError> {
        if self.disabled() {
            return Err(PluginError::Disabled);
        }
        if self.spec.isolation == Isolation::Pooled
            && let Some(warm) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
        {
            return Ok(warm);
        }
        let started = Instant::now();
        let result = self.instantiate().await;
        if let Err(error) = &result {
            self.failed(error, started.elapsed());
        }
        result
    }

    /// Returns an instance after a successful call.
    pub fn checkin(&self, mut warm: Warm) {
        warm.uses += 1;
        if self.spec.isolation == Isolation::PerRequest || warm.uses >= MAX_USES {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(warm);
        }
    }

    /// Runs `call` on a warm instance under the plugin's CPU deadline and memory cap.
    /// A trap discards the instance; the failure is counted, logged with the
    /// plugin's name and version, and after `max_failures` in a row the plugin is
    /// disabled until its file changes.
    pub async fn call<R>(&self, call: impl AsyncFnOnce(&mut Warm) -> wasmtime::Result<R>) -> Result<R, PluginError> {
        let mut warm = self.checkout().await?;
        let value = self.call_on(&mut warm, call).await?;
        self.checkin(warm);
        Ok(value)
    }

    /// Like [`Plugin::call`], on an instance the caller holds (a stream translator's).
    /// On failure the instance must not be used again.
    pub async fn call_on<R>(
        &self,
        warm: &mut Warm,
        call: impl AsyncFnOnce(&mut Warm) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        warm.store.set_epoch_deadline(self.deadline_ticks());
        let started = Instant::now();
        let result = call(warm).await;
        let elapsed = started.elapsed();
        match result {
            Ok(value) => {
                self.stats.record(elapsed, true);
                self.failures_in_a_row.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Err(trap) => {
                let error =
                    PluginError::Trap(describe_trap(&trap, &warm.store.data().stderr.text(), self.spec.timeout));
                self.failed(&error, elapsed);
                Err(error)
            }
        }
    }

    /// Counts an error value a plugin returned (not a trap): it reached the hook's
    /// error handling like any failure, but the instance stays healthy.
    pub fn reported(&self, message: &str) {
        self.stats.record_error(format!("returned an error: {message}"));
        tracing::warn!(plugin = %self.spec.name, version = %self.metadata.version, "plugin returned an error: {message}");
    }

    fn failed(&self, error: &PluginError, elapsed: std::time::Duration) {
        self.stats.record(elapsed, false);
        self.stats.record_error(error.to_string());
        let in_a_row = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::error!(
            plugin = %self.spec.name,
            version = %self.metadata.version,
            failures_in_a_row = in_a_row,
            "plugin failed: {error}"
        );
        if in_a_row >= self.max_failures && !self.disabled.swap(true, Ordering::Relaxed) {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
            tracing::error!(
                plugin = %self.spec.name,
                "plugin disabled after {in_a_row} failures in a row; it comes back when its file changes"
            );
        }
    }
}

/// A trap in words: a deadline, a panic (with what the plugin printed), or the raw error.
fn describe_trap(error: &wasmtime::Error, stderr: &str, timeout: std::time::Duration) -> String {
    let said = if stderr.is_empty() { String::new() } else { format!("; it printed: {stderr}") };
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => format!("exceeded its CPU deadline of {} ms", timeout.as_millis()),
        Some(wasmtime::Trap::UnreachableCodeReached) => format!("panicked or aborted{said}"),
        Some(trap) => format!("trapped: {trap}{said}"),
        None => format!("{error:#}{said}"),
    }
}
