//! The engine: compiles components (with a content-addressed cache),
//! pre-instantiates them once, and creates instances.

use std::collections::HashMap;
use std::future::Future;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::{buffer_allocator, capability_query, types};
use crate::cache::{hex, DiskCache, Miss};
use crate::config::{Allocation, EngineConfig, InstanceDensity, Limits};
use crate::dynamic::{plan_interface, InterfacePlan};
use crate::error::{Error, Result};
use crate::exports::TypedIndices;
use crate::gate::WasiRuntime;
use crate::host::EngineTotals;
use crate::instance::WasmtimeInstance;
use crate::interfaces::{
    classify_export, split_export_name, CallPath, ExportInfo, Interface, CONTRACT_VERSION,
};
use crate::invoker::AsyncComponentInvoker;
use crate::stacks;
use crate::store::{Epoch, StoreState};

/// A backend that compiles and instantiates components.
///
/// [`WasmtimeEngine`] is the real one; [`MockEngine`](crate::mock::MockEngine)
/// stands in for it in downstream tests.
pub trait WasmEngine {
    /// A compiled, ready-to-instantiate component (cheap to clone).
    type Component: Clone;
    /// A live instance, callable sync and async.
    type Instance: AsyncComponentInvoker;

    /// Compiles component bytes; `name` appears in every error about it.
    fn compile(&self, name: &str, bytes: &[u8]) -> Result<Self::Component>;
    /// Creates a fresh instance, on the calling thread.
    fn instantiate(&self, component: &Self::Component) -> Result<Self::Instance>;
    /// Creates a fresh instance as a future: start-up code runs on a fiber
    /// that yields like any async call.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the half-made instance; nothing else is
    /// affected.
    fn instantiate_async(
        &self,
        component: &Self::Component,
    ) -> impl Future<Output = Result<Self::Instance>> + Send;
}

/// The wasmtime backend.
pub struct WasmtimeEngine {
    engine: wasmtime::Engine,
    linker: Linker<StoreState>,
    /// Interfaces linked by the user (`with_host_imports`).
    custom_imports: Vec<String>,
    config: EngineConfig,
    compiled: Mutex<HashMap<[u8; 32], Component>>,
    disk: Option<DiskCache>,
    stats: Mutex<CacheStats>,
    totals: Arc<EngineTotals>,
    /// The runtime of WASI's host futures, made with the first WASI component.
    wasi_runtime: OnceLock<Arc<WasiRuntime>>,
    /// Held for its `Drop`: stops the ticker thread with the engine.
    _ticker: EpochTicker,
}

impl std::fmt::Debug for WasmtimeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmtimeEngine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How [`WasmtimeEngine::compile`] calls were served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Served from the in-memory cache.
    pub memory_hits: u64,
    /// Loaded from the disk cache.
    pub disk_hits: u64,
    /// Compiled from the bytes.
    pub compiled: u64,
    /// Disk cache files not used, and why (not written by this cache,
    /// altered, or built by an incompatible engine).
    pub refused: Vec<String>,
}

/// A compiled and pre-instantiated component: linking and export lookups are
/// done once here, so each instantiation only creates a store and an instance.
#[derive(Clone)]
pub struct CompiledComponent {
    pub(crate) inner: Arc<CompiledInner>,
}

pub(crate) struct CompiledInner {
    pub(crate) name: String,
    pub(crate) digest: [u8; 32],
    pub(crate) pre: InstancePre<StoreState>,
    pub(crate) exports: Vec<ExportInfo>,
    pub(crate) typed: TypedIndices,
    pub(crate) dynamic: Vec<InterfacePlan>,
    /// Whether instances need a WASI context.
    pub(crate) imports_wasi: bool,
    /// For components importing WASI (linked async): the runtime of its
    /// host futures.
    pub(crate) wasi_runtime: Option<Arc<WasiRuntime>>,
    /// The engine's user-linked interfaces.
    pub(crate) custom_imports: Vec<String>,
    /// The engine's epoch, as its ticker counts it.
    pub(crate) epoch: Epoch,
    pub(crate) limits: Limits,
}

impl CompiledComponent {
    /// The name given at compile time.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// SHA-256 of the component bytes, in hex.
    pub fn digest(&self) -> String {
        hex(&self.inner.digest)
    }

    /// The component's exports and how each is called.
    pub fn exports(&self) -> &[ExportInfo] {
        &self.inner.exports
    }

    /// How calls to `interface` are made, if the component exports it.
    pub fn path_for(&self, interface: Interface) -> Option<&CallPath> {
        self.inner
            .exports
            .iter()
            .find(|e| e.interface == Some(interface) && !matches!(e.path, CallPath::ByNameOnly(_)))
            .map(|e| &e.path)
    }

    /// Each import of the component and who serves it.
    pub fn import_providers(&self) -> Vec<(String, ImportProvider)> {
        self.imports()
            .into_iter()
            .map(|import| {
                if is_custom(&self.inner.custom_imports, &import) {
                    return (import, ImportProvider::Custom);
                }
                let provider = match host_import(&import) {
                    HostImport::Provided(provider) => provider,
                    HostImport::Alias(kind) => ImportProvider::ServedAs(kind.contract_name()),
                    HostImport::Missing => ImportProvider::Missing,
                };
                (import, provider)
            })
            .collect()
    }

    /// The names of the component's imports.
    pub fn imports(&self) -> Vec<String> {
        let component = self.inner.pre.component();
        let engine = component.engine();
        component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// The limits its instances get.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// A copy with other limits for its instances (e.g. a component that needs
    /// more fuel than the engine's default).
    pub fn with_limits(&self, limits: Limits) -> CompiledComponent {
        let inner = &self.inner;
        CompiledComponent {
            inner: Arc::new(CompiledInner {
                name: inner.name.clone(),
                digest: inner.digest,
                pre: inner.pre.clone(),
                exports: inner.exports.clone(),
                typed: inner.typed.clone(),
                dynamic: inner.dynamic.clone(),
                imports_wasi: inner.imports_wasi,
                wasi_runtime: inner.wasi_runtime.clone(),
                custom_imports: inner.custom_imports.clone(),
                epoch: inner.epoch.clone(),
                limits,
            }),
        }
    }
}

impl std::fmt::Debug for CompiledComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledComponent")
            .field("name", &self.inner.name)
            .field("digest", &self.digest())
            .field("exports", &self.inner.exports)
            .finish()
    }
}

impl WasmtimeEngine {
    /// An engine with the given configuration.
    pub fn new(config: EngineConfig) -> Result<WasmtimeEngine> {
        Self::with_host_imports(config, &[], |_| Ok(()))
    }

    /// An engine whose linker also serves host interfaces of your own:
    /// `add` links them (typically with the `add_to_linker` of bindings
    /// generated by `torvyn-build`, keeping their state in
    /// [`StoreState::extension`]), and `interfaces` names them (e.g.
    /// `acme:geo/lookup`) so import checks and `inspect` know who serves them.
    pub fn with_host_imports(
        config: EngineConfig,
        interfaces: &[&str],
        add: impl FnOnce(&mut Linker<StoreState>) -> wasmtime::Result<()>,
    ) -> Result<WasmtimeEngine> {
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            // Always metered, so any component can be given a fuel limit
            // (`with_limits`) whatever the engine's default.
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_stack_bytes);
        if config.density == InstanceDensity::Dense {
            // Explicit bounds checks instead of reservations and guards;
            // fiber stacks whose mappings merge (see `stacks`).
            // No growth reservation either: a memory that grows is moved.
            wasm.memory_reservation(0)
                .memory_reservation_for_growth(0)
                .memory_guard_size(0)
                .guard_before_linear_memory(false)
                .async_stack_size(config.max_stack_bytes + stacks::HOST_HEADROOM_BYTES)
                .with_host_stack(Arc::new(stacks::MergeableStacks));
        }
        if let Allocation::Pooling { max_instances } = config.allocation {
            check_map_budget(max_instances, config.density)?;
            let memory_bytes = config.limits.max_memory_bytes.next_multiple_of(65_536);
            // Slots sized by the memory limit, not by 4 GiB reservations:
            // the pool's address space grows with what instances may use.
            if config.density == InstanceDensity::Guarded {
                wasm.memory_reservation(memory_bytes);
            }
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(max_instances)
                .total_core_instances(max_instances.saturating_mul(4))
                .total_memories(max_instances.saturating_mul(2))
                .total_tables(max_instances.saturating_mul(4))
                .total_stacks(max_instances)
                .max_memory_size(memory_bytes as usize)
                .table_elements(config.limits.max_table_elements);
            wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = wasmtime::Engine::new(&wasm).map_err(|e| Error::Config(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        let link = |e: wasmtime::Error| Error::Config(format!("linking host functions: {e:#}"));
        types::add_to_linker::<StoreState, HasSelf<_>>(&mut linker, StoreState::host)
            .map_err(link)?;
        buffer_allocator::add_to_linker::<StoreState, HasSelf<_>>(&mut linker, StoreState::host)
            .map_err(link)?;
        capability_query::add_to_linker::<StoreState, HasSelf<_>>(&mut linker, StoreState::host)
            .map_err(link)?;
        // Async WASI: a guest waiting on a clock or stream yields instead of
        // blocking a thread (sync calls drive it to their deadline).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        add(&mut linker).map_err(link)?;

        let disk = config
            .cache_dir
            .as_deref()
            .map(DiskCache::open)
            .transpose()?;
        // Always ticking: any component may get a deadline (`with_limits`),
        // and async calls yield at every time slice.
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)?;
        Ok(WasmtimeEngine {
            engine,
            linker,
            custom_imports: interfaces.iter().map(|name| name.to_string()).collect(),
            config,
            compiled: Mutex::new(HashMap::new()),
            disk,
            stats: Mutex::new(CacheStats::default()),
            totals: Arc::default(),
            wasi_runtime: OnceLock::new(),
            _ticker: ticker,
        })
    }

    /// The configuration this engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The underlying wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// Live instances and the buffer bytes their guests hold, over the whole
    /// engine: both return to zero when every instance is dropped.
    pub fn totals(&self) -> &EngineTotals {
        &self.totals
    }

    /// The linker for `component`: the engine's own, or a copy that also
    /// serves the contract's host interfaces under the names this component
    /// imports them by (another version or package with the same shapes).
    /// Every import nobody provides is reported at once.
    fn linker_for(
        &self,
        name: &str,
        component: &Component,
    ) -> Result<std::borrow::Cow<'_, Linker<StoreState>>> {
        let mut aliases = Vec::new();
        let mut missing = Vec::new();
        for (import, _) in component.component_type().imports(&self.engine) {
            if is_custom(&self.custom_imports, import) {
                continue;
            }
            match host_import(import) {
                HostImport::Provided(_) => {}
                HostImport::Alias(kind) => aliases.push((import.to_string(), kind)),
                HostImport::Missing => missing.push(import.to_string()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::MissingImports {
                component: name.to_string(),
                missing,
            });
        }
        if aliases.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(&self.linker));
        }
        let mut linker = self.linker.clone();
        for (import, kind) in aliases {
            let link = |e: wasmtime::Error| Error::Instantiate {
                component: name.to_string(),
                detail: format!("serving import `{import}`: {e:#}"),
            };
            let mut instance = linker.instance(&import).map_err(link)?;
            match kind {
                HostInterface::Types => types::add_to_linker_instance::<StoreState, HasSelf<_>>(
                    &mut instance,
                    StoreState::host,
                ),
                HostInterface::BufferAllocator => buffer_allocator::add_to_linker_instance::<
                    StoreState,
                    HasSelf<_>,
                >(&mut instance, StoreState::host),
                HostInterface::CapabilityQuery => capability_query::add_to_linker_instance::<
                    StoreState,
                    HasSelf<_>,
                >(&mut instance, StoreState::host),
            }
            .map_err(link)?;
        }
        Ok(std::borrow::Cow::Owned(linker))
    }

    /// The engine's runtime for WASI's host futures, made on first use.
    fn wasi_runtime(&self, name: &str) -> Result<Arc<WasiRuntime>> {
        if let Some(runtime) = self.wasi_runtime.get() {
            return Ok(runtime.clone());
        }
        let runtime = WasiRuntime::new().map_err(|e| Error::Instantiate {
            component: name.to_string(),
            detail: format!("cannot start the WASI runtime: {e}"),
        })?;
        Ok(self.wasi_runtime.get_or_init(|| Arc::new(runtime)).clone())
    }

    /// How compilations were served so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn count(&self, update: impl FnOnce(&mut CacheStats)) {
        if let Ok(mut stats) = self.stats.lock() {
            update(&mut stats);
        }
    }

    /// Compiles `bytes`, or takes the result from the memory or disk cache.
    fn compile_cached(&self, name: &str, digest: &[u8; 32], bytes: &[u8]) -> Result<Component> {
        let in_memory = self
            .compiled
            .lock()
            .ok()
            .and_then(|c| c.get(digest).cloned());
        if let Some(found) = in_memory {
            self.count(|s| s.memory_hits += 1);
            return Ok(found);
        }
        let component = match self.load_from_disk(digest) {
            Some(component) => {
                self.count(|s| s.disk_hits += 1);
                component
            }
            None => {
                self.count(|s| s.compiled += 1);
                let component =
                    Component::new(&self.engine, bytes).map_err(|e| Error::Compile {
                        component: name.to_string(),
                        detail: format!("{e:#}"),
                    })?;
                if let Some(disk) = &self.disk {
                    let artifact = component.serialize().map_err(|e| Error::Cache {
                        path: self.config.cache_dir.clone().unwrap_or_default(),
                        detail: format!("{e:#}"),
                    })?;
                    disk.store(digest, &artifact)?;
                }
                component
            }
        };
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(*digest, component.clone());
        }
        Ok(component)
    }

    /// A component from the disk cache, if one is there that this cache wrote
    /// and this engine can run; refusals are recorded in the stats.
    fn load_from_disk(&self, digest: &[u8; 32]) -> Option<Component> {
        let refused = match self.disk.as_ref()?.load(digest) {
            // SAFETY: the artifact carries this cache's HMAC, so it was
            // produced by `Component::serialize` in a process holding the key;
            // wasmtime itself checks that it matches this engine's settings.
            Ok(artifact) => match unsafe { Component::deserialize(&self.engine, artifact) } {
                Ok(component) => return Some(component),
                Err(e) => format!("incompatible artifact: {e:#}"),
            },
            Err(Miss::Absent) => return None,
            Err(Miss::Refused(why)) => why,
        };
        self.count(|s| s.refused.push(refused));
        None
    }
}

impl WasmEngine for WasmtimeEngine {
    type Component = CompiledComponent;
    type Instance = WasmtimeInstance;

    fn compile(&self, name: &str, bytes: &[u8]) -> Result<CompiledComponent> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let component = self.compile_cached(name, &digest, bytes)?;
        let linker = self.linker_for(name, &component)?;
        let instantiate_error = |e: wasmtime::Error| Error::Instantiate {
            component: name.to_string(),
            detail: format!("{e:#}"),
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(instantiate_error)?;
        let exports = choose_paths(
            component
                .component_type()
                .exports(&self.engine)
                .map(|(export, _)| classify_export(export)),
        );
        let typed = TypedIndices::new(name, &pre, &exports)?;
        let dynamic = plan_dynamic(name, &linker, &component, &exports)?;
        let imports_wasi = component
            .component_type()
            .imports(&self.engine)
            .any(|(import, _)| import.starts_with("wasi:"));
        let wasi_runtime = match imports_wasi {
            true => Some(self.wasi_runtime(name)?),
            false => None,
        };
        Ok(CompiledComponent {
            inner: Arc::new(CompiledInner {
                name: name.to_string(),
                digest,
                pre,
                exports,
                typed,
                dynamic,
                imports_wasi,
                wasi_runtime,
                custom_imports: self.custom_imports.clone(),
                epoch: self._ticker.epoch.clone(),
                limits: self.config.limits.clone(),
            }),
        })
    }

    fn instantiate(&self, component: &CompiledComponent) -> Result<WasmtimeInstance> {
        WasmtimeInstance::new(component.clone(), &self.config, self.totals.clone())
    }

    fn instantiate_async(
        &self,
        component: &CompiledComponent,
    ) -> impl Future<Output = Result<WasmtimeInstance>> + Send {
        WasmtimeInstance::new_async(component.clone(), &self.config, self.totals.clone())
    }
}

/// Advances the engine's epoch every tick so call deadlines fire; stops on drop.
struct EpochTicker {
    /// The epoch it has advanced to (wasmtime does not expose its own).
    epoch: Epoch,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: wasmtime::Engine, tick: std::time::Duration) -> Result<EpochTicker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let epoch = Epoch::default();
        let counter = epoch.clone();
        let thread = std::thread::Builder::new()
            .name("torvyn-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    // Ours first: a call reading it never sees an epoch
                    // wasmtime has not reached.
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Config(format!("cannot start the epoch ticker thread: {e}")))?;
        Ok(EpochTicker {
            epoch,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Memory mappings one pooled instance may cost the process at most: its
/// memory slots and fiber stack, each a mapping plus a guard mapping.
const MAPS_PER_POOLED_INSTANCE: u64 = 4;

/// Refuses a pool the kernel's map limit could not hold, naming the limit,
/// what it allows and how to raise it (rather than a bare mapping failure
/// later).
fn check_map_budget(max_instances: u32, density: InstanceDensity) -> Result<()> {
    let Some(limit) = stacks::max_map_count() else {
        return Ok(());
    };
    let per_instance = match density {
        InstanceDensity::Guarded => MAPS_PER_POOLED_INSTANCE,
        InstanceDensity::Dense => MAPS_PER_POOLED_INSTANCE / 2,
    };
    // Leave room for the process's own mappings (libraries, heaps, threads).
    let available = limit.saturating_sub(limit / 8);
    let needed = u64::from(max_instances) * per_instance;
    if needed > available {
        return Err(Error::Config(format!(
            "a pool of {max_instances} instances needs up to {needed} memory mappings, but the \
             kernel allows {limit} per process (vm.max_map_count), enough for about {} pooled \
             instances; raise it (e.g. `sysctl -w vm.max_map_count={}`), pool fewer instances, \
             or use on-demand allocation with InstanceDensity::Dense",
            available / per_instance,
            (needed + limit / 8).next_power_of_two()
        )));
    }
    Ok(())
}

/// The host interfaces of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostInterface {
    Types,
    BufferAllocator,
    CapabilityQuery,
}

impl HostInterface {
    fn from_name(interface: &str) -> Option<HostInterface> {
        match interface {
            "types" => Some(HostInterface::Types),
            "buffer-allocator" => Some(HostInterface::BufferAllocator),
            "capability-query" => Some(HostInterface::CapabilityQuery),
            _ => None,
        }
    }
}

/// Who serves an import of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportProvider {
    /// The host's implementation of a contract interface, under its own name.
    Contract,
    /// WASI 0.2, deny-by-default ([`WasiGrants`](crate::WasiGrants)).
    Wasi,
    /// The host's implementation of the named contract interface, served
    /// under the component's name for it (another version or package).
    ServedAs(&'static str),
    /// An interface linked with [`WasmtimeEngine::with_host_imports`].
    Custom,
    /// Nobody: the component cannot be instantiated.
    Missing,
}

/// Whether `import` is one of the user's interfaces (any version of it).
fn is_custom(custom: &[String], import: &str) -> bool {
    let (base, _) = split_export_name(import);
    custom
        .iter()
        .any(|name| name == import || split_export_name(name).0 == base)
}

/// Whether the engine's linker serves an import as is, under an alias, or not at all.
enum HostImport {
    Provided(ImportProvider),
    Alias(HostInterface),
    Missing,
}

impl HostInterface {
    fn contract_name(self) -> &'static str {
        match self {
            HostInterface::Types => "torvyn:streaming/types",
            HostInterface::BufferAllocator => "torvyn:streaming/buffer-allocator",
            HostInterface::CapabilityQuery => "torvyn:capabilities/capability-query",
        }
    }
}

/// The WASI 0.2 packages `wasmtime-wasi` provides (deny-by-default).
const WASI_PACKAGES: [&str; 6] = [
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

fn host_import(import: &str) -> HostImport {
    if WASI_PACKAGES
        .iter()
        .any(|package| import.starts_with(package))
    {
        return HostImport::Provided(ImportProvider::Wasi);
    }
    let (base, version) = split_export_name(import);
    let Some((_, interface)) = base.split_once('/') else {
        return HostImport::Missing;
    };
    let Some(kind) = HostInterface::from_name(interface) else {
        return HostImport::Missing;
    };
    // The linker matches semver-compatible versions of its own names itself.
    match version {
        Some(v) if base == kind.contract_name() && CONTRACT_VERSION.is_compatible_with(v) => {
            HostImport::Provided(ImportProvider::Contract)
        }
        _ => HostImport::Alias(kind),
    }
}

/// Keeps one export per interface on a stream-stage path: the typed one if
/// any, else the first dynamic one; the others become callable by name only.
fn choose_paths(exports: impl Iterator<Item = ExportInfo>) -> Vec<ExportInfo> {
    let mut exports: Vec<ExportInfo> = exports.collect();
    let mut chosen: Vec<Interface> = Vec::new();
    for pass in [true, false] {
        for export in exports.iter_mut() {
            let Some(interface) = export.interface else {
                continue;
            };
            if (export.path == CallPath::Typed) != pass {
                continue;
            }
            if chosen.contains(&interface) {
                if !matches!(export.path, CallPath::ByNameOnly(_)) {
                    export.path = CallPath::ByNameOnly(format!(
                        "another export already provides `{interface}`"
                    ));
                }
            } else {
                chosen.push(interface);
            }
        }
    }
    exports
}

/// Plans every dynamic export; a shape the host cannot serve is refused now.
fn plan_dynamic(
    name: &str,
    linker: &Linker<StoreState>,
    component: &Component,
    exports: &[ExportInfo],
) -> Result<Vec<InterfacePlan>> {
    let substituted =
        linker
            .substituted_component_type(component)
            .map_err(|e| Error::Instantiate {
                component: name.to_string(),
                detail: format!("{e:#}"),
            })?;
    let engine = component.engine();
    let mut plans = Vec::new();
    for export in exports {
        let (Some(interface), CallPath::Dynamic(_)) = (export.interface, &export.path) else {
            continue;
        };
        let instance_type = substituted
            .exports(engine)
            .find(|(n, _)| *n == export.name)
            .and_then(|(_, item)| match item.ty {
                wasmtime::component::types::ComponentItem::ComponentInstance(i) => Some(i),
                _ => None,
            });
        let Some(instance_type) = instance_type else {
            return Err(Error::ContractMismatch {
                component: name.to_string(),
                detail: format!("export `{}` is not an interface instance", export.name),
            });
        };
        let plan = plan_interface(component, interface, &export.name, &instance_type).map_err(
            |mismatch| Error::ContractMismatch {
                component: name.to_string(),
                detail: format!("export `{}` {mismatch}", export.name),
            },
        )?;
        plans.push(plan);
    }
    Ok(plans)
}
