//! What an instance's wasmtime store holds, and the store-level limits:
//! the pooled memory/table limiter, WASI's context, and the epoch-deadline
//! policy that ends calls at their deadline and time-slices async calls.

use std::any::{Any, TypeId};

use wasmtime::component::Linker;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::config::{Limits, WasiGrants};
use crate::host::{HostState, HostView};

/// What an instance's store holds: the host's contract state, the memory
/// limiter, the WASI context of components that import WASI, and the state
/// of host interfaces linked with
/// [`WasmtimeEngine::with_host_imports`](crate::WasmtimeEngine::with_host_imports).
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// let mut instance = engine.instantiate(&upper)?;
/// let state = instance.store_state();
/// assert_eq!(state.host().budget_in_use(), 0);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
pub struct StoreState {
    pub(crate) host: HostState,
    pub(crate) limiter: InstanceLimiter,
    pub(crate) wasi: Option<WasiCtx>,
    /// One state per host state registered with the engine, in order.
    pub(crate) extensions: Vec<(TypeId, Box<dyn Any + Send>)>,
    pub(crate) clock: CallClock,
}

impl std::fmt::Debug for StoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreState")
            .field("host", &self.host)
            .field("extensions", &self.extensions.len())
            .finish_non_exhaustive()
    }
}

impl StoreState {
    pub(crate) fn new(
        host: HostState,
        limits: &Limits,
        wasi: Option<WasiCtx>,
        epoch: Epoch,
        extensions: &[ExtensionSlot],
    ) -> StoreState {
        StoreState {
            host,
            limiter: InstanceLimiter::new(limits),
            wasi,
            extensions: extensions
                .iter()
                .map(|slot| (slot.type_id, (slot.make)()))
                .collect(),
            clock: CallClock::new(epoch),
        }
    }

    /// The contract's host state (used by the linker's host functions).
    pub fn host(&mut self) -> &mut HostState {
        &mut self.host
    }

    /// This instance's state of type `T` for a host interface of your own,
    /// registered with [`HostImports::state`] (each instance gets its own
    /// `T::default()` when it is made). Pass `|state| state.extension::<T>()`
    /// as the getter of generated `add_to_linker` functions.
    ///
    /// # Panics
    ///
    /// When `T` was not registered: a getter of the wrong type would
    /// otherwise serve a state nobody else sees. (A host programming error,
    /// found at the first call; no guest can cause it.)
    pub fn extension<T: Send + 'static>(&mut self) -> &mut T {
        let wanted = TypeId::of::<T>();
        // As many entries as registered states (typically one): the first
        // comparison finds it.
        match self.extensions.iter_mut().find(|(id, _)| *id == wanted) {
            Some((_, state)) => state
                .downcast_mut::<T>()
                .expect("the entry for `T`'s TypeId holds a `T`"),
            None => panic!(
                "host state `{}` was not registered: call `imports.state::<{0}>()` in \
                 WasmtimeEngine::with_host_imports",
                std::any::type_name::<T>()
            ),
        }
    }
}

/// A host state type registered once per engine: every instance gets its
/// own, made by `make` when the instance is.
#[derive(Clone, Copy)]
pub(crate) struct ExtensionSlot {
    type_id: TypeId,
    make: fn() -> Box<dyn Any + Send>,
}

/// What [`WasmtimeEngine::with_host_imports`](crate::WasmtimeEngine::with_host_imports)
/// gives its `add`: the linker to add host interfaces to, and the
/// registration of the per-instance state they keep.
///
/// ```
/// use torvyn_engine::{EngineConfig, StoreState, WasmEngine, WasmtimeEngine};
///
/// /// Per-instance state of a host interface of your own.
/// #[derive(Default)]
/// struct Counter {
///     calls: u32,
/// }
///
/// let engine = WasmtimeEngine::with_host_imports(
///     EngineConfig::builder().build()?,
///     &["acme:count/counter"],
///     |imports| {
///         imports.state::<Counter>();
///         // Usually the generated `add_to_linker` of bindings made by torvyn-build.
///         let mut counter = imports.linker().instance("acme:count/counter")?;
///         counter.func_wrap("next", |mut store: torvyn_engine::wasmtime::StoreContextMut<'_, StoreState>, (): ()| {
///             let counter = store.data_mut().extension::<Counter>();
///             counter.calls += 1;
///             Ok((counter.calls,))
///         })?;
///         Ok(())
///     },
/// )?;
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// let mut instance = engine.instantiate(&upper)?;
/// assert_eq!(instance.store_state().extension::<Counter>().calls, 0);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
pub struct HostImports<'a> {
    pub(crate) linker: &'a mut Linker<StoreState>,
    pub(crate) states: Vec<ExtensionSlot>,
}

impl std::fmt::Debug for HostImports<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostImports")
            .field("states", &self.states.len())
            .finish_non_exhaustive()
    }
}

impl HostImports<'_> {
    /// The linker (for the `add_to_linker` of generated bindings).
    pub fn linker(&mut self) -> &mut Linker<StoreState> {
        self.linker
    }

    /// Gives every instance its own `T::default()`, reached with
    /// [`StoreState::extension::<T>`](StoreState::extension). Registering
    /// a type twice keeps one state.
    pub fn state<T: Default + Send + 'static>(&mut self) -> &mut Self {
        let type_id = TypeId::of::<T>();
        if !self.states.iter().any(|slot| slot.type_id == type_id) {
            self.states.push(ExtensionSlot {
                type_id,
                make: || Box::new(T::default()),
            });
        }
        self
    }
}

impl HostView for StoreState {
    fn host(&mut self) -> &mut HostState {
        &mut self.host
    }

    fn host_ref(&self) -> &HostState {
        &self.host
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            // Only components that import WASI reach here, and they got a context.
            ctx: self
                .wasi
                .get_or_insert_with(|| WasiCtxBuilder::new().build()),
            table: self.host.table_mut(),
        }
    }
}

/// A WASI context granting exactly `grants`.
pub(crate) fn wasi_context(grants: &WasiGrants) -> wasmtime::Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    builder.envs(&grants.env);
    if grants.inherit_stdio {
        builder.inherit_stdio();
    }
    for (host, guest, read_only) in &grants.preopens {
        let perms = if *read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder.preopened_dir(host, guest, perms)?;
    }
    Ok(builder.build())
}

/// Limits what one instance may create, over all of its core modules: the
/// bytes of all its linear memories together, the elements of all its
/// tables together, and how many core instances, memories and tables it
/// has. Remembers the last refusal, so a trap that follows in the same call
/// is reported as a memory limit.
pub(crate) struct InstanceLimiter {
    memory: Pool,
    tables: Pool,
    max_core_instances: usize,
    max_memories: usize,
    max_tables: usize,
    pub(crate) refused: Option<String>,
}

/// What all the parts of one kind (memories, tables) hold together.
struct Pool {
    used: usize,
    max: usize,
}

impl Pool {
    /// Grows one part from `current` to `desired` if the pool stays within
    /// its maximum; otherwise the total it would have reached.
    fn grow(&mut self, current: usize, desired: usize) -> Result<(), usize> {
        let grown = self
            .used
            .saturating_sub(current)
            .saturating_add(desired.max(current));
        if grown > self.max {
            return Err(grown);
        }
        self.used = grown;
        Ok(())
    }
}

impl InstanceLimiter {
    fn new(limits: &Limits) -> InstanceLimiter {
        InstanceLimiter {
            memory: Pool {
                used: 0,
                max: usize::try_from(limits.max_memory_bytes).unwrap_or(usize::MAX),
            },
            tables: Pool {
                used: 0,
                max: limits.max_table_elements,
            },
            max_core_instances: limits.max_core_instances,
            max_memories: limits.max_memories,
            max_tables: limits.max_tables,
            refused: None,
        }
    }

    /// Bytes of linear memory the instance has, over all its memories.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.memory.used
    }

    /// Notes a refused growth; `false`, the answer wasmtime gets.
    fn refuse(&mut self, growth: &str, unit: &str, parts: &str, total: usize, max: usize) -> bool {
        self.refused = Some(format!(
            "{growth} {unit} refused: the instance's {parts} would hold {total} {unit}, limit {max}"
        ));
        false
    }
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(match self.memory.grow(current, desired) {
            Ok(()) => true,
            Err(total) => {
                let growth = format!("linear memory growth from {current} to {desired}");
                self.refuse(&growth, "bytes", "memories", total, self.memory.max)
            }
        })
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(match self.tables.grow(current, desired) {
            Ok(()) => true,
            Err(total) => {
                let growth = format!("table growth from {current} to {desired}");
                self.refuse(&growth, "elements", "tables", total, self.tables.max)
            }
        })
    }

    fn instances(&self) -> usize {
        self.max_core_instances
    }

    fn memories(&self) -> usize {
        self.max_memories
    }

    fn tables(&self) -> usize {
        self.max_tables
    }
}

/// Epoch ticks that never run out. wasmtime adds the deadline to the current
/// epoch without saturating, so `u64::MAX` would wrap once the engine's
/// ticker has advanced the epoch (another component may have a deadline).
pub const NO_DEADLINE: u64 = u64::MAX / 2;

/// Epoch ticks for a duration, rounded up, at least one.
pub(crate) fn ticks(duration: std::time::Duration, tick: std::time::Duration) -> u64 {
    let ticks = duration.as_nanos().div_ceil(tick.as_nanos().max(1));
    u64::try_from(ticks)
        .unwrap_or(NO_DEADLINE)
        .clamp(1, NO_DEADLINE)
}

/// The engine's epoch as its ticker counts it: wasmtime keeps its own
/// counter private, so the ticker advances this one alongside.
pub(crate) type Epoch = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// The current call's place on the epoch clock: when its deadline passes
/// and whether it may yield to its executor.
#[derive(Debug, Default)]
pub(crate) struct CallClock {
    epoch: Epoch,
    /// The epoch at which the current async call's deadline passes.
    deadline: u64,
    /// Ticks per time slice of an async call.
    slice_ticks: u64,
    /// Whether the call runs on a fiber and may yield.
    yielding: bool,
}

impl CallClock {
    pub(crate) fn new(epoch: Epoch) -> CallClock {
        CallClock {
            epoch,
            ..CallClock::default()
        }
    }

    /// Arms the epoch deadline for a call: a sync call runs to its deadline
    /// in one stretch; an async call yields every slice until then (its
    /// deadline is wall-clock time, counted while it waits to be polled too).
    pub(crate) fn start(
        store: &mut Store<StoreState>,
        call_ticks: u64,
        slice_ticks: u64,
        yielding: bool,
    ) {
        let clock = &mut store.data_mut().clock;
        clock.yielding = yielding;
        let armed = if yielding {
            let now = clock.epoch.load(std::sync::atomic::Ordering::Relaxed);
            clock.deadline = now.saturating_add(call_ticks);
            clock.slice_ticks = slice_ticks;
            slice_ticks.min(call_ticks)
        } else {
            call_ticks
        };
        store.set_epoch_deadline(armed);
    }

    /// Installs the policy run when a call reaches its epoch deadline.
    pub(crate) fn install(store: &mut Store<StoreState>) {
        store.epoch_deadline_callback(|store| {
            let clock = &store.data().clock;
            let now = clock.epoch.load(std::sync::atomic::Ordering::Relaxed);
            if !clock.yielding || now >= clock.deadline {
                // Reported as `Trap::Interrupt`: the call's deadline passed.
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Yield(
                clock.slice_ticks.min(clock.deadline - now),
            ))
        });
    }
}
