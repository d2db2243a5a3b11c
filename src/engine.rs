//! The engine: compiles components (with a content-addressed cache),
//! pre-instantiates them once, and creates instances.

use std::collections::HashMap;
use std::future::Future;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::{buffer_allocator, capability_query, types};
use crate::cache::{DiskCache, Miss};
use crate::component::{CompiledComponent, CompiledInner};
use crate::config::{Allocation, EngineConfig, InstanceDensity, Limits, NodeLimits};
use crate::direct;
use crate::dynamic::{plan_interface, InterfacePlan};
use crate::error::{Error, Result};
use crate::exports::TypedIndices;
use crate::gate::WasiRuntime;
use crate::host::EngineTotals;
use crate::imports::{host_import, is_custom, HostImport, HostInterface};
use crate::instance::WasmtimeInstance;
use crate::interfaces::{classify_export, CallPath, ExportInfo, Interface};
use crate::invoker::AsyncComponentInvoker;
use crate::stacks;
use crate::store::{Epoch, ExtensionSlot, HostImports, StoreState};

/// The contract's import instances the direct functions shadow.
const TYPES: &str = "torvyn:streaming/types@0.1.0";
const CAPABILITY_QUERY: &str = "torvyn:capabilities/capability-query@0.1.0";
const BUFFER_ALLOCATOR: &str = "torvyn:streaming/buffer-allocator@0.1.0";

/// Links one of the contract's host interfaces into `instance` (under its
/// own name, or an alias a component imports it as): the generated
/// functions, then the hot ones written by hand over them (`direct.rs`;
/// the linker must allow shadowing).
fn link_contract(
    instance: &mut wasmtime::component::LinkerInstance<'_, StoreState>,
    kind: HostInterface,
) -> wasmtime::Result<()> {
    match kind {
        HostInterface::Types => {
            types::add_to_linker_instance::<StoreState, HasSelf<_>>(instance, StoreState::host)?;
            direct::shadow_types(instance)
        }
        HostInterface::BufferAllocator => buffer_allocator::add_to_linker_instance::<
            StoreState,
            HasSelf<_>,
        >(instance, StoreState::host),
        HostInterface::CapabilityQuery => {
            // On its own state: a query needs nothing else of the host's.
            capability_query::add_to_linker_instance::<StoreState, HasSelf<_>>(
                instance,
                |state| &mut state.host.capabilities,
            )?;
            direct::shadow_capabilities(instance)
        }
    }
}

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

    /// `component` with a flow node's own limits over its own (a flow
    /// file's node `fuel_budget` and `max_memory`); `component` as it is
    /// when the node sets none. A backend without per-component limits
    /// refuses any that is set.
    fn with_node_limits(
        &self,
        component: &Self::Component,
        limits: &NodeLimits,
    ) -> Result<Self::Component> {
        if !limits.is_set() {
            return Ok(component.clone());
        }
        Err(Error::Config(format!(
            "this engine has no per-component limits ({limits:?} asked)"
        )))
    }
}

/// The wasmtime backend.
pub struct WasmtimeEngine {
    engine: wasmtime::Engine,
    linker: Linker<StoreState>,
    /// Interfaces linked by the user (`with_host_imports`).
    custom_imports: Vec<String>,
    /// The host states registered by `with_host_imports`.
    extensions: Arc<[ExtensionSlot]>,
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
        add: impl FnOnce(&mut HostImports<'_>) -> wasmtime::Result<()>,
    ) -> Result<WasmtimeEngine> {
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            // Metered only where fuel is configured: instrumentation costs
            // compute-bound guests ~25-35 % (issue 22), epochs much less.
            .consume_fuel(config.metered())
            .epoch_interruption(true)
            .max_wasm_stack(config.max_stack_bytes)
            // An async call's fiber holds the wasm stack and the host's frames
            // above it (wasmtime refuses a wasm stack larger than the fiber's).
            .async_stack_size(config.max_stack_bytes + stacks::HOST_HEADROOM_BYTES);
        if config.density == InstanceDensity::Dense {
            // Explicit bounds checks instead of reservations and guards;
            // fiber stacks whose mappings merge (see `stacks`).
            // No growth reservation either: a memory that grows is moved.
            wasm.memory_reservation(0)
                .memory_reservation_for_growth(0)
                .memory_guard_size(0)
                .guard_before_linear_memory(false)
                .with_host_stack(Arc::new(stacks::MergeableStacks));
        }
        if let Allocation::Pooling { max_instances } = config.allocation {
            check_map_budget(max_instances, config.density)?;
            let memory_bytes = config.limits.max_memory_bytes.next_multiple_of(65_536);
            // Slots sized by the memory limit, not by 4 GiB reservations:
            // the pool's address space grows with what instances may use.
            // (A pool needs each slot to reserve the largest memory, so this
            // also holds for `Dense`, whose slots then have no guard.)
            wasm.memory_reservation(memory_bytes);
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
        linker.allow_shadowing(true);
        for (name, kind) in [
            (TYPES, HostInterface::Types),
            (BUFFER_ALLOCATOR, HostInterface::BufferAllocator),
            (CAPABILITY_QUERY, HostInterface::CapabilityQuery),
        ] {
            link_contract(&mut linker.instance(name).map_err(link)?, kind).map_err(link)?;
        }
        linker.allow_shadowing(false);
        // Async WASI: a guest waiting on a clock or stream yields instead of
        // blocking a thread (sync calls drive it to their deadline).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        let mut imports = HostImports {
            linker: &mut linker,
            states: Vec::new(),
        };
        add(&mut imports).map_err(link)?;
        let extensions = imports.states.into();

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
            extensions,
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
        // The direct functions shadow the generated ones, as in `new`.
        linker.allow_shadowing(true);
        for (import, kind) in aliases {
            let link = |e: wasmtime::Error| {
                Error::instantiate_by(name, &format!("serving import `{import}`: "), e)
            };
            let mut instance = linker.instance(&import).map_err(link)?;
            link_contract(&mut instance, kind).map_err(link)?;
        }
        Ok(std::borrow::Cow::Owned(linker))
    }

    /// The engine's runtime for WASI's host futures, made on first use.
    fn wasi_runtime(&self, name: &str) -> Result<Arc<WasiRuntime>> {
        if let Some(runtime) = self.wasi_runtime.get() {
            return Ok(runtime.clone());
        }
        let runtime = WasiRuntime::new().map_err(|e| {
            Error::instantiate(
                name,
                format!("cannot start the WASI runtime: {e}"),
                Some(e.into()),
            )
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
                if let Some(detail) = not_webassembly(bytes) {
                    return Err(Error::compile(name, detail, None));
                }
                let component = Component::new(&self.engine, bytes)
                    .map_err(|e| Error::compile(name, format!("{e:#}"), Some(e.into())))?;
                if let Some(disk) = &self.disk {
                    let artifact = component.serialize().map_err(|e| Error::Cache {
                        path: self.config.cache_dir.clone().unwrap_or_default(),
                        detail: format!("{e:#}"),
                        source: Some(e.into()),
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
        let instantiate_error = |e: wasmtime::Error| Error::instantiate_by(name, "", e);
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
                extensions: self.extensions.clone(),
                metered: self.config.metered(),
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

    fn with_node_limits(
        &self,
        component: &CompiledComponent,
        limits: &NodeLimits,
    ) -> Result<CompiledComponent> {
        if !limits.is_set() {
            return Ok(component.clone());
        }
        let own = component.limits();
        component.with_limits(Limits {
            fuel_per_call: limits.fuel_per_call.or(own.fuel_per_call),
            max_memory_bytes: limits.max_memory_bytes.unwrap_or(own.max_memory_bytes),
            ..own.clone()
        })
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
    let substituted = linker
        .substituted_component_type(component)
        .map_err(|e| Error::instantiate_by(name, "", e))?;
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

/// What `bytes` are not, when they are neither binary WebAssembly nor text
/// (WAT): said in one line. (The parser's own error for a wrong magic
/// number lists the expected and found bytes one per line.)
fn not_webassembly(bytes: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"\0asm";
    // Text is left to the WAT parser only when it looks like WAT (a form or
    // a comment first), so a stray text file still gets the one-line answer.
    let looks_like_wat = std::str::from_utf8(bytes).is_ok_and(|text| {
        let text = text.trim_start();
        text.starts_with('(') || text.starts_with(";;")
    });
    if bytes.starts_with(MAGIC) || looks_like_wat {
        return None;
    }
    if bytes.is_empty() {
        return Some("not a WebAssembly file: it is empty".into());
    }
    let hex = |bytes: &[u8]| {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(format!(
        "not a WebAssembly file: it starts with {}, WebAssembly with {} (`\\0asm`)",
        hex(&bytes[..bytes.len().min(4)]),
        hex(MAGIC)
    ))
}
