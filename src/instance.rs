//! A live wasmtime instance and its typed invoker: every call goes through
//! the generated `TypedFunc` exports, with no `Val` marshaling.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
use wasmtime::component::{Func, Instance, InstancePre, Resource, Type, Val};
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::types::{
    BackpressureSignal, ElementMetaParam, OutputElement, ProcessError, ProcessResult, StreamElement,
};
use crate::bindings::{
    content_filter, content_router, data_sink, data_source, managed_transform, stream_aggregator,
    transform,
};
use crate::config::{EngineConfig, WasiGrants};
use crate::dynamic::DynamicExport;
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

/// What an instance's store holds: the host's contract state, the memory
/// limiter, the WASI context of components that import WASI, and the state
/// of host interfaces linked with
/// [`WasmtimeEngine::with_host_imports`](crate::WasmtimeEngine::with_host_imports).
pub struct StoreState {
    host: HostState,
    limiter: MemoryLimiter,
    wasi: Option<WasiCtx>,
    extensions: Vec<Box<dyn Any + Send>>,
}

impl StoreState {
    /// The contract's host state (used by the linker's host functions).
    pub fn host(&mut self) -> &mut HostState {
        &mut self.host
    }

    /// The state of type `T` of a host interface of your own, created with
    /// `T::default()` on first use. Pass `|state| state.extension::<T>()` as
    /// the getter of generated `add_to_linker` functions.
    pub fn extension<T: Default + Send + 'static>(&mut self) -> &mut T {
        let index = match self.extensions.iter().position(|e| e.is::<T>()) {
            Some(index) => index,
            None => {
                self.extensions.push(Box::new(T::default()));
                self.extensions.len() - 1
            }
        };
        self.extensions[index]
            .downcast_mut::<T>()
            .expect("the entry at `index` holds a `T`")
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
fn wasi_context(grants: &WasiGrants) -> wasmtime::Result<WasiCtx> {
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

/// The callable exports of one instance: typed where the bindings apply,
/// dynamic where they do not.
struct Exports {
    typed: TypedExports,
    dynamic: Vec<DynamicExport>,
}

impl Exports {
    fn dynamic(&mut self, interface: Interface) -> Option<&mut DynamicExport> {
        self.dynamic.iter_mut().find(|d| d.interface == interface)
    }
}

/// A live instance of a compiled component.
pub struct WasmtimeInstance {
    component: CompiledComponent,
    store: Store<StoreState>,
    instance: Instance,
    exports: Exports,
    /// Host-owned buffer lent (borrowed) to the guest as each input payload.
    input: Resource<Buffer>,
    /// Host-owned flow context lent with each element.
    flow: Resource<FlowContext>,
    /// Epoch ticks each call may run ([`NO_DEADLINE`] without a deadline).
    call_ticks: u64,
    poisoned: Option<String>,
    fuel_consumed: u64,
    fuel_total: u64,
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
        let name = component.name().to_string();
        let fail = |detail: String| Error::Instantiate {
            component: name.clone(),
            detail,
        };
        let wasi = match component.inner.imports_wasi {
            true => Some(wasi_context(&config.wasi).map_err(|e| fail(format!("WASI: {e:#}")))?),
            false => None,
        };
        let mut store = Store::new(
            pre.engine(),
            StoreState {
                host,
                limiter,
                wasi,
                extensions: Vec::new(),
            },
        );
        store.limiter(|state| &mut state.limiter);
        // Start-up code runs under the same limits as any call.
        if let Some(fuel) = limits.fuel_per_call {
            store.set_fuel(fuel).map_err(|e| fail(format!("{e:#}")))?;
        }
        let call_ticks = match limits.call_deadline {
            Some(deadline) => ticks(deadline, config.epoch_tick),
            None => NO_DEADLINE,
        };
        store.set_epoch_deadline(call_ticks);
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| fail(format!("{e:#}")))?;
        let typed = component
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
        let dynamic = component
            .inner
            .dynamic
            .iter()
            .map(|plan| DynamicExport::bind(plan, &mut store, &instance, input.rep(), flow.rep()))
            .collect::<wasmtime::Result<Vec<_>>>()
            .map_err(|e| fail(format!("{e:#}")))?;
        let exports = Exports { typed, dynamic };
        Ok(WasmtimeInstance {
            component,
            store,
            instance,
            exports,
            input,
            flow,
            call_ticks,
            poisoned: None,
            fuel_consumed: 0,
            fuel_total: 0,
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

    /// Resource-table entries held by the guest: the table minus the input
    /// buffer and flow context the host keeps for lending.
    pub fn guest_resources(&mut self) -> usize {
        self.host().live_resources() - 2
    }

    /// Fuel used by the last call (0 when fuel metering is off).
    pub fn fuel_consumed(&self) -> u64 {
        self.fuel_consumed
    }

    /// Fuel used by all calls so far (0 when fuel metering is off).
    pub fn total_fuel_consumed(&self) -> u64 {
        self.fuel_total
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

    /// Calls any export by name with arguments in WAVE text and returns the
    /// results in WAVE text, e.g. `invoke("add(1, 2)")` → `"3"`. The name is
    /// `func`, `interface#func` or a function name unique among the
    /// exported interfaces. Meant for diagnostics and for components that
    /// are not stream stages; it runs under the same limits as any call.
    pub fn invoke(&mut self, call: &str) -> Result<String> {
        let component = self.component.clone();
        let bad = |detail: String| Error::BadCall {
            component: component.name().to_string(),
            call: call.to_string(),
            detail,
        };
        let open = call
            .find('(')
            .ok_or_else(|| bad("expected `name(arguments)`".into()))?;
        let name = call[..open].trim();
        let func = self
            .find_func(name)
            .map_err(|detail| bad(detail.to_string()))?;
        let ty = func.ty(&self.store);
        let param_types: Vec<Type> = ty.params().map(|(_, ty)| ty).collect();
        // WAVE names are plain labels; the real name was resolved above.
        let arguments = format!("f{}", &call[open..]);
        let params: Vec<Val> = UntypedFuncCall::parse(&arguments)
            .and_then(|parsed| parsed.to_wasm_params(param_types.iter()))
            .map_err(|e| bad(e.to_string()))?;
        let mut results = vec![Val::Bool(false); ty.results().len()];
        self.call(name, |_, store| {
            Some(func.call(&mut *store, &params, &mut results))
        })?;
        // WAVE cannot show handles (its writer would panic): release them and say so.
        let handles = results.iter().fold(false, |any, value| {
            drop_handles(&mut self.store, value) | any
        });
        if handles {
            return Err(bad(
                "the result holds resource handles, which WAVE cannot show; they were dropped"
                    .into(),
            ));
        }
        let texts: Vec<String> = results
            .iter()
            .map(|value| value.to_wave().map_err(|e| bad(format!("{e:#}"))))
            .collect::<Result<_>>()?;
        Ok(texts.join(", "))
    }

    fn find_func(&mut self, name: &str) -> std::result::Result<Func, String> {
        let store = &mut self.store;
        let lookup = |store: &mut Store<StoreState>, interface: &str, func: &str| {
            let instance_index = self
                .instance
                .get_export_index(&mut *store, None, interface)?;
            let func_index =
                self.instance
                    .get_export_index(&mut *store, Some(&instance_index), func)?;
            self.instance.get_func(&mut *store, func_index)
        };
        if let Some((interface, func)) = name.split_once('#') {
            return lookup(store, interface, func)
                .ok_or_else(|| format!("no function `{func}` in exported `{interface}`"));
        }
        if let Some(func) = self.instance.get_func(&mut *store, name) {
            return Ok(func);
        }
        let owners: Vec<String> = self
            .component
            .exports()
            .iter()
            .filter(|export| lookup(&mut *store, &export.name, name).is_some())
            .map(|export| export.name.clone())
            .collect();
        match owners.as_slice() {
            [owner] => lookup(store, owner, name).ok_or_else(|| format!("no function `{name}`")),
            [] => Err(format!("no exported function `{name}`")),
            many => Err(format!(
                "`{name}` is exported by {}; say which with `interface#{name}`",
                many.join(", ")
            )),
        }
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
        function: &str,
        call: impl FnOnce(&mut Exports, &mut Store<StoreState>) -> Option<wasmtime::Result<R>>,
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
        let result = call(&mut self.exports, &mut self.store);
        if let Some(fuel) = fuel {
            self.fuel_consumed = fuel - self.store.get_fuel().unwrap_or(0);
            self.fuel_total += self.fuel_consumed;
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
            &mut Exports,
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
        let (payload, buffer_content_type) = buffer.into_parts();
        let mut content_type = output.meta.content_type;
        if content_type.is_empty() {
            content_type = buffer_content_type;
        }
        Ok(Element {
            meta: ElementMeta {
                sequence: output.meta.sequence,
                timestamp_ns: output.meta.timestamp_ns,
                content_type,
            },
            payload,
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

/// Drops the owned handles inside `value`; whether it held any handle.
fn drop_handles(store: &mut Store<StoreState>, value: &Val) -> bool {
    let mut visit = |value: &Val| drop_handles(&mut *store, value);
    match value {
        Val::Resource(handle) => {
            if handle.owned() {
                // A handle the guest already invalidated has nothing left to free.
                let _ = handle.resource_drop(&mut *store);
            }
            true
        }
        Val::List(values) | Val::Tuple(values) => {
            values.iter().fold(false, |any, value| visit(value) | any)
        }
        Val::Record(fields) => fields
            .iter()
            .fold(false, |any, (_, value)| visit(value) | any),
        Val::Variant(_, Some(payload))
        | Val::Option(Some(payload))
        | Val::Result(Ok(Some(payload)) | Err(Some(payload))) => visit(payload),
        _ => false,
    }
}

/// Epoch ticks that never run out. wasmtime adds the deadline to the current
/// epoch without saturating, so `u64::MAX` would wrap once the engine's
/// ticker has advanced the epoch (another component may have a deadline).
pub const NO_DEADLINE: u64 = u64::MAX / 2;

/// Epoch ticks for a deadline, rounded up, at least one.
fn ticks(deadline: std::time::Duration, tick: std::time::Duration) -> u64 {
    let ticks = deadline.as_nanos().div_ceil(tick.as_nanos().max(1));
    u64::try_from(ticks)
        .unwrap_or(NO_DEADLINE)
        .clamp(1, NO_DEADLINE)
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
        let typed = &self.exports.typed;
        let is_typed = match interface {
            Interface::Lifecycle => typed.lifecycle.is_some(),
            Interface::Processor => typed.processor.is_some(),
            Interface::Source => typed.source.is_some(),
            Interface::Sink => typed.sink.is_some(),
            Interface::Filter => typed.filter.is_some(),
            Interface::Router => typed.router.is_some(),
            Interface::Aggregator => typed.aggregator.is_some(),
        };
        is_typed
            || self
                .exports
                .dynamic
                .iter()
                .any(|d| d.interface == interface)
    }

    fn init(&mut self, config: &str) -> Result<()> {
        let result = self.call("init", |e, store| match &e.typed.lifecycle {
            Some(typed) => Some(typed.call_init(store, config)),
            None => e.dynamic(Interface::Lifecycle)?.init(store, config),
        })?;
        result.map_err(|error| self.guest_error("init", error))
    }

    fn teardown(&mut self) -> Result<()> {
        self.call("teardown", |e, store| match &e.typed.lifecycle {
            Some(typed) => Some(typed.call_teardown(store)),
            None => e.dynamic(Interface::Lifecycle)?.teardown(store),
        })
    }

    fn process(&mut self, element: &Element) -> Result<ProcessOutcome> {
        let result = self.with_element("process", element, |e, store, input| {
            match &e.typed.processor {
                Some(typed) => Some(typed.call_process(store, input)),
                None => e.dynamic(Interface::Processor)?.process(store, element),
            }
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
        let result = self.call("pull", |e, store| match &e.typed.source {
            Some(typed) => Some(typed.call_pull(store)),
            None => e.dynamic(Interface::Source)?.pull(store),
        })?;
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
        self.call("notify-backpressure", |e, store| match &e.typed.source {
            Some(typed) => Some(typed.call_notify_backpressure(store, signal)),
            None => e
                .dynamic(Interface::Source)?
                .notify_backpressure(store, signal),
        })
    }

    fn push(&mut self, element: &Element) -> Result<Backpressure> {
        let result = self.with_element("push", element, |e, store, input| match &e.typed.sink {
            Some(typed) => Some(typed.call_push(store, input)),
            None => e.dynamic(Interface::Sink)?.push(store, element),
        })?;
        result
            .map(signal)
            .map_err(|error| self.guest_error("push", error))
    }

    fn complete(&mut self) -> Result<()> {
        let result = self.call("complete", |e, store| match &e.typed.sink {
            Some(typed) => Some(typed.call_complete(store)),
            None => e.dynamic(Interface::Sink)?.complete(store),
        })?;
        result.map_err(|error| self.guest_error("complete", error))
    }

    fn evaluate(&mut self, element: &Element) -> Result<bool> {
        let result = self.with_element("evaluate", element, |e, store, input| {
            match &e.typed.filter {
                Some(typed) => Some(typed.call_evaluate(store, input)),
                None => e.dynamic(Interface::Filter)?.evaluate(store, element),
            }
        })?;
        result.map_err(|error| self.guest_error("evaluate", error))
    }

    fn route(&mut self, element: &Element) -> Result<Vec<String>> {
        let result =
            self.with_element("route", element, |e, store, input| match &e.typed.router {
                Some(typed) => Some(typed.call_route(store, input)),
                None => e.dynamic(Interface::Router)?.route(store, element),
            })?;
        result.map_err(|error| self.guest_error("route", error))
    }

    fn ingest(&mut self, element: &Element) -> Result<Option<Element>> {
        let result = self.with_element("ingest", element, |e, store, input| {
            match &e.typed.aggregator {
                Some(typed) => Some(typed.call_ingest(store, input)),
                None => e.dynamic(Interface::Aggregator)?.ingest(store, element),
            }
        })?;
        match result {
            Ok(Some(output)) => Ok(Some(self.output("ingest", output)?)),
            Ok(None) => Ok(None),
            Err(error) => Err(self.guest_error("ingest", error)),
        }
    }

    fn flush(&mut self) -> Result<Vec<Element>> {
        let result = self.call("flush", |e, store| match &e.typed.aggregator {
            Some(typed) => Some(typed.call_flush(store)),
            None => e.dynamic(Interface::Aggregator)?.flush(store),
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
