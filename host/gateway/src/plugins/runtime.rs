//! Every wasmtime setting the gateway uses lives here, each with the reason for it.
//!
//! One [`PluginRuntime`] per process: one `Engine` (compiled code is shared by every
//! instance), one `Linker` (WASI plus the host interface), an epoch ticker thread that
//! enforces CPU deadlines, and a semaphore that keeps live instances within the
//! pooling allocator's capacity.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, StoreLimits};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::PluginShared;
use super::bindings;
use super::stderr::StderrTail;

/// How often the epoch advances: the granularity of CPU deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Live instances at most, across all plugins (the pooling allocator's capacity).
/// Each warm instance, idle or busy, holds one permit.
const MAX_INSTANCES: u32 = 512;

/// Linear memory a plugin may ever be given; the per-plugin cap (StoreLimits) is
/// usually lower.
const MAX_MEMORY_BYTES: usize = 256 << 20;

pub struct PluginRuntime {
    pub engine: Engine,
    pub linker: Linker<State>,
    /// One permit per live instance.
    pub permits: Arc<Semaphore>,
    /// Calls that outlast one epoch tick run only while holding one of these: one
    /// fewer than the runtime's worker threads, so plugins running long (to their
    /// deadline, say) always leave a worker to every other request.
    pub long_calls: Arc<Semaphore>,
}

/// The long-call permit a Store's running call holds, if any, and since when.
pub type LongCallSlot = Arc<std::sync::Mutex<Option<(tokio::sync::OwnedSemaphorePermit, tokio::time::Instant)>>>;

/// What a Store holds: the sandbox's WASI context (no files, network, environment or
/// clock), its resource table, its memory limit, and the plugin it belongs to.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    pub plugin: Arc<PluginShared>,
    pub stderr: StderrTail,
    /// When the running call is stopped.
    pub deadline: tokio::time::Instant,
    /// The long-call permit the running call holds once it outlasted a tick.
    pub long_call: LongCallSlot,
}

impl PluginRuntime {
    /// `cache_dir`: where compiled components are kept between runs (keyed by content
    /// hash and engine settings); None compiles every time.
    pub fn new(cache_dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        // CPU deadlines: each call gets an epoch deadline; the ticker thread below
        // advances the epoch. Cheaper than fuel, and a runaway loop traps.
        config.epoch_interruption(true);
        // Pooling: instances come from preallocated slots, so a new instance (after a
        // trap, or per request when a plugin asks for isolation) costs microseconds.
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(MAX_INSTANCES)
            // A wasip2 component holds a few core instances (the plugin, WASI glue).
            .total_core_instances(MAX_INSTANCES * 4)
            .total_memories(MAX_INSTANCES * 2)
            .total_tables(MAX_INSTANCES * 4)
            .total_stacks(MAX_INSTANCES)
            .max_memory_size(MAX_MEMORY_BYTES)
            .max_core_instances_per_component(16)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            // Returning a fiber stack to the pool would otherwise madvise it away, and
            // the next call would fault its pages back in: keep the part calls touch.
            .async_stack_keep_resident(128 << 10);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // Compiled code cached on disk: a restart or reload of an unchanged plugin
        // skips Cranelift entirely.
        if let Some(dir) = cache_dir.and_then(|d| std::fs::create_dir_all(d).ok().map(|()| d)) {
            let mut cache = CacheConfig::new();
            cache.with_directory(std::path::absolute(dir)?);
            config.cache(Some(Cache::new(cache)?));
        }
        let engine =
            Engine::new(&config).map_err(|e| anyhow::Error::from(e).context("cannot create the WebAssembly engine"))?;
        start_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::add_to_linker(&mut linker)?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            engine,
            linker,
            permits: Arc::new(Semaphore::new(MAX_INSTANCES as usize)),
            long_calls: Arc::new(Semaphore::new(workers.saturating_sub(1).max(1))),
        })
    }

    /// Compiles (or fetches from the cache) a component.
    pub fn compile(&self, bytes: &[u8]) -> anyhow::Result<Component> {
        Ok(Component::new(&self.engine, bytes)?)
    }

    /// A Store's state for one new instance of `plugin`.
    pub fn state(&self, plugin: Arc<PluginShared>) -> State {
        let stderr = StderrTail::default();
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            // No clock: a plugin's answer must not depend on when it runs.
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .build();
        let limits = wasmtime::StoreLimitsBuilder::new().memory_size(plugin.limits.memory_bytes).build();
        State {
            wasi,
            table: ResourceTable::new(),
            limits,
            plugin,
            stderr,
            deadline: tokio::time::Instant::now(),
            long_call: LongCallSlot::default(),
        }
    }
}

/// One ticker thread per engine (there is one engine per process). A std thread, not
/// a tokio task: a tokio task on a busy runtime can be starved by the very plugin call
/// it should interrupt.
fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.clone();
    let spawned = std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(EPOCH_TICK);
            engine.increment_epoch();
        }
    });
    if let Err(error) = spawned {
        tracing::error!("cannot start the plugin deadline thread: {error}; plugin calls have no CPU deadline");
    }
}

struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
