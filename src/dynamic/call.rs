//! The call-time half of the dynamic path: plans bound to an instance with
//! their argument and result `Val`s made once; each call fills the leaves
//! and reads the result into the types the typed bindings return.

use wasmtime::component::{Func, Instance, ResourceAny, Val};
use wasmtime::Store;

use super::decode::{
    decode_bytes, decode_optional_output, decode_output, decode_result, drop_handles, set_bytes,
};
use super::plan::{FuncPlan, InterfacePlan, Slot};
use crate::bindings::types::{BackpressureSignal, OutputElement, ProcessError, ProcessResult};
use crate::contract::{Returns, Takes};
use crate::gate::{enter, Gate};
use crate::host::{Buffer, FlowContext};
use crate::interfaces::Interface;
use crate::invoker::Element;
use crate::store::StoreState;

/// A dynamically called function bound to one instance, with its argument
/// and result `Val`s allocated once.
pub(super) struct DynamicFunc {
    pub(super) plan: FuncPlan,
    func: Func,
    pub(super) params: Vec<Val>,
    results: Vec<Val>,
}

/// The dynamically called functions of one interface of one instance.
pub(crate) struct DynamicExport {
    pub(crate) interface: Interface,
    funcs: Vec<DynamicFunc>,
}

impl DynamicExport {
    /// Binds a plan to an instance; `input` and `flow` are the host
    /// resources lent with every element.
    pub(crate) fn bind(
        plan: &InterfacePlan,
        store: &mut Store<StoreState>,
        instance: &Instance,
        input: u32,
        flow: u32,
    ) -> wasmtime::Result<DynamicExport> {
        // Handles of the host's lending resources, made once: every call
        // lends the same ones as `borrow` arguments. (A borrow-typed
        // `ResourceAny` can only be made inside a call, so these are the
        // store's own handles, which lower to borrows.)
        let payload = ResourceAny::try_from_resource(
            wasmtime::component::Resource::<Buffer>::new_own(input),
            &mut *store,
        )?;
        let context = ResourceAny::try_from_resource(
            wasmtime::component::Resource::<FlowContext>::new_own(flow),
            &mut *store,
        )?;
        let funcs = plan
            .funcs
            .iter()
            .map(|plan| {
                let function = plan.function;
                let func = instance.get_func(&mut *store, plan.index).ok_or_else(|| {
                    wasmtime::format_err!("export `{}` disappeared", function.wit)
                })?;
                let element = || match &plan.element {
                    Some(slots) => template(slots, payload, context),
                    None => Val::Record(Vec::new()),
                };
                let window = || match &plan.window {
                    Some(slots) => template(slots, payload, context),
                    None => Val::Record(Vec::new()),
                };
                let bytes = || Val::List(Vec::new());
                let params = match function.takes {
                    Takes::Element => vec![element()],
                    Takes::Config => vec![Val::String(String::new())],
                    Takes::Signal => vec![Val::Enum("ready".into())],
                    Takes::State => vec![bytes()],
                    Takes::StateAndElement => vec![Val::Option(None), element()],
                    Takes::TwoStates => vec![bytes(), bytes()],
                    Takes::WindowAndState => vec![window(), bytes()],
                    Takes::Nothing => Vec::new(),
                };
                let results = match function.returns {
                    Returns::Nothing => Vec::new(),
                    _ => vec![Val::Bool(false)],
                };
                Ok(DynamicFunc {
                    plan: plan.clone(),
                    func,
                    params,
                    results,
                })
            })
            .collect::<wasmtime::Result<_>>()?;
        Ok(DynamicExport {
            interface: plan.interface,
            funcs,
        })
    }

    pub(super) fn func(&mut self, name: &str) -> Option<&mut DynamicFunc> {
        self.funcs.iter_mut().find(|f| f.plan.function.wit == name)
    }

    /// Calls `name` (a function taking a stream element) with `element`.
    async fn call_element<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        name: &str,
        element: &Element,
    ) -> Option<wasmtime::Result<&Val>> {
        let f = self.func(name)?;
        if let (Some(slots), Some(param)) = (&f.plan.element, f.params.first_mut()) {
            fill(slots, param, element);
        }
        Some(f.call::<G>(store).await)
    }

    async fn call_plain<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        name: &str,
    ) -> Option<wasmtime::Result<&Val>> {
        Some(self.func(name)?.call::<G>(store).await)
    }

    /// `lifecycle.init`.
    pub(crate) async fn init<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        config: &str,
    ) -> Option<wasmtime::Result<Result<(), ProcessError>>> {
        let f = self.func("init")?;
        if let Some(Val::String(text)) = f.params.first_mut() {
            text.clear();
            text.push_str(config);
        }
        Some(
            f.call::<G>(store)
                .await
                .and_then(|v| decode_result(store, v, |_, _| Ok(()))),
        )
    }

    /// `lifecycle.teardown`; a missing `teardown` is a no-op.
    pub(crate) async fn teardown<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
    ) -> Option<wasmtime::Result<()>> {
        match self.func("teardown") {
            Some(f) => Some(f.call::<G>(store).await.map(|_| ())),
            None => Some(Ok(())),
        }
    }

    /// `processor.process`.
    pub(crate) async fn process<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        element: &Element,
    ) -> Option<wasmtime::Result<Result<ProcessResult, ProcessError>>> {
        let result = self.call_element::<G>(store, "process", element).await?;
        Some(result.and_then(|v| {
            decode_result(store, v, |store, ok| match ok {
                Some(Val::Variant(case, Some(output))) if case == "emit" => {
                    Ok(ProcessResult::Emit(decode_output(store, output)?))
                }
                other => {
                    // Nothing of it goes downstream: release what it holds now.
                    other.map(|value| drop_handles(store, value));
                    Ok(ProcessResult::Drop)
                }
            })
        }))
    }

    /// `source.pull`.
    pub(crate) async fn pull<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
    ) -> Option<wasmtime::Result<Result<Option<OutputElement>, ProcessError>>> {
        let result = self.call_plain::<G>(store, "pull").await?;
        Some(result.and_then(|v| decode_result(store, v, decode_optional_output)))
    }

    /// `source.notify-backpressure`; a missing one is a no-op.
    pub(crate) async fn notify_backpressure<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        signal: BackpressureSignal,
    ) -> Option<wasmtime::Result<()>> {
        let Some(f) = self.func("notify-backpressure") else {
            return Some(Ok(()));
        };
        let case = match signal {
            BackpressureSignal::Ready => "ready",
            BackpressureSignal::Pause => "pause",
        };
        if let Some(Val::Enum(name)) = f.params.first_mut() {
            name.clear();
            name.push_str(case);
        }
        Some(f.call::<G>(store).await.map(|_| ()))
    }

    /// `sink.push`.
    pub(crate) async fn push<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        element: &Element,
    ) -> Option<wasmtime::Result<Result<BackpressureSignal, ProcessError>>> {
        let result = self.call_element::<G>(store, "push", element).await?;
        Some(result.and_then(|v| {
            decode_result(store, v, |_, ok| match ok {
                Some(Val::Enum(case)) if case == "pause" => Ok(BackpressureSignal::Pause),
                Some(Val::Enum(case)) if case == "ready" => Ok(BackpressureSignal::Ready),
                Some(Val::Enum(case)) => Err(wasmtime::format_err!(
                    "push returned `{case}`, which is no case of backpressure-signal (ready, pause)"
                )),
                other => Err(wasmtime::format_err!(
                    "push returned {other:?}, not a backpressure-signal"
                )),
            })
        }))
    }

    /// `sink.complete`; a missing one succeeds.
    pub(crate) async fn complete<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
    ) -> Option<wasmtime::Result<Result<(), ProcessError>>> {
        match self.call_plain::<G>(store, "complete").await {
            Some(result) => Some(result.and_then(|v| decode_result(store, v, |_, _| Ok(())))),
            None => Some(Ok(Ok(()))),
        }
    }

    /// `filter.evaluate`.
    pub(crate) async fn evaluate<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        element: &Element,
    ) -> Option<wasmtime::Result<Result<bool, ProcessError>>> {
        let result = self.call_element::<G>(store, "evaluate", element).await?;
        Some(
            result.and_then(|v| {
                decode_result(store, v, |_, ok| Ok(matches!(ok, Some(Val::Bool(true)))))
            }),
        )
    }

    /// `router.route`.
    pub(crate) async fn route<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        element: &Element,
    ) -> Option<wasmtime::Result<Result<Vec<String>, ProcessError>>> {
        let result = self.call_element::<G>(store, "route", element).await?;
        Some(result.and_then(|v| {
            decode_result(store, v, |_, ok| match ok {
                Some(Val::List(ports)) => Ok(ports
                    .iter()
                    .filter_map(|port| match port {
                        Val::String(port) => Some(port.clone()),
                        _ => None,
                    })
                    .collect()),
                _ => Ok(Vec::new()),
            })
        }))
    }

    /// `aggregator.ingest`.
    pub(crate) async fn ingest<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        element: &Element,
    ) -> Option<wasmtime::Result<Result<Option<OutputElement>, ProcessError>>> {
        let result = self.call_element::<G>(store, "ingest", element).await?;
        Some(result.and_then(|v| decode_result(store, v, decode_optional_output)))
    }

    /// `aggregator.flush`.
    pub(crate) async fn flush<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
    ) -> Option<wasmtime::Result<Result<Vec<OutputElement>, ProcessError>>> {
        let result = self.call_plain::<G>(store, "flush").await?;
        Some(result.and_then(|v| {
            decode_result(store, v, |store, ok| match ok {
                Some(Val::List(outputs)) => outputs
                    .iter()
                    .map(|output| decode_output(store, output))
                    .collect(),
                _ => Ok(Vec::new()),
            })
        }))
    }
}

impl DynamicExport {
    /// `snapshot.save`: the list's bytes (one `Val` each: the dynamic
    /// path copies state more than the typed one).
    pub(crate) async fn save<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
    ) -> Option<wasmtime::Result<Result<Vec<u8>, ProcessError>>> {
        let result = self.call_plain::<G>(store, "save").await?;
        Some(result.and_then(|v| decode_result(store, v, decode_bytes)))
    }

    /// `snapshot.restore`.
    pub(crate) async fn restore<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        state: &[u8],
    ) -> Option<wasmtime::Result<Result<(), ProcessError>>> {
        let f = self.func("restore")?;
        if let Some(list) = f.params.first_mut() {
            set_bytes(list, state);
        }
        let result = f
            .call::<G>(store)
            .await
            .and_then(|v| decode_result(store, v, |_, _| Ok(())));
        // The argument's bytes are not kept between calls.
        if let Some(Val::List(list)) = f.params.first_mut() {
            *list = Vec::new();
        }
        Some(result)
    }
}

impl DynamicFunc {
    pub(super) async fn call<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
    ) -> wasmtime::Result<&Val> {
        let func = self.func;
        enter!(
            G,
            func,
            call / call_async(&mut *store, &self.params, &mut self.results)
        )?;
        Ok(self.results.first().unwrap_or(&Val::Bool(false)))
    }
}

/// The argument `Val` of a stream element, with its fixed handles in place.
fn template(slots: &[(String, Slot)], payload: ResourceAny, context: ResourceAny) -> Val {
    let fields = slots
        .iter()
        .map(|(name, slot)| {
            let value = match slot {
                Slot::Sequence | Slot::Timestamp => Val::U64(0),
                Slot::Key => Val::String(String::new()),
                Slot::Start | Slot::End => Val::S64(0),
                Slot::ContentType => Val::String(String::new()),
                Slot::Payload => Val::Resource(payload),
                Slot::Context => Val::Resource(context),
                Slot::Record(inner) => template(inner, payload, context),
                Slot::None => Val::Option(None),
            };
            (name.clone(), value)
        })
        .collect();
    Val::Record(fields)
}

/// Writes `element` into the argument built by [`template`], reusing its strings.
pub(super) fn fill(slots: &[(String, Slot)], value: &mut Val, element: &Element) {
    let Val::Record(fields) = value else {
        return;
    };
    for ((_, slot), (_, value)) in slots.iter().zip(fields.iter_mut()) {
        match (slot, value) {
            (Slot::Sequence, value) => *value = Val::U64(element.meta.sequence),
            (Slot::Timestamp, value) => *value = Val::U64(element.meta.timestamp_ns),
            (Slot::ContentType, Val::String(text)) => {
                text.clear();
                text.push_str(&element.meta.content_type);
            }
            (Slot::Record(inner), value) => fill(inner, value, element),
            _ => {}
        }
    }
}
