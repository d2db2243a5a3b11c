//! The dynamic path: stream-stage exports the typed bindings do not know
//! (another major version, another package with the same shapes) called
//! with `wasmtime::component::Val`s.
//!
//! Shapes are matched structurally and by name when the component is
//! compiled ([`plan_interface`]): records by field name, variants and enums
//! by case name, `borrow<buffer>`/`borrow<flow-context>` to the host's own
//! resources. Anything the host cannot fill or read is refused there, with
//! the function and the path inside the type. At instantiation each function
//! gets its argument `Val`s built once ([`DynamicExport`]); a call only
//! overwrites the scalar and string leaves, then turns the result `Val`s
//! into the very types the typed bindings return, so everything after the
//! call is shared with the typed path.

use wasmtime::component::types::{ComponentFunc, ComponentItem, Record};
use wasmtime::component::{
    Component, ComponentExportIndex, Func, Instance, ResourceAny, ResourceType, Type, Val,
};
use wasmtime::Store;

use crate::bindings::types::{
    BackpressureSignal, ElementMetaResult, OutputElement, ProcessError, ProcessResult,
};
use crate::contract::{functions_of, Function, Returns, Takes};
use crate::gate::{enter, Gate};
use crate::host::{Buffer, FlowContext};
use crate::interfaces::Interface;
use crate::invoker::Element;
use crate::store::StoreState;

/// Where a value of a `stream-element` argument comes from.
#[derive(Debug, Clone)]
enum Slot {
    Sequence,
    Timestamp,
    ContentType,
    Payload,
    Context,
    /// A nested record (the `meta` field), by the guest's field order.
    Record(Vec<(String, Slot)>),
    /// An optional field the host does not know: always `none`.
    None,
}

/// A function of a dynamically called interface, planned at compile time.
#[derive(Debug, Clone)]
pub(crate) struct FuncPlan {
    function: &'static Function,
    index: ComponentExportIndex,
    /// For functions taking a `stream-element`.
    element: Option<Vec<(String, Slot)>>,
}

/// One exported interface on the dynamic path.
#[derive(Debug, Clone)]
pub(crate) struct InterfacePlan {
    pub(crate) interface: Interface,
    funcs: Vec<FuncPlan>,
}

/// A shape the host cannot work with, found at compile time.
#[derive(Debug)]
pub(crate) struct Mismatch {
    /// E.g. `process.input.meta.priority`.
    pub(crate) path: String,
    /// What the host expected there.
    pub(crate) expected: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at `{}`: expected {}", self.path, self.expected)
    }
}

fn mismatch<T>(path: &str, expected: impl Into<String>) -> Result<T, Mismatch> {
    Err(Mismatch {
        path: path.to_string(),
        expected: expected.into(),
    })
}

/// Plans the calls of `interface`, exported by `component` under
/// `export_name` and typed as `instance_type` (with imported resources
/// substituted by the host's own types).
pub(crate) fn plan_interface(
    component: &Component,
    interface: Interface,
    export_name: &str,
    instance_type: &wasmtime::component::types::ComponentInstance,
) -> Result<InterfacePlan, Mismatch> {
    let engine = component.engine();
    let instance_index = component
        .get_export_index(None, export_name)
        .ok_or_else(|| Mismatch {
            path: export_name.to_string(),
            expected: "an exported instance".into(),
        })?;
    let mut funcs = Vec::new();
    for function in functions_of(interface) {
        let name = function.wit;
        let func = instance_type
            .exports(engine)
            .find(|(export, _)| *export == name)
            .map(|(_, item)| item.ty);
        let func = match func {
            Some(ComponentItem::ComponentFunc(func)) => func,
            Some(_) => return mismatch(name, "a function"),
            None if function.required => return mismatch(name, "an exported function"),
            None => continue,
        };
        let element = plan_params(name, &func, function.takes)?;
        check_result(name, &func, function.returns)?;
        let index = component
            .get_export_index(Some(&instance_index), name)
            .ok_or_else(|| Mismatch {
                path: name.to_string(),
                expected: "an exported function".into(),
            })?;
        funcs.push(FuncPlan {
            function,
            index,
            element,
        });
    }
    Ok(InterfacePlan { interface, funcs })
}

fn plan_params(
    name: &str,
    func: &ComponentFunc,
    takes: Takes,
) -> Result<Option<Vec<(String, Slot)>>, Mismatch> {
    let params: Vec<(&str, Type)> = func.params().collect();
    let path = |param: &str| format!("{name}.{param}");
    match (takes, params.as_slice()) {
        (Takes::Element, [(param, Type::Record(record))]) => {
            plan_element(&path(param), record).map(Some)
        }
        (Takes::Element, [(param, _)]) => mismatch(&path(param), "a stream-element record"),
        (Takes::Config, [(_, Type::String)]) => Ok(None),
        (Takes::Config, [(param, _)]) => mismatch(&path(param), "string"),
        (Takes::Signal, [(param, Type::Enum(cases))]) => {
            for case in ["ready", "pause"] {
                if !cases.names().any(|n| n == case) {
                    return mismatch(&path(param), format!("an enum with case `{case}`"));
                }
            }
            Ok(None)
        }
        (Takes::Signal, [(param, _)]) => mismatch(&path(param), "a backpressure-signal enum"),
        (Takes::Nothing, []) => Ok(None),
        _ => mismatch(
            name,
            format!(
                "the parameters of `{name}` in the contract, found {}",
                params.len()
            ),
        ),
    }
}

fn plan_element(path: &str, record: &Record) -> Result<Vec<(String, Slot)>, Mismatch> {
    plan_record(path, record, element_field)
}

/// Plans a record field by field: `known` plans the fields the host knows
/// (`None` for a name it does not); any other field must be an option, and
/// gets `none`.
fn plan_record(
    path: &str,
    record: &Record,
    known: fn(&str, &str, &Type) -> Option<Result<Slot, Mismatch>>,
) -> Result<Vec<(String, Slot)>, Mismatch> {
    record
        .fields()
        .map(|field| {
            let here = format!("{path}.{}", field.name);
            let slot = match known(&here, field.name, &field.ty) {
                Some(slot) => slot?,
                None if matches!(field.ty, Type::Option(_)) => Slot::None,
                None => {
                    return mismatch(
                        &here,
                        format!(
                            "an option: the host has no value for required field `{}`",
                            field.name
                        ),
                    )
                }
            };
            Ok((field.name.to_string(), slot))
        })
        .collect()
}

/// The fields of `stream-element`.
fn element_field(here: &str, name: &str, ty: &Type) -> Option<Result<Slot, Mismatch>> {
    Some(match (name, ty) {
        ("meta", Type::Record(meta)) => plan_record(here, meta, meta_field).map(Slot::Record),
        ("payload", Type::Borrow(ty)) if *ty == ResourceType::host::<Buffer>() => Ok(Slot::Payload),
        ("context", Type::Borrow(ty)) if *ty == ResourceType::host::<FlowContext>() => {
            Ok(Slot::Context)
        }
        ("meta", _) => mismatch(here, "an element-meta record"),
        ("payload", _) => mismatch(here, "borrow<buffer> of the host's buffer"),
        ("context", _) => mismatch(here, "borrow<flow-context> of the host's flow context"),
        _ => return None,
    })
}

/// The fields of `element-meta`.
fn meta_field(here: &str, name: &str, ty: &Type) -> Option<Result<Slot, Mismatch>> {
    Some(match (name, ty) {
        ("sequence", Type::U64) => Ok(Slot::Sequence),
        ("timestamp-ns", Type::U64) => Ok(Slot::Timestamp),
        ("content-type", Type::String) => Ok(Slot::ContentType),
        ("sequence" | "timestamp-ns", _) => mismatch(here, "u64"),
        ("content-type", _) => mismatch(here, "string"),
        _ => return None,
    })
}

fn check_result(name: &str, func: &ComponentFunc, shape: Returns) -> Result<(), Mismatch> {
    let results: Vec<Type> = func.results().collect();
    let path = format!("{name}.result");
    match (shape, results.as_slice()) {
        (Returns::Nothing, []) => Ok(()),
        (Returns::Nothing, _) => mismatch(&path, "the result type of the contract"),
        (_, [Type::Result(result)]) => {
            if let Some(err) = result.err() {
                check_error(&format!("{path}.err"), &err)?;
            }
            check_ok(&format!("{path}.ok"), shape, result.ok().as_ref())
        }
        _ => mismatch(&path, "the result type of the contract"),
    }
}

fn check_error(path: &str, ty: &Type) -> Result<(), Mismatch> {
    let Type::Variant(variant) = ty else {
        return mismatch(path, "a process-error variant");
    };
    for case in variant.cases() {
        let here = format!("{path}.{}", case.name);
        match (case.name, &case.ty) {
            ("deadline-exceeded", _) | (_, None) | (_, Some(Type::String)) => {}
            _ => return mismatch(&here, "no payload or a string"),
        }
    }
    Ok(())
}

fn check_ok(path: &str, shape: Returns, ok: Option<&Type>) -> Result<(), Mismatch> {
    match (shape, ok) {
        (Returns::Unit, None) => Ok(()),
        (Returns::Bool, Some(Type::Bool)) => Ok(()),
        (Returns::Strings, Some(Type::List(list))) if list.ty() == Type::String => Ok(()),
        (Returns::Outputs, Some(Type::List(list))) => check_output(path, &list.ty()),
        (Returns::OptionalOutput, Some(Type::Option(option))) => {
            check_output(&format!("{path}.some"), &option.ty())
        }
        (Returns::Signal, Some(Type::Enum(cases))) => {
            for case in cases.names() {
                if !matches!(case, "ready" | "pause") {
                    return mismatch(&format!("{path}.{case}"), "only `ready` or `pause`");
                }
            }
            Ok(())
        }
        (Returns::ProcessResult, Some(Type::Variant(variant))) => {
            for case in variant.cases() {
                let here = format!("{path}.{}", case.name);
                match (case.name, &case.ty) {
                    ("emit", Some(ty)) => check_output(&here, ty)?,
                    ("drop", None) => {}
                    ("emit", None) => return mismatch(&here, "an output-element payload"),
                    ("drop", Some(_)) => return mismatch(&here, "no payload"),
                    _ => return mismatch(&here, "only the cases `emit` and `drop`"),
                }
            }
            Ok(())
        }
        (shape, _) => mismatch(path, format!("the contract's type ({shape:?})")),
    }
}

fn check_output(path: &str, ty: &Type) -> Result<(), Mismatch> {
    let Type::Record(record) = ty else {
        return mismatch(path, "an output-element record");
    };
    let mut payload = false;
    for field in record.fields() {
        let here = format!("{path}.{}", field.name);
        match (field.name, &field.ty) {
            ("payload", Type::Own(ty)) if *ty == ResourceType::host::<Buffer>() => payload = true,
            ("payload", _) => return mismatch(&here, "an owned buffer of the host"),
            ("meta", Type::Record(meta)) => {
                for field in meta.fields() {
                    let inner = format!("{here}.{}", field.name);
                    match (field.name, &field.ty) {
                        ("sequence" | "timestamp-ns", Type::U64)
                        | ("content-type", Type::String) => {}
                        ("sequence" | "timestamp-ns", _) => return mismatch(&inner, "u64"),
                        ("content-type", _) => return mismatch(&inner, "string"),
                        _ => {} // Fields the host does not know are ignored.
                    }
                }
            }
            ("meta", _) => return mismatch(&here, "an element-meta record"),
            _ => {}
        }
    }
    if !payload {
        return mismatch(&format!("{path}.payload"), "a `payload` field (required)");
    }
    Ok(())
}

/// A dynamically called function bound to one instance, with its argument
/// and result `Val`s allocated once.
struct DynamicFunc {
    plan: FuncPlan,
    func: Func,
    params: Vec<Val>,
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
                let params = match (&plan.element, function.takes) {
                    (Some(slots), _) => vec![template(slots, payload, context)],
                    (None, Takes::Config) => vec![Val::String(String::new())],
                    (None, Takes::Signal) => vec![Val::Enum("ready".into())],
                    (None, _) => Vec::new(),
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

    fn func(&mut self, name: &str) -> Option<&mut DynamicFunc> {
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

impl DynamicFunc {
    async fn call<G: Gate>(&mut self, store: &mut Store<StoreState>) -> wasmtime::Result<&Val> {
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
fn fill(slots: &[(String, Slot)], value: &mut Val, element: &Element) {
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

/// Reads a `result<T, process-error>`, `ok` reading the `T`.
fn decode_result<T>(
    store: &mut Store<StoreState>,
    value: &Val,
    ok: impl FnOnce(&mut Store<StoreState>, Option<&Val>) -> wasmtime::Result<T>,
) -> wasmtime::Result<Result<T, ProcessError>> {
    match value {
        Val::Result(Ok(payload)) => Ok(Ok(ok(store, payload.as_deref())?)),
        Val::Result(Err(payload)) => Ok(Err(decode_error(payload.as_deref()))),
        other => Err(wasmtime::format_err!("expected a result, got {other:?}")),
    }
}

/// Maps a guest's error variant by case name; unknown cases become `internal`.
fn decode_error(value: Option<&Val>) -> ProcessError {
    let (case, message) = match value {
        Some(Val::Variant(case, payload)) => {
            let message = match payload.as_deref() {
                Some(Val::String(text)) => text.clone(),
                _ => String::new(),
            };
            (case.as_str(), message)
        }
        _ => ("", String::new()),
    };
    match case {
        "invalid-input" => ProcessError::InvalidInput(message),
        "unavailable" => ProcessError::Unavailable(message),
        "internal" => ProcessError::Internal(message),
        "deadline-exceeded" => ProcessError::DeadlineExceeded,
        "fatal" => ProcessError::Fatal(message),
        other if message.is_empty() => ProcessError::Internal(other.to_string()),
        other => ProcessError::Internal(format!("{other}: {message}")),
    }
}

fn decode_optional_output(
    store: &mut Store<StoreState>,
    ok: Option<&Val>,
) -> wasmtime::Result<Option<OutputElement>> {
    match ok {
        Some(Val::Option(Some(output))) => Ok(Some(decode_output(store, output)?)),
        other => {
            other.map(|value| drop_handles(store, value));
            Ok(None)
        }
    }
}

/// Reads an output element by field name; the payload's ownership moves to
/// the host exactly as on the typed path.
fn decode_output(store: &mut Store<StoreState>, value: &Val) -> wasmtime::Result<OutputElement> {
    let Val::Record(fields) = value else {
        wasmtime::bail!("expected an output-element record, got {value:?}");
    };
    let mut meta = ElementMetaResult {
        sequence: 0,
        timestamp_ns: 0,
        content_type: String::new(),
    };
    let mut payload = None;
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("payload", Val::Resource(resource)) => {
                payload = Some(resource.try_into_resource::<Buffer>(&mut *store)?);
            }
            ("meta", Val::Record(meta_fields)) => {
                for (name, value) in meta_fields {
                    match (name.as_str(), value) {
                        ("sequence", Val::U64(v)) => meta.sequence = *v,
                        ("timestamp-ns", Val::U64(v)) => meta.timestamp_ns = *v,
                        ("content-type", Val::String(v)) => meta.content_type.clone_from(v),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let payload = payload.ok_or_else(|| wasmtime::format_err!("output element without payload"))?;
    Ok(OutputElement { meta, payload })
}

/// Drops the owned handles inside `value`; whether it held any handle.
pub(crate) fn drop_handles(store: &mut Store<StoreState>, value: &Val) -> bool {
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
