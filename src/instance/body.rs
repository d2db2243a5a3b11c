//! The body of every contract function on the wasmtime instance (typed
//! export or dynamic call, and how the output is taken), and the sync and
//! async entries generated from the contract's table.

use crate::bindings::types::{BackpressureSignal, ProcessResult};
use crate::bindings::windowed_aggregation::exports::torvyn::windowing::windowed_aggregator::Window as WindowRecord;
use crate::contract::contract_functions;
use crate::error::{Error, Result};
use crate::gate::{block_on, enter, run_ready, Blocking, Gate, InRuntime, Yielding};
use crate::interfaces::{ExportInfo, Interface};
use crate::invoker::{
    AsyncComponentInvoker, Backpressure, ComponentInvoker, Element, ProcessOutcome,
};

use super::wasmtime_instance::deadline_of;
use super::WasmtimeInstance;

fn signal(signal: BackpressureSignal) -> Backpressure {
    match signal {
        BackpressureSignal::Ready => Backpressure::Ready,
        BackpressureSignal::Pause => Backpressure::Pause,
    }
}

/// Calls a typed export through the gate, unwrapping its 1-tuple result.
macro_rules! typed {
    ($gate:ty, $call:ident, $func:expr, ($($param:expr),*)) => {
        Some(enter!($gate, $func, call / call_async(&mut *$call.store, ($($param,)*))).map(|(r,)| r))
    };
}

/// Calls the export of `$interface`: the typed one if bound, else the
/// dynamic one, else `None` (not exported).
macro_rules! dispatch {
    ($call:ident, $gate:ty, $field:ident, $interface:expr,
     typed: $func:ident($($param:expr),*),
     dynamic: $method:ident($($arg:expr),*)) => {
        match &$call.exports.typed.$field {
            Some(typed) => typed!($gate, $call, typed.$func(), ($($param),*)),
            None => match $call.exports.dynamic($interface) {
                Some(dynamic) => dynamic.$method::<$gate>(&mut *$call.store $(, $arg)*).await,
                None => None,
            },
        }
    };
}

/// Before an element call: replaces the instance by a fresh one when its
/// limits say it is due. The check is inlined and sync; the recycle is
/// boxed, so its future (a whole instantiation) stays out of every element
/// call's own.
macro_rules! recycle_when_due {
    ($this:ident) => {
        if Self::recycle_due($this) {
            Box::pin(Self::recycle($this)).await?;
        }
    };
}

/// The body of every contract function on this engine, written once for
/// both gates; the sync and async entries (below) are generated from the
/// contract's table.
pub(crate) struct Body<G>(std::marker::PhantomData<G>);

impl<G: Gate> Body<G> {
    async fn init(this: &mut WasmtimeInstance, config: &str) -> Result<()> {
        let call = this.begin::<G>("init", None)?;
        let result = dispatch!(call, G, lifecycle, Interface::Lifecycle,
            typed: func_init(config), dynamic: init(config));
        let result = call.finish(result)?;
        result.map_err(|error| this.guest_error("init", error))?;
        // A fresh instance replacing this one gets the same config.
        this.renewal.init_config = Some(config.to_string());
        Ok(())
    }

    /// Before an element call: whether the instance is due to be replaced
    /// by a fresh one (`recycle_after_elements` element calls started, or
    /// `recycle_at_memory_percent` of its memory limit in use). When
    /// neither is set: two loads and a branch, no future of its own.
    #[inline(always)]
    fn recycle_due(this: &mut WasmtimeInstance) -> bool {
        let limits = this.component.limits();
        let (after, at_percent) = (
            limits.recycle_after_elements,
            limits.recycle_at_memory_percent,
        );
        if after.is_none() && at_percent.is_none() {
            return false;
        }
        Self::count_and_check(this, after, at_percent)
    }

    #[cold]
    fn count_and_check(
        this: &mut WasmtimeInstance,
        after: Option<u64>,
        at_percent: Option<u8>,
    ) -> bool {
        let max_memory = this.component.limits().max_memory_bytes;
        this.renewal.elements += 1;
        let by_count = after.is_some_and(|after| this.renewal.elements > after);
        let by_memory = at_percent.is_some_and(|percent| {
            this.memory_bytes() as u64 * 100 >= max_memory * u64::from(percent)
        });
        // A poisoned instance is refused by the call itself.
        (by_count || by_memory) && this.state.poisoned.is_none()
    }

    /// Replaces `this` by a fresh instance of its component, between two
    /// elements, with the steps of a live upgrade: the fresh one is made
    /// and `init`ed with the config the old one got, the old one's state
    /// carried over with `torvyn:state` when the component exports it,
    /// the old one torn down and dropped (its memory with it). A failure
    /// leaves the old instance serving and is the call's error.
    #[cold]
    async fn recycle(this: &mut WasmtimeInstance) -> Result<()> {
        let component = this.component.clone();
        let (config, totals) = (this.renewal.config.clone(), this.renewal.totals.clone());
        let mut fresh = match G::YIELDING {
            true => WasmtimeInstance::new_async(component, config, totals).await?,
            false => WasmtimeInstance::new(component, config, totals)?,
        };
        if fresh.has(Interface::Lifecycle) {
            if let Some(config) = &this.renewal.init_config {
                Self::init(&mut fresh, config).await?;
            }
        }
        if this.has(Interface::Snapshot) && fresh.has(Interface::Snapshot) {
            let state = Self::save(this).await?;
            Self::restore(&mut fresh, &state).await?;
        }
        if this.has(Interface::Lifecycle) {
            // The old one is done either way: a failed teardown is logged.
            if let Err(error) = Self::teardown(this).await {
                tracing::warn!(component = %this.component.name(), %error,
                    "teardown of a recycled instance failed");
            }
        }
        fresh.renewal.recycled = this.renewal.recycled + 1;
        fresh.renewal.elements = 1;
        fresh.state.fuel_total += this.state.fuel_total;
        tracing::debug!(component = %fresh.component.name(), recycled = fresh.renewal.recycled,
            "instance recycled");
        *this = fresh;
        Ok(())
    }

    async fn teardown(this: &mut WasmtimeInstance) -> Result<()> {
        let call = this.begin::<G>("teardown", None)?;
        let result = match &call.exports.typed.lifecycle {
            Some(typed) => Some(enter!(
                G,
                typed.func_teardown(),
                call / call_async(&mut *call.store, ())
            )),
            None => match call.exports.dynamic(Interface::Lifecycle) {
                Some(dynamic) => dynamic.teardown::<G>(&mut *call.store).await,
                None => None,
            },
        };
        call.finish(result)
    }

    async fn process(this: &mut WasmtimeInstance, element: &Element) -> Result<ProcessOutcome> {
        recycle_when_due!(this);
        let call = this.begin::<G>("process", Some(&element.payload))?;
        let input = call.stream_element(element);
        let result = dispatch!(call, G, processor, Interface::Processor,
            typed: func_process(input), dynamic: process(element));
        match call.finish(result)? {
            Ok(ProcessResult::Drop) => Ok(ProcessOutcome::Drop),
            Ok(ProcessResult::Emit(output)) => {
                Ok(ProcessOutcome::Emit(this.output("process", output)?))
            }
            Err(error) => Err(this.guest_error("process", error)),
        }
    }

    async fn pull(this: &mut WasmtimeInstance) -> Result<Option<Element>> {
        recycle_when_due!(this);
        let call = this.begin::<G>("pull", None)?;
        let result = dispatch!(call, G, source, Interface::Source,
            typed: func_pull(), dynamic: pull());
        match call.finish(result)? {
            Ok(Some(output)) => Ok(Some(this.output("pull", output)?)),
            Ok(None) => Ok(None),
            Err(error) => Err(this.guest_error("pull", error)),
        }
    }

    async fn notify_backpressure(this: &mut WasmtimeInstance, signal: Backpressure) -> Result<()> {
        let signal = match signal {
            Backpressure::Ready => BackpressureSignal::Ready,
            Backpressure::Pause => BackpressureSignal::Pause,
        };
        let call = this.begin::<G>("notify-backpressure", None)?;
        let result = match &call.exports.typed.source {
            Some(typed) => Some(enter!(
                G,
                typed.func_notify_backpressure(),
                call / call_async(&mut *call.store, (signal,))
            )),
            None => match call.exports.dynamic(Interface::Source) {
                Some(dynamic) => {
                    dynamic
                        .notify_backpressure::<G>(&mut *call.store, signal)
                        .await
                }
                None => None,
            },
        };
        call.finish(result)
    }

    async fn push(this: &mut WasmtimeInstance, element: &Element) -> Result<Backpressure> {
        recycle_when_due!(this);
        let call = this.begin::<G>("push", Some(&element.payload))?;
        let input = call.stream_element(element);
        let result = dispatch!(call, G, sink, Interface::Sink,
            typed: func_push(input), dynamic: push(element));
        call.finish(result)?
            .map(signal)
            .map_err(|error| this.guest_error("push", error))
    }

    async fn complete(this: &mut WasmtimeInstance) -> Result<()> {
        let call = this.begin::<G>("complete", None)?;
        let result = dispatch!(call, G, sink, Interface::Sink,
            typed: func_complete(), dynamic: complete());
        call.finish(result)?
            .map_err(|error| this.guest_error("complete", error))
    }

    async fn evaluate(this: &mut WasmtimeInstance, element: &Element) -> Result<bool> {
        recycle_when_due!(this);
        let call = this.begin::<G>("evaluate", Some(&element.payload))?;
        let input = call.stream_element(element);
        let result = dispatch!(call, G, filter, Interface::Filter,
            typed: func_evaluate(input), dynamic: evaluate(element));
        call.finish(result)?
            .map_err(|error| this.guest_error("evaluate", error))
    }

    async fn route(this: &mut WasmtimeInstance, element: &Element) -> Result<Vec<String>> {
        recycle_when_due!(this);
        let call = this.begin::<G>("route", Some(&element.payload))?;
        let input = call.stream_element(element);
        let result = dispatch!(call, G, router, Interface::Router,
            typed: func_route(input), dynamic: route(element));
        call.finish(result)?
            .map_err(|error| this.guest_error("route", error))
    }

    async fn ingest(this: &mut WasmtimeInstance, element: &Element) -> Result<Option<Element>> {
        recycle_when_due!(this);
        let call = this.begin::<G>("ingest", Some(&element.payload))?;
        let input = call.stream_element(element);
        let result = dispatch!(call, G, aggregator, Interface::Aggregator,
            typed: func_ingest(input), dynamic: ingest(element));
        match call.finish(result)? {
            Ok(Some(output)) => Ok(Some(this.output("ingest", output)?)),
            Ok(None) => Ok(None),
            Err(error) => Err(this.guest_error("ingest", error)),
        }
    }

    async fn flush(this: &mut WasmtimeInstance) -> Result<Vec<Element>> {
        let call = this.begin::<G>("flush", None)?;
        let result = dispatch!(call, G, aggregator, Interface::Aggregator,
            typed: func_flush(), dynamic: flush());
        match call.finish(result)? {
            Ok(outputs) => {
                // Take every payload before reporting a failure, so none is left in the table.
                let taken: Vec<Result<Element>> = outputs
                    .into_iter()
                    .map(|output| this.output("flush", output))
                    .collect();
                taken.into_iter().collect()
            }
            Err(error) => Err(this.guest_error("flush", error)),
        }
    }

    async fn fold(
        this: &mut WasmtimeInstance,
        state: Option<&[u8]>,
        element: &Element,
    ) -> Result<Vec<u8>> {
        recycle_when_due!(this);
        let call = this.begin::<G>("fold", Some(&element.payload))?;
        let input = call.stream_element(element);
        let result = dispatch!(call, G, windowed, Interface::Windowed,
            typed: func_fold(state, input), dynamic: fold(state, element));
        let state = call
            .finish(result)?
            .map_err(|error| this.guest_error("fold", error))?;
        this.check_state("fold", state)
    }

    async fn merge(this: &mut WasmtimeInstance, earlier: &[u8], later: &[u8]) -> Result<Vec<u8>> {
        let call = this.begin::<G>("merge", None)?;
        let result = dispatch!(call, G, windowed, Interface::Windowed,
            typed: func_merge(earlier, later), dynamic: merge(earlier, later));
        let state = call
            .finish(result)?
            .map_err(|error| this.guest_error("merge", error))?;
        this.check_state("merge", state)
    }

    async fn emit(
        this: &mut WasmtimeInstance,
        key: &str,
        window: crate::window::Window,
        state: &[u8],
    ) -> Result<Element> {
        let call = this.begin::<G>("emit", None)?;
        let typed_window = WindowRecord {
            key,
            start_ms: window.start_ms(),
            end_ms: window.end_ms(),
        };
        let result = dispatch!(call, G, windowed, Interface::Windowed,
            typed: func_emit(typed_window, state), dynamic: emit(key, window, state));
        match call.finish(result)? {
            Ok(output) => this.output("emit", output),
            Err(error) => Err(this.guest_error("emit", error)),
        }
    }

    async fn save(this: &mut WasmtimeInstance) -> Result<Vec<u8>> {
        let call = this.begin::<G>("save", None)?;
        let result = dispatch!(call, G, snapshot, Interface::Snapshot,
            typed: func_save(), dynamic: save());
        let state = call
            .finish(result)?
            .map_err(|error| this.guest_error("save", error))?;
        this.check_state("save", state)
    }

    async fn restore(this: &mut WasmtimeInstance, state: &[u8]) -> Result<()> {
        let call = this.begin::<G>("restore", None)?;
        let result = dispatch!(call, G, snapshot, Interface::Snapshot,
            typed: func_restore(state), dynamic: restore(state));
        call.finish(result)?
            .map_err(|error| this.guest_error("restore", error))
    }
}

/// The call of `$method` on the yielding gate, inside the engine's WASI
/// runtime and ended at the call's wall-clock deadline: a future of
/// `Option<Result<_>>`, `None` when the deadline passed first.
macro_rules! in_wasi_runtime {
    ($self:ident, $runtime:ident, $method:ident($($arg:expr),*)) => {{
        let deadline = deadline_of(&$self.component);
        InRuntime::new(Body::<Yielding>::$method($self $(, $arg)*), $runtime.handle(), deadline)
    }};
}

/// The sync entry: the blocking gate, or, for a component that imports
/// WASI (linked async), the yielding gate driven on this thread.
macro_rules! blocking {
    ($self:ident, $function:literal, $method:ident($($arg:expr),*)) => {{
        let result = match $self.component.inner.wasi_runtime.clone() {
            None => run_ready(Body::<Blocking>::$method($self $(, $arg)*)),
            Some(runtime) => match block_on(in_wasi_runtime!($self, runtime, $method($($arg),*))) {
                Some(result) => result,
                None => Err($self.deadline_passed($function)),
            },
        };
        $self.settle();
        result
    }};
}

/// The async entry: the yielding gate; for a component that imports WASI,
/// inside the engine's WASI runtime.
macro_rules! yielding {
    ($self:ident, $function:literal, $method:ident($($arg:expr),*)) => {
        {
            // A flow whose calls all finish within a slice never suspends on
            // its own: after a tick of running its task yields (see `turn_over`).
            if $self.tick_passed() {
                tokio::task::yield_now().await;
            }
            let result = match $self.component.inner.wasi_runtime.clone() {
                None => Body::<Yielding>::$method($self $(, $arg)*).await,
                Some(runtime) => match in_wasi_runtime!($self, runtime, $method($($arg),*)).await {
                    Some(result) => result,
                    None => Err($self.deadline_passed($function)),
                },
            };
            $self.settle();
            result
        }
    };
}

/// The sync entry of every contract function.
macro_rules! blocking_entries {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident ($wit:literal, $($table:tt)*)
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        $( fn $sync(&mut self $(, $arg: $ty)*) -> Result<$ok> {
            blocking!(self, $wit, $sync($($arg),*))
        } )*
    };
}

/// The async entry of every contract function.
macro_rules! yielding_entries {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident ($wit:literal, $($table:tt)*)
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        $( async fn $async(&mut self $(, $arg: $ty)*) -> Result<$ok> {
            yielding!(self, $wit, $sync($($arg),*))
        } )*
    };
}

impl ComponentInvoker for WasmtimeInstance {
    fn name(&self) -> &str {
        self.component.name()
    }

    fn exports(&self) -> &[ExportInfo] {
        self.component.exports()
    }

    fn has(&self, interface: Interface) -> bool {
        self.exports.has(interface)
    }

    contract_functions!(blocking_entries);

    /// Fuel used by all calls so far (0 when the component has no fuel limit).
    fn total_fuel_consumed(&self) -> u64 {
        self.state.fuel_total
    }

    fn recycled(&self) -> u64 {
        self.renewal.recycled
    }
}

impl AsyncComponentInvoker for WasmtimeInstance {
    contract_functions!(yielding_entries);
}

impl WasmtimeInstance {
    /// A state a guest returned (`save`, `fold`, `merge`): lifted once
    /// (within `max_transfer_bytes`), refused here before anything keeps
    /// it when over `max_state_bytes`; the instance is still sound, so not
    /// poisoned.
    fn check_state(&self, function: &str, state: Vec<u8>) -> Result<Vec<u8>> {
        let limit = self.component.limits().max_state_bytes;
        if state.len() > limit {
            return Err(Error::StateLimit {
                site: super::site(self.component.name(), function),
                bytes: state.len(),
                limit,
            });
        }
        Ok(state)
    }

    /// Calls any export by name with arguments in WAVE text and returns the
    /// results in WAVE text, e.g. `invoke("add(1, 2)")` → `"3"`. The name is
    /// `func`, `interface#func` or a function name unique among the
    /// exported interfaces. Meant for diagnostics and for components that
    /// are not stream stages; it runs under the same limits as any call.
    pub fn invoke(&mut self, call: &str) -> Result<String> {
        blocking!(self, "invoke", invoke(call))
    }
}
