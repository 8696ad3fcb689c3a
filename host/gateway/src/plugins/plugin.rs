//! One loaded plugin: its compiled component, a bounded pool of warm instances, and
//! the sandboxed call that every hook goes through.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::{Instance, Pre};
use super::breaker::Breaker;
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
/// An input this big is no plugin's fault when the call fails on it: the caller's
/// request is, and the breaker does not count it.
const LARGE_INPUT: usize = 1 << 20;
/// CPU time granted per MiB of input beyond the plugin's deadline: translating a big
/// body takes longer, and that is not the plugin spinning.
const DEADLINE_PER_MIB: std::time::Duration = std::time::Duration::from_millis(20);
/// Inputs may take at most this share of the plugin's memory cap (a translation holds
/// the parsed body and the translated one, several times the text).
const INPUT_SHARE_OF_MEMORY: usize = 8;

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
    breaker: Breaker,
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
            breaker: Breaker::new(max_failures),
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// True while its circuit breaker refuses calls after repeated failures.
    pub fn is_paused(&self) -> bool {
        self.breaker.is_open()
    }

    /// The largest input a call takes; bigger ones are refused before the plugin runs.
    pub fn max_input_bytes(&self) -> usize {
        self.shared.limits.memory_bytes / INPUT_SHARE_OF_MEMORY
    }

    /// When a call with an input of this size must be over.
    fn deadline(&self, input_bytes: usize) -> tokio::time::Instant {
        let allowance = DEADLINE_PER_MIB.saturating_mul((input_bytes >> 20) as u32);
        tokio::time::Instant::now() + self.spec.timeout + allowance
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
        // A call still running at an epoch tick is a long one: it gives its worker up,
        // and goes on for one tick at a time only with a long-call permit (there are
        // one fewer than the workers, so long calls always leave a worker to every
        // other request, and take turns among themselves). Its deadline is wall time:
        // a call whose deadline comes while it waits is stopped as soon as it resumes.
        // Short calls, nearly all, never get here.
        let long_calls = self.runtime.long_calls.clone();
        store.epoch_deadline_callback(move |mut store| {
            let state = store.data_mut();
            let deadline = state.deadline;
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            let slot = state.long_call.clone();
            let mut held = slot.lock().unwrap_or_else(|p| p.into_inner());
            // Just granted: run one tick with it.
            if held.as_ref().is_some_and(|(_, since)| now.duration_since(*since) < EPOCH_TICK) {
                return Ok(UpdateDeadline::Continue(1));
            }
            *held = None;
            drop(held);
            let long_calls = long_calls.clone();
            // Delta 0: on resuming, the next check comes back here at once, to run a
            // tick with the permit or to stop at the deadline.
            Ok(UpdateDeadline::YieldCustom(
                0,
                Box::pin(async move {
                    tokio::task::yield_now().await;
                    if let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, long_calls.acquire_owned()).await {
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((permit, tokio::time::Instant::now()));
                    }
                }),
            ))
        });
        store.data_mut().deadline = self.deadline(0);
        store.set_epoch_deadline(1);
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
        self.breaker.admits().map_err(PluginError::Paused)?;
        if self.spec.isolation == Isolation::Pooled
            && let Some(warm) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
        {
            return Ok(warm);
        }
        let started = Instant::now();
        let result = self.instantiate().await;
        // A full pool is load, not a fault of the plugin.
        if let Some(error) = result.as_ref().err().filter(|e| !matches!(e, PluginError::Busy)) {
            self.failed(error, started.elapsed(), 0);
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
    /// `input_bytes` is the size of what the call hands the plugin: an input above
    /// [`Plugin::max_input_bytes`] is refused before the plugin runs, and big inputs
    /// get more CPU time. A trap discards the instance; the failure is counted, logged
    /// with the plugin's name and version, and after `max_failures` in a row the
    /// breaker pauses the plugin for a back-off.
    pub async fn call<R>(
        &self,
        input_bytes: usize,
        call: impl AsyncFnOnce(&mut Warm) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.check_input(input_bytes)?;
        let mut warm = self.checkout().await?;
        let value = self.call_on(&mut warm, input_bytes, call).await?;
        self.checkin(warm);
        Ok(value)
    }

    fn check_input(&self, input_bytes: usize) -> Result<(), PluginError> {
        let limit = self.max_input_bytes();
        if input_bytes > limit {
            return Err(PluginError::TooLarge { bytes: input_bytes, limit });
        }
        Ok(())
    }

    /// Like [`Plugin::call`], on an instance the caller holds (a stream translator's).
    /// On failure the instance must not be used again.
    pub async fn call_on<R>(
        &self,
        warm: &mut Warm,
        input_bytes: usize,
        call: impl AsyncFnOnce(&mut Warm) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.check_input(input_bytes)?;
        warm.store.data_mut().deadline = self.deadline(input_bytes);
        warm.store.set_epoch_deadline(1);
        let started = Instant::now();
        let result = call(warm).await;
        let elapsed = started.elapsed();
        warm.store.data().long_call.lock().unwrap_or_else(|p| p.into_inner()).take();
        match result {
            Ok(value) => {
                self.stats.record(elapsed, true);
                self.breaker.succeeded();
                Ok(value)
            }
            Err(trap) => {
                let error =
                    PluginError::Trap(describe_trap(&trap, &warm.store.data().stderr.text(), self.spec.timeout));
                self.failed(&error, elapsed, input_bytes);
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

    fn failed(&self, error: &PluginError, elapsed: std::time::Duration, input_bytes: usize) {
        self.stats.record(elapsed, false);
        self.stats.record_error(error.to_string());
        let (name, version) = (&self.spec.name, &self.metadata.version);
        if input_bytes >= LARGE_INPUT {
            tracing::warn!(plugin = %name, version = %version, input_bytes, "plugin failed on a large input (not counted against it): {error}");
            return;
        }
        let (in_a_row, paused) = self.breaker.failed();
        tracing::error!(plugin = %name, version = %version, failures_in_a_row = in_a_row, "plugin failed: {error}");
        if let Some(backoff) = paused {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
            tracing::error!(
                plugin = %name,
                "plugin paused after {in_a_row} failures in a row; tried again in {} s",
                backoff.as_secs()
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
