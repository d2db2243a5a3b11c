//! [`WasmtimeInstance`]: creation (store, limits, WASI, the lent input and
//! flow context), what it tells of itself, and the steps every call shares
//! (its output checked, a guest error or fault named, poisoning).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use wasmtime::component::{Instance, Resource};
use wasmtime::Store;

use crate::bindings::types::{OutputElement, ProcessError};
use crate::component::CompiledComponent;
use crate::config::EngineConfig;
use crate::dynamic::DynamicExport;
use crate::error::{Error, GuestError, Result};
use crate::exports::Exports;
use crate::gate::{block_on, enter, run_ready, Blocking, Gate, InRuntime, Yielding};
use crate::host::{
    cut_guest_message, Buffer, EngineTotals, FlowContext, HostState, MAX_CONTENT_TYPE_BYTES,
};
use crate::invoker::{Element, ElementMeta};
use crate::store::{ticks, wasi_context, CallClock, StoreState, NO_DEADLINE};

use super::call::{Call, CallState};
use super::failure::{classify, site, PART_COUNT_TOO_HIGH};
use super::renewal::Renewal;

/// A live instance of a compiled component.
///
/// # Async, blocking, cancellation
///
/// - The sync methods ([`ComponentInvoker`](crate::ComponentInvoker)) block the calling thread for
///   the whole guest call (at most the call deadline).
/// - The async methods ([`AsyncComponentInvoker`](crate::AsyncComponentInvoker)) run the guest on a fiber
///   that yields to the executor every time slice
///   ([`EngineConfigBuilder::time_slice`](crate::EngineConfigBuilder::time_slice))
///   and wherever a WASI import waits, so many instances share few threads;
///   the fuel and deadline limits end them with the same errors as the sync
///   path.
/// - Dropping an async call's future before it completes (a
///   `tokio::time::timeout`, an aborted task) cancels the call: the guest is
///   unwound where it yielded, the instance is poisoned
///   ([`Error::Poisoned`] says it was cancelled) and every buffer its guest
///   held is released at once. Instantiate again to go on.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::{ComponentInvoker, Element, ProcessOutcome};
///
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// let mut instance = engine.instantiate(&upper)?;
/// let out = instance.process(&Element::new(7, "text/plain", "abc"))?;
/// assert_eq!(out, ProcessOutcome::Emit(Element::new(7, "text/plain", "ABC")));
/// assert_eq!(instance.host().budget_in_use(), 0); // the guest holds no buffer
/// assert!(instance.poisoned().is_none());
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
pub struct WasmtimeInstance {
    pub(super) component: CompiledComponent,
    pub(super) store: Store<StoreState>,
    pub(crate) instance: Instance,
    pub(super) exports: Exports,
    /// Host-owned buffer lent (borrowed) to the guest as each input payload.
    pub(super) input: Resource<Buffer>,
    /// Host-owned flow context lent with each element.
    pub(super) flow: Resource<FlowContext>,
    pub(super) state: CallState,
    /// What making it again takes, and how often it was (recycling).
    pub(super) renewal: Renewal,
}

impl std::fmt::Debug for WasmtimeInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmtimeInstance")
            .field("component", &self.component.name())
            .field("poisoned", &self.state.poisoned)
            .finish_non_exhaustive()
    }
}

/// Fuel a store gets when its component has no fuel limit on an engine
/// that meters (another component may have one): never used up.
const UNMETERED_FUEL: u64 = u64::MAX;

impl WasmtimeInstance {
    /// A fresh instance, instantiated on the calling thread.
    pub(crate) fn new(
        component: CompiledComponent,
        config: Arc<EngineConfig>,
        totals: Arc<EngineTotals>,
    ) -> Result<Self> {
        if component.inner.wasi_runtime.is_some() {
            // Linked with async WASI: the async instantiation, driven here.
            return block_on(Self::new_async(component, config, totals));
        }
        let (store, state) = Self::store(&component, &config, totals.clone())?;
        let renewal = Renewal::new(config, totals);
        run_ready(Self::create::<Blocking>(component, store, state, renewal))
    }

    /// A fresh instance, instantiated on a fiber: a long start function
    /// yields like any async call.
    pub(crate) async fn new_async(
        component: CompiledComponent,
        config: Arc<EngineConfig>,
        totals: Arc<EngineTotals>,
    ) -> Result<Self> {
        let (store, state) = Self::store(&component, &config, totals.clone())?;
        let renewal = Renewal::new(config, totals);
        let Some(runtime) = component.inner.wasi_runtime.clone() else {
            return Self::create::<Yielding>(component, store, state, renewal).await;
        };
        let deadline = deadline_of(&component);
        let name = component.name().to_string();
        let created = InRuntime::new(
            Self::create::<Yielding>(component, store, state, renewal),
            runtime.handle(),
            deadline,
        )
        .await;
        created.unwrap_or_else(|| {
            Err(Error::DeadlineExceeded {
                site: site(&name, "instantiate"),
            })
        })
    }

    /// The store for a new instance, with its limits in place.
    pub(super) fn store(
        component: &CompiledComponent,
        config: &EngineConfig,
        totals: Arc<EngineTotals>,
    ) -> Result<(Store<StoreState>, CallState)> {
        let limits = component.limits();
        let host = HostState::new(
            limits.buffer_budget_bytes,
            config.capabilities.clone(),
            totals,
        );
        let wasi = match component.inner.imports_wasi {
            true => Some(wasi_context(&config.wasi).map_err(|e| {
                Error::instantiate_by(component.name(), "making its WASI context", e)
            })?),
            false => None,
        };
        let mut store = Store::new(
            component.inner.pre.engine(),
            StoreState::new(
                host,
                limits,
                wasi,
                component.inner.epoch.clone(),
                &component.inner.extensions,
            ),
        );
        store.limiter(|state| &mut state.limiter);
        store.set_max_component_handles(limits.max_handles);
        store.set_hostcall_fuel(limits.max_transfer_bytes);
        CallClock::install(&mut store);
        let state = CallState {
            call_ticks: match limits.call_deadline {
                Some(deadline) => ticks(deadline, config.epoch_tick),
                None => NO_DEADLINE,
            },
            slice_ticks: ticks(config.time_slice, config.epoch_tick),
            poisoned: None,
            fuel_consumed: 0,
            fuel_total: 0,
        };
        Ok((store, state))
    }

    /// Instantiates (start functions run under the same limits as any
    /// call), binds the exports and makes the lending handles.
    pub(super) async fn create<G: Gate>(
        component: CompiledComponent,
        mut store: Store<StoreState>,
        state: CallState,
        renewal: Renewal,
    ) -> Result<Self> {
        let name = component.name().to_string();
        let fail = |e: wasmtime::Error| Error::instantiate_by(&name, "", e);
        if component.inner.metered {
            let fuel = component.limits().fuel_per_call.unwrap_or(UNMETERED_FUEL);
            store.set_fuel(fuel).map_err(fail)?;
        }
        CallClock::start(&mut store, state.call_ticks, state.slice_ticks, G::YIELDING);
        let pre = &component.inner.pre;
        let instance = match enter!(G, pre, instantiate / instantiate_async(&mut store)) {
            Ok(instance) => instance,
            Err(error) => {
                let limits = component.limits();
                // A trap while instantiating (a start function, a part
                // count over its limit) is an instantiation error, the
                // trap (with its code) kept as its source.
                let error = classify(&mut store, limits, site(&name, "instantiate"), error);
                let Error::Trap { trap, .. } = &error else {
                    return Err(error);
                };
                // The trap's own text is the source's; the detail names the
                // limit it hit, when it was one.
                let mut detail = String::new();
                if trap.contains(PART_COUNT_TOO_HIGH) {
                    // wasmtime names the part ("instance", "memory",
                    // "table"); the limit is named after it.
                    let limit = [
                        (
                            "instance count",
                            "max_core_instances",
                            limits.max_core_instances,
                        ),
                        ("memory count", "max_memories", limits.max_memories),
                        ("table count", "max_tables", limits.max_tables),
                    ]
                    .into_iter()
                    .find(|(part, _, _)| trap.contains(part));
                    detail.push_str(&match limit {
                        Some((_, name, value)) => format!("over its limit {name} = {value}"),
                        None => format!(
                            "over its limits (max_core_instances = {}, max_memories = {}, max_tables = {})",
                            limits.max_core_instances, limits.max_memories, limits.max_tables
                        ),
                    });
                }
                return Err(Error::instantiate(&name, detail, Some(Box::new(error))));
            }
        };
        let typed = component
            .inner
            .typed
            .load(&mut store, &instance)
            .map_err(|e| Error::ContractMismatch {
                component: name.clone(),
                detail: format!("{e:#}"),
            })?;
        let host = store.data_mut().host();
        let input = host.push_buffer(Bytes::new()).map_err(fail)?;
        let flow = host.push_flow(FlowContext::default()).map_err(fail)?;
        let dynamic = component
            .inner
            .dynamic
            .iter()
            .map(|plan| DynamicExport::bind(plan, &mut store, &instance, input.rep(), flow.rep()))
            .collect::<wasmtime::Result<Vec<_>>>()
            .map_err(fail)?;
        Ok(WasmtimeInstance {
            component,
            store,
            instance,
            exports: Exports { typed, dynamic },
            input,
            flow,
            state,
            renewal,
        })
    }

    /// The compiled component this instance came from.
    pub fn component(&self) -> &CompiledComponent {
        &self.component
    }

    /// The host state: resource table, buffer budget, copy counters.
    pub fn host(&mut self) -> &mut HostState {
        self.store.data_mut().host()
    }

    /// The store's state, including host-interface extensions.
    pub fn store_state(&mut self) -> &mut StoreState {
        self.store.data_mut()
    }

    pub(crate) fn store_mut(&mut self) -> &mut Store<StoreState> {
        &mut self.store
    }

    /// Resource-table entries held by the guest: the table minus the input
    /// buffer and flow context the host keeps for lending.
    pub fn guest_resources(&mut self) -> usize {
        self.host().live_resources() - 2
    }

    /// Bytes of linear memory the instance has, over all its memories.
    pub fn memory_bytes(&self) -> usize {
        self.store.data().limiter.memory_bytes()
    }

    /// Fuel used by the last call, the host's copying included (0 when the
    /// component has no fuel limit).
    pub fn fuel_consumed(&self) -> u64 {
        self.state.fuel_consumed
    }

    /// Why the instance refuses calls, if an earlier call poisoned it.
    pub fn poisoned(&self) -> Option<&str> {
        self.state.poisoned.as_deref()
    }

    /// Sets the flow context lent to the guest with every following element.
    pub fn set_flow(&mut self, flow: FlowContext) -> Result<()> {
        let handle = Resource::new_borrow(self.flow.rep());
        self.store
            .data_mut()
            .host()
            .set_flow(&handle, flow)
            .map_err(|e| Error::instantiate_by(self.component.name(), "", e))
    }

    /// Opens the scope of one guest call: refuses a poisoned instance, sets
    /// the call's fuel and epoch clock, and lends `payload` as the input.
    pub(crate) fn begin<'a, G: Gate>(
        &'a mut self,
        function: &'a str,
        payload: Option<&Bytes>,
    ) -> Result<Call<'a>> {
        if self.state.poisoned.is_some() {
            return Err(self.refusal(function));
        }
        let limits = self.component.limits();
        let store = &mut self.store;
        // Cannot fail: a fuel limit exists only on a metering engine
        // (`build`, `with_limits`).
        if let Some(fuel) = limits.fuel_per_call {
            let _ = store.set_fuel(fuel);
        }
        let state = store.data_mut();
        state.limiter.refused = None;
        state.host.begin_call(limits.fuel_per_call);
        CallClock::start(
            store,
            self.state.call_ticks,
            self.state.slice_ticks,
            G::YIELDING,
        );
        let call = Call {
            function,
            component: &self.component,
            store,
            exports: &mut self.exports,
            state: &mut self.state,
            input: self.input.rep(),
            flow: self.flow.rep(),
            lent: payload.is_some(),
            open: true,
        };
        if let Some(payload) = payload {
            let input = Resource::<Buffer>::new_borrow(call.input);
            if let Err(e) = call
                .store
                .data_mut()
                .host()
                .set_buffer_bytes(&input, payload)
            {
                return Err(call.finish::<()>(Some(Err(e))).unwrap_err());
            }
        }
        Ok(call)
    }

    /// The refusal of a call on a poisoned instance. (Out of line and
    /// cold, as every failure path of a call: the hot path is then a few
    /// dense cache lines, which is what machines with smaller caches
    /// notice most.)
    #[cold]
    #[inline(never)]
    pub(super) fn refusal(&self, function: &str) -> Error {
        Error::Poisoned {
            site: site(self.component.name(), function),
            cause: self.state.poisoned.clone().unwrap_or_default(),
        }
    }

    /// Takes ownership of a guest's output element.
    pub(super) fn output(&mut self, function: &str, output: OutputElement) -> Result<Element> {
        let buffer = match self.store.data_mut().host().take_buffer(output.payload) {
            Ok(buffer) => buffer,
            Err(e) => return Err(self.fault(function, format!("{e:#}"))),
        };
        let (payload, buffer_content_type) = buffer.into_parts();
        let mut content_type = output.meta.content_type;
        if content_type.len() > MAX_CONTENT_TYPE_BYTES {
            return Err(self.content_type_too_long(function, content_type.len()));
        }
        if content_type.is_empty() {
            content_type = buffer_content_type;
        }
        Ok(Element {
            meta: ElementMeta {
                sequence: output.meta.sequence,
                timestamp_ns: output.meta.timestamp_ns,
                content_type,
                key: String::new(),
            },
            payload,
        })
    }

    #[cold]
    #[inline(never)]
    pub(super) fn content_type_too_long(&mut self, function: &str, bytes: usize) -> Error {
        self.fault(
            function,
            format!(
                "the output's content type is {bytes} bytes, longer than the {MAX_CONTENT_TYPE_BYTES}-byte limit"
            ),
        )
    }

    /// Poisons the instance for a contract violation found after the call.
    #[cold]
    #[inline(never)]
    pub(super) fn fault(&mut self, function: &str, trap: String) -> Error {
        let error = Error::Trap {
            site: site(self.component.name(), function),
            trap,
            code: None,
            backtrace: None,
        };
        self.poison_with(&error);
        error
    }

    #[cold]
    #[inline(never)]
    pub(super) fn poison_with(&mut self, error: &Error) {
        tracing::warn!(component = self.component.name(), %error, "instance poisoned");
        self.state.poisoned = Some(error.to_string());
        let (input, flow) = (self.input.rep(), self.flow.rep());
        self.store.data_mut().host.release_guest_held(input, flow);
    }

    /// Maps a guest's `process-error` (its text cut to a bounded length);
    /// `fatal` also retires the instance.
    #[cold]
    #[inline(never)]
    pub(super) fn guest_error(&mut self, function: &str, error: ProcessError) -> Error {
        let error = Error::Guest {
            site: site(self.component.name(), function),
            error: match error {
                ProcessError::InvalidInput(m) => GuestError::InvalidInput(cut_guest_message(m)),
                ProcessError::Unavailable(m) => GuestError::Unavailable(cut_guest_message(m)),
                ProcessError::Internal(m) => GuestError::Internal(cut_guest_message(m)),
                ProcessError::DeadlineExceeded => GuestError::DeadlineExceeded,
                ProcessError::Fatal(m) => GuestError::Fatal(cut_guest_message(m)),
            },
        };
        if let Error::Guest {
            error: GuestError::Fatal(_),
            ..
        } = &error
        {
            self.poison_with(&error);
        }
        error
    }

    /// A call the wall-clock deadline ended while the host awaited for the
    /// guest (a WASI timer, say), where epoch interruption cannot reach.
    #[cold]
    #[inline(never)]
    pub(super) fn deadline_passed(&mut self, function: &str) -> Error {
        let error = Error::DeadlineExceeded {
            site: site(self.component.name(), function),
        };
        self.poison_with(&error);
        error
    }

    /// Brings the engine's totals up to this instance's charge, once a
    /// contract function has returned and taken its outputs: a payload the
    /// guest made in the call and the host took after it is never seen by
    /// the shared counters (two atomic updates an output saved).
    #[inline]
    pub(super) fn settle(&mut self) {
        self.store.data_mut().host.publish_totals();
    }

    /// Whether this async call should yield to its executor first.
    #[inline]
    pub(super) fn tick_passed(&self) -> bool {
        crate::gate::turn_over(
            self.component
                .inner
                .epoch
                .load(std::sync::atomic::Ordering::Relaxed),
            self.state.slice_ticks,
        )
    }
}

/// When a call starting now must end, if the component has a deadline.
pub(super) fn deadline_of(component: &CompiledComponent) -> Option<Instant> {
    component
        .limits()
        .call_deadline
        .and_then(|deadline| Instant::now().checked_add(deadline))
}
