//! Reading the dynamic path's `Val`s: arguments' byte lists written, and
//! results read into the very types the typed bindings return.

use wasmtime::component::Val;
use wasmtime::Store;

use crate::bindings::types::{ElementMetaResult, OutputElement, ProcessError};
use crate::host::Buffer;
use crate::store::StoreState;

/// Writes `bytes` into a `list<u8>` argument, reusing its `Val`s' room.
pub(super) fn set_bytes(list: &mut Val, bytes: &[u8]) {
    if let Val::List(list) = list {
        list.clear();
        list.extend(bytes.iter().map(|&byte| Val::U8(byte)));
    }
}

/// Reads a `list<u8>` result (one `Val` each: the dynamic path copies
/// bytes more than the typed one).
pub(super) fn decode_bytes(
    _: &mut Store<StoreState>,
    ok: Option<&Val>,
) -> wasmtime::Result<Vec<u8>> {
    match ok {
        Some(Val::List(bytes)) => bytes
            .iter()
            .map(|byte| match byte {
                Val::U8(byte) => Ok(*byte),
                other => Err(wasmtime::format_err!("expected a u8, got {other:?}")),
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

/// Reads a `result<T, process-error>`, `ok` reading the `T`.
pub(super) fn decode_result<T>(
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

pub(super) fn decode_optional_output(
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
pub(super) fn decode_output(
    store: &mut Store<StoreState>,
    value: &Val,
) -> wasmtime::Result<OutputElement> {
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
