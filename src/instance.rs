//! A live wasmtime instance and its typed invoker: every call goes through
//! the generated `TypedFunc` exports, with no `Val` marshaling.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::{InstancePre, Resource};
use wasmtime::{ResourceLimiter, Store, Trap};

use crate::bindings::types::{
    BackpressureSignal, ElementMetaParam, OutputElement, ProcessError, ProcessResult, StreamElement,
};
use crate::bindings::{
    content_filter, content_router, data_sink, data_source, managed_transform, stream_aggregator,
    transform,
};
use crate::config::EngineConfig;
use crate::engine::CompiledComponent;
use crate::error::{CallSite, Error, GuestError, Result};
use crate::host::{Buffer, EngineTotals, FlowContext, HostState};
use crate::interfaces::{CallPath, ExportInfo, Interface};
use crate::invoker::{Backpressure, ComponentInvoker, Element, ElementMeta, ProcessOutcome};

use content_filter::exports::torvyn::filtering::filter;
use content_router::exports::torvyn::filtering::router;
use data_sink::exports::torvyn::streaming::sink;
use data_source::exports::torvyn::streaming::source;
use managed_transform::exports::torvyn::streaming::lifecycle;
use stream_aggregator::exports::torvyn::aggregation::aggregator;
use transform::exports::torvyn::streaming::processor;

/// What a store holds: the host's contract state and the memory limiter.
pub struct StoreState {
    host: HostState,
    limiter: MemoryLimiter,
}

impl StoreState {
    /// The contract's host state (used by the linker's host functions).
    pub(crate) fn host(&mut self) -> &mut HostState {
        &mut self.host
    }
}

/// Refuses linear-memory and table growth past the limits, and remembers
/// that it did, so a trap that follows is reported as a memory limit.
struct MemoryLimiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
    refused: Option<String>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.refused = Some(format!(
                "linear memory growth from {current} to {desired} bytes refused, limit {}",
                self.max_memory_bytes
            ));
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            self.refused = Some(format!(
                "table growth from {current} to {desired} elements refused, limit {}",
                self.max_table_elements
            ));
            return Ok(false);
        }
        Ok(true)
    }
}

/// Declares the typed export indices (looked up once per component) and the
/// loaded typed exports (bound once per instance), one field per interface.
macro_rules! typed_exports {
    ($($field:ident: $module:ident = $interface:expr,)*) => {
        /// Export indices resolved at pre-instantiation, per interface.
        #[derive(Clone, Default)]
        pub(crate) struct TypedIndices {
            $($field: Option<$module::GuestIndices>,)*
        }

        /// Typed exports bound to one instance.
        #[derive(Default)]
        struct TypedExports {
            $($field: Option<$module::Guest>,)*
        }

        impl TypedIndices {
            /// Looks up the typed exports of every interface that takes the typed path.
            pub(crate) fn new(
                name: &str,
                pre: &InstancePre<StoreState>,
                exports: &[ExportInfo],
            ) -> Result<TypedIndices> {
                let typed = |interface: Interface| {
                    exports
                        .iter()
                        .any(|e| e.interface == Some(interface) && e.path == CallPath::Typed)
                };
                let mismatch = |e: wasmtime::Error| Error::ContractMismatch {
                    component: name.to_string(),
                    detail: format!("{e:#}"),
                };
                Ok(TypedIndices {
                    $($field: if typed($interface) {
                        Some($module::GuestIndices::new(pre).map_err(mismatch)?)
                    } else {
                        None
                    },)*
                })
            }

            /// Binds the typed exports to an instance; this type-checks each
            /// function against the contract.
            fn load(
                &self,
                store: &mut Store<StoreState>,
                instance: &wasmtime::component::Instance,
            ) -> wasmtime::Result<TypedExports> {
                Ok(TypedExports {
                    $($field: match &self.$field {
                        Some(indices) => Some(indices.load(&mut *store, instance)?),
                        None => None,
                    },)*
                })
            }
        }
    };
}

typed_exports! {
    lifecycle: lifecycle = Interface::Lifecycle,
    processor: processor = Interface::Processor,
    source: source = Interface::Source,
    sink: sink = Interface::Sink,
    filter: filter = Interface::Filter,
    router: router = Interface::Router,
    aggregator: aggregator = Interface::Aggregator,
}

/// A live instance of a compiled component.
pub struct WasmtimeInstance {
    component: CompiledComponent,
    store: Store<StoreState>,
    exports: TypedExports,
    /// Host-owned buffer lent (borrowed) to the guest as each input payload.
    input: Resource<Buffer>,
    /// Host-owned flow context lent with each element.
    flow: Resource<FlowContext>,
    /// Epoch ticks each call may run (`u64::MAX` without a deadline).
    call_ticks: u64,
    poisoned: Option<String>,
    fuel_consumed: u64,
}

impl std::fmt::Debug for WasmtimeInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmtimeInstance")
            .field("component", &self.component.name())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl WasmtimeInstance {
    pub(crate) fn new(
        component: CompiledComponent,
        config: &EngineConfig,
        totals: Arc<EngineTotals>,
    ) -> Result<Self> {
        let limits = component.limits().clone();
        let host = HostState::new(
            limits.buffer_budget_bytes,
            config.capabilities.clone(),
            totals,
        );
        let limiter = MemoryLimiter {
            max_memory_bytes: usize::try_from(limits.max_memory_bytes).unwrap_or(usize::MAX),
            max_table_elements: limits.max_table_elements,
            refused: None,
        };
        let pre = &component.inner.pre;
        let mut store = Store::new(pre.engine(), StoreState { host, limiter });
        store.limiter(|state| &mut state.limiter);
        let name = component.name().to_string();
        let fail = |detail: String| Error::Instantiate {
            component: name.clone(),
            detail,
        };
        // Start-up code runs under the same limits as any call.
        if let Some(fuel) = limits.fuel_per_call {
            store.set_fuel(fuel).map_err(|e| fail(format!("{e:#}")))?;
        }
        let call_ticks = match limits.call_deadline {
            Some(deadline) => ticks(deadline, config.epoch_tick),
            None => u64::MAX,
        };
        store.set_epoch_deadline(call_ticks);
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| fail(format!("{e:#}")))?;
        let exports = component
            .inner
            .typed
            .load(&mut store, &instance)
            .map_err(|e| Error::ContractMismatch {
                component: name.clone(),
                detail: format!("{e:#}"),
            })?;
        let host = store.data_mut().host();
        let input = host
            .push_buffer(Bytes::new())
            .map_err(|e| fail(format!("{e:#}")))?;
        let flow = host
            .push_flow(FlowContext::default())
            .map_err(|e| fail(format!("{e:#}")))?;
        Ok(WasmtimeInstance {
            component,
            store,
            exports,
            input,
            flow,
            call_ticks,
            poisoned: None,
            fuel_consumed: 0,
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

    /// Resource-table entries held by the guest: the table minus the input
    /// buffer and flow context the host keeps for lending.
    pub fn guest_resources(&mut self) -> usize {
        self.host().live_resources() - 2
    }

    /// Fuel used by the last call (0 when fuel metering is off).
    pub fn fuel_consumed(&self) -> u64 {
        self.fuel_consumed
    }

    /// Why the instance refuses calls, if an earlier call poisoned it.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// Sets the flow context lent to the guest with every following element.
    pub fn set_flow(&mut self, flow: FlowContext) -> Result<()> {
        let handle = Resource::new_borrow(self.flow.rep());
        self.store
            .data_mut()
            .host()
            .set_flow(&handle, flow)
            .map_err(|e| Error::Instantiate {
                component: self.component.name().to_string(),
                detail: format!("{e:#}"),
            })
    }

    fn site(&self, function: &str) -> CallSite {
        CallSite {
            component: self.component.name().to_string(),
            function: function.to_string(),
        }
    }

    /// Runs one guest call under the instance's limits and maps failures.
    fn call<R>(
        &mut self,
        function: &'static str,
        call: impl FnOnce(&TypedExports, &mut Store<StoreState>) -> Option<wasmtime::Result<R>>,
    ) -> Result<R> {
        if let Some(cause) = &self.poisoned {
            return Err(Error::Poisoned {
                site: self.site(function),
                cause: cause.clone(),
            });
        }
        let fuel = self.component.inner.limits.fuel_per_call;
        if let Some(fuel) = fuel {
            // Cannot fail: fuel metering is on whenever a fuel limit is set.
            let _ = self.store.set_fuel(fuel);
        }
        self.store.set_epoch_deadline(self.call_ticks);
        let result = call(&self.exports, &mut self.store);
        if let Some(fuel) = fuel {
            self.fuel_consumed = fuel - self.store.get_fuel().unwrap_or(0);
        }
        match result {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(self.poison(function, error)),
            None => Err(Error::NotExported {
                component: self.component.name().to_string(),
                interface: interface_of(function).to_string(),
            }),
        }
    }

    /// Classifies a failed call and marks the instance unusable.
    fn poison(&mut self, function: &str, error: wasmtime::Error) -> Error {
        let site = self.site(function);
        let refused = self.store.data_mut().limiter.refused.take();
        let error = match (error.downcast_ref::<Trap>(), refused) {
            (Some(Trap::OutOfFuel), _) => Error::FuelExhausted { site },
            (Some(Trap::Interrupt), _) => Error::DeadlineExceeded { site },
            (_, Some(detail)) => Error::MemoryLimit { site, detail },
            (Some(trap), None) => Error::Trap {
                site,
                trap: trap.to_string(),
            },
            (None, None) => Error::Trap {
                site,
                trap: format!("{error:#}"),
            },
        };
        self.poisoned = Some(error.to_string());
        error
    }

    /// Lends `element` to the guest for one call and runs `call` with it.
    fn with_element<R>(
        &mut self,
        function: &'static str,
        element: &Element,
        call: impl FnOnce(
            &TypedExports,
            &mut Store<StoreState>,
            StreamElement<'_>,
        ) -> Option<wasmtime::Result<R>>,
    ) -> Result<R> {
        let input = Resource::<Buffer>::new_borrow(self.input.rep());
        if let Err(e) = self
            .store
            .data_mut()
            .host()
            .set_buffer_bytes(&input, &element.payload)
        {
            return Err(self.poison(function, e));
        }
        let flow_rep = self.flow.rep();
        let result = self.call(function, |exports, store| {
            let param = StreamElement {
                meta: ElementMetaParam {
                    sequence: element.meta.sequence,
                    timestamp_ns: element.meta.timestamp_ns,
                    content_type: &element.meta.content_type,
                },
                payload: input,
                context: Resource::new_borrow(flow_rep),
            };
            call(exports, store, param)
        });
        // Release the caller's payload right away instead of at the next call.
        let input = Resource::<Buffer>::new_borrow(self.input.rep());
        let _ = self
            .store
            .data_mut()
            .host()
            .set_buffer_bytes(&input, &Bytes::new());
        result
    }

    /// Takes ownership of a guest's output element.
    fn output(&mut self, function: &'static str, output: OutputElement) -> Result<Element> {
        let buffer = self
            .store
            .data_mut()
            .host()
            .take_buffer(output.payload)
            .map_err(|e| self.poison(function, e))?;
        let mut content_type = output.meta.content_type;
        if content_type.is_empty() {
            content_type = buffer.content_type().to_string();
        }
        Ok(Element {
            meta: ElementMeta {
                sequence: output.meta.sequence,
                timestamp_ns: output.meta.timestamp_ns,
                content_type,
            },
            payload: buffer.bytes().clone(),
        })
    }

    /// Maps a guest's `process-error`; `fatal` also retires the instance.
    fn guest_error(&mut self, function: &str, error: ProcessError) -> Error {
        let error = Error::Guest {
            site: self.site(function),
            error: match error {
                ProcessError::InvalidInput(m) => GuestError::InvalidInput(m),
                ProcessError::Unavailable(m) => GuestError::Unavailable(m),
                ProcessError::Internal(m) => GuestError::Internal(m),
                ProcessError::DeadlineExceeded => GuestError::DeadlineExceeded,
                ProcessError::Fatal(m) => GuestError::Fatal(m),
            },
        };
        if let Error::Guest {
            error: GuestError::Fatal(_),
            ..
        } = &error
        {
            self.poisoned = Some(error.to_string());
        }
        error
    }
}

/// Epoch ticks for a deadline, rounded up, at least one.
fn ticks(deadline: std::time::Duration, tick: std::time::Duration) -> u64 {
    let ticks = deadline.as_nanos().div_ceil(tick.as_nanos().max(1));
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

/// The interface a function name belongs to, for `NotExported` errors.
fn interface_of(function: &str) -> Interface {
    match function {
        "init" | "teardown" => Interface::Lifecycle,
        "process" => Interface::Processor,
        "pull" | "notify-backpressure" => Interface::Source,
        "push" | "complete" => Interface::Sink,
        "evaluate" => Interface::Filter,
        "route" => Interface::Router,
        _ => Interface::Aggregator,
    }
}

fn signal(signal: BackpressureSignal) -> Backpressure {
    match signal {
        BackpressureSignal::Ready => Backpressure::Ready,
        BackpressureSignal::Pause => Backpressure::Pause,
    }
}

impl ComponentInvoker for WasmtimeInstance {
    fn name(&self) -> &str {
        self.component.name()
    }

    fn exports(&self) -> &[ExportInfo] {
        self.component.exports()
    }

    fn has(&self, interface: Interface) -> bool {
        let e = &self.exports;
        match interface {
            Interface::Lifecycle => e.lifecycle.is_some(),
            Interface::Processor => e.processor.is_some(),
            Interface::Source => e.source.is_some(),
            Interface::Sink => e.sink.is_some(),
            Interface::Filter => e.filter.is_some(),
            Interface::Router => e.router.is_some(),
            Interface::Aggregator => e.aggregator.is_some(),
        }
    }

    fn init(&mut self, config: &str) -> Result<()> {
        let result = self.call("init", |e, store| {
            Some(e.lifecycle.as_ref()?.call_init(store, config))
        })?;
        result.map_err(|error| self.guest_error("init", error))
    }

    fn teardown(&mut self) -> Result<()> {
        self.call("teardown", |e, store| {
            Some(e.lifecycle.as_ref()?.call_teardown(store))
        })
    }

    fn process(&mut self, element: &Element) -> Result<ProcessOutcome> {
        let result = self.with_element("process", element, |e, store, input| {
            Some(e.processor.as_ref()?.call_process(store, input))
        })?;
        match result {
            Ok(ProcessResult::Drop) => Ok(ProcessOutcome::Drop),
            Ok(ProcessResult::Emit(output)) => {
                Ok(ProcessOutcome::Emit(self.output("process", output)?))
            }
            Err(error) => Err(self.guest_error("process", error)),
        }
    }

    fn pull(&mut self) -> Result<Option<Element>> {
        let result = self.call("pull", |e, store| Some(e.source.as_ref()?.call_pull(store)))?;
        match result {
            Ok(Some(output)) => Ok(Some(self.output("pull", output)?)),
            Ok(None) => Ok(None),
            Err(error) => Err(self.guest_error("pull", error)),
        }
    }

    fn notify_backpressure(&mut self, signal: Backpressure) -> Result<()> {
        let signal = match signal {
            Backpressure::Ready => BackpressureSignal::Ready,
            Backpressure::Pause => BackpressureSignal::Pause,
        };
        self.call("notify-backpressure", |e, store| {
            Some(e.source.as_ref()?.call_notify_backpressure(store, signal))
        })
    }

    fn push(&mut self, element: &Element) -> Result<Backpressure> {
        let result = self.with_element("push", element, |e, store, input| {
            Some(e.sink.as_ref()?.call_push(store, input))
        })?;
        result
            .map(signal)
            .map_err(|error| self.guest_error("push", error))
    }

    fn complete(&mut self) -> Result<()> {
        let result = self.call("complete", |e, store| {
            Some(e.sink.as_ref()?.call_complete(store))
        })?;
        result.map_err(|error| self.guest_error("complete", error))
    }

    fn evaluate(&mut self, element: &Element) -> Result<bool> {
        let result = self.with_element("evaluate", element, |e, store, input| {
            Some(e.filter.as_ref()?.call_evaluate(store, input))
        })?;
        result.map_err(|error| self.guest_error("evaluate", error))
    }

    fn route(&mut self, element: &Element) -> Result<Vec<String>> {
        let result = self.with_element("route", element, |e, store, input| {
            Some(e.router.as_ref()?.call_route(store, input))
        })?;
        result.map_err(|error| self.guest_error("route", error))
    }

    fn ingest(&mut self, element: &Element) -> Result<Option<Element>> {
        let result = self.with_element("ingest", element, |e, store, input| {
            Some(e.aggregator.as_ref()?.call_ingest(store, input))
        })?;
        match result {
            Ok(Some(output)) => Ok(Some(self.output("ingest", output)?)),
            Ok(None) => Ok(None),
            Err(error) => Err(self.guest_error("ingest", error)),
        }
    }

    fn flush(&mut self) -> Result<Vec<Element>> {
        let result = self.call("flush", |e, store| {
            Some(e.aggregator.as_ref()?.call_flush(store))
        })?;
        match result {
            Ok(outputs) => {
                // Take every payload before reporting a failure, so none is left in the table.
                let taken: Vec<Result<Element>> = outputs
                    .into_iter()
                    .map(|output| self.output("flush", output))
                    .collect();
                taken.into_iter().collect()
            }
            Err(error) => Err(self.guest_error("flush", error)),
        }
    }
}
