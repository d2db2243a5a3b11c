//! The compile-time half of the dynamic path: every function of an
//! interface the typed bindings do not know is matched against the
//! contract's table (`crate::contract`) and planned, or refused with the
//! path inside its type.

use wasmtime::component::types::{ComponentFunc, ComponentItem, Record};
use wasmtime::component::{Component, ComponentExportIndex, ResourceType, Type};

use crate::contract::{functions_of, Function, Returns, Takes};
use crate::host::{Buffer, FlowContext};
use crate::interfaces::Interface;

/// Where a value of a `stream-element` argument comes from.
#[derive(Debug, Clone)]
pub(super) enum Slot {
    Sequence,
    Timestamp,
    ContentType,
    Payload,
    Context,
    /// A `window` record's fields.
    Key,
    Start,
    End,
    /// A nested record (the `meta` field), by the guest's field order.
    Record(Vec<(String, Slot)>),
    /// An optional field the host does not know: always `none`.
    None,
}

/// A function of a dynamically called interface, planned at compile time.
#[derive(Debug, Clone)]
pub(crate) struct FuncPlan {
    pub(super) function: &'static Function,
    pub(super) index: ComponentExportIndex,
    /// For functions taking a `stream-element`.
    pub(super) element: Option<Vec<(String, Slot)>>,
    /// For functions taking a `window`.
    pub(super) window: Option<Vec<(String, Slot)>>,
}

/// One exported interface on the dynamic path.
#[derive(Debug, Clone)]
pub(crate) struct InterfacePlan {
    pub(crate) interface: Interface,
    pub(super) funcs: Vec<FuncPlan>,
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
        let (element, window) = plan_params(name, &func, function.takes)?;
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
            window,
        });
    }
    Ok(InterfacePlan { interface, funcs })
}

/// The record arguments' plans: (a `stream-element`'s, a `window`'s).
type RecordPlans = (Option<Vec<(String, Slot)>>, Option<Vec<(String, Slot)>>);

fn plan_params(name: &str, func: &ComponentFunc, takes: Takes) -> Result<RecordPlans, Mismatch> {
    let params: Vec<(&str, Type)> = func.params().collect();
    let path = |param: &str| format!("{name}.{param}");
    let bytes = |ty: &Type| matches!(ty, Type::List(list) if list.ty() == Type::U8);
    let element = |param: &str, record: &Record| plan_element(&path(param), record);
    match (takes, params.as_slice()) {
        (Takes::Element, [(param, Type::Record(record))]) => {
            Ok((Some(element(param, record)?), None))
        }
        (Takes::Element, [(param, _)]) => mismatch(&path(param), "a stream-element record"),
        (Takes::Config, [(_, Type::String)]) => Ok((None, None)),
        (Takes::Config, [(param, _)]) => mismatch(&path(param), "string"),
        (Takes::Signal, [(param, Type::Enum(cases))]) => {
            for case in ["ready", "pause"] {
                if !cases.names().any(|n| n == case) {
                    return mismatch(&path(param), format!("an enum with case `{case}`"));
                }
            }
            Ok((None, None))
        }
        (Takes::Signal, [(param, _)]) => mismatch(&path(param), "a backpressure-signal enum"),
        (Takes::State, [(_, ty)]) if bytes(ty) => Ok((None, None)),
        (Takes::State, [(param, _)]) => mismatch(&path(param), "list<u8>"),
        (
            Takes::StateAndElement,
            [(state, Type::Option(option)), (param, Type::Record(record))],
        ) => match bytes(&option.ty()) {
            true => Ok((Some(element(param, record)?), None)),
            false => mismatch(&path(state), "option<list<u8>>"),
        },
        (Takes::StateAndElement, [(state, _), (param, _)]) => mismatch(
            &format!("{name}.({state}, {param})"),
            "option<list<u8>> and a stream-element record",
        ),
        (Takes::TwoStates, [(_, a), (_, b)]) if bytes(a) && bytes(b) => Ok((None, None)),
        (Takes::TwoStates, [(a, _), (b, _)]) => {
            mismatch(&format!("{name}.({a}, {b})"), "list<u8> twice")
        }
        (Takes::WindowAndState, [(param, Type::Record(record)), (_, state)]) if bytes(state) => {
            let window = plan_record(&path(param), record, window_field)?;
            Ok((None, Some(window)))
        }
        (Takes::WindowAndState, [(window, _), (state, _)]) => mismatch(
            &format!("{name}.({window}, {state})"),
            "a window record and list<u8>",
        ),
        (Takes::Nothing, []) => Ok((None, None)),
        _ => mismatch(
            name,
            format!(
                "the parameters of `{name}` in the contract, found {}",
                params.len()
            ),
        ),
    }
}

/// The fields of `window`.
fn window_field(here: &str, name: &str, ty: &Type) -> Option<Result<Slot, Mismatch>> {
    Some(match (name, ty) {
        ("key", Type::String) => Ok(Slot::Key),
        ("start-ms", Type::S64) => Ok(Slot::Start),
        ("end-ms", Type::S64) => Ok(Slot::End),
        ("key", _) => mismatch(here, "string"),
        ("start-ms" | "end-ms", _) => mismatch(here, "s64"),
        _ => return None,
    })
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
        (Returns::Bytes, Some(Type::List(list))) if list.ty() == Type::U8 => Ok(()),
        (Returns::Output, Some(ty)) => check_output(path, ty),
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
