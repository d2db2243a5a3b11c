//! `torvyn invoke`'s forms for the windowed contract functions WAVE alone
//! cannot express: `fold`'s element (a borrowed buffer) and `emit`'s
//! result (a buffer the host takes). The element is written as its
//! payload, a WAVE string; the result is shown as its content type and
//! payload:
//!
//! ```text
//! torvyn invoke bundled:window-count 'fold(none, "5")'
//! ok([1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])
//! torvyn invoke bundled:window-count 'emit({key: "k", start-ms: 0, end-ms: 1000}, [1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])'
//! ok({content-type: "text/plain", payload: "k 0 1 5"})
//! ```
//!
//! `merge` (two byte lists) needs no form of its own: it is called by name
//! like any export.

use torvyn_engine::wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
use torvyn_engine::wasmtime::component::wasm_wave::value::{Type, Value};
use torvyn_engine::wasmtime::component::wasm_wave::wasm::WasmValue;
use torvyn_engine::window::Window;
use torvyn_engine::{ComponentInvoker, Element, Interface, WasmtimeInstance};

use crate::error::CliError;

/// Calls `call` through the contract when it is `fold(...)` or `emit(...)`
/// of a component exporting a windowed aggregator; `None`: any other call,
/// for the generic WAVE path.
pub(crate) fn windowed_call(
    instance: &mut WasmtimeInstance,
    call: &str,
) -> Option<Result<String, CliError>> {
    let name = call.split('(').next()?.trim();
    let name = name.rsplit('#').next().unwrap_or(name);
    if !matches!(name, "fold" | "emit") || !instance.has(Interface::Windowed) {
        return None;
    }
    let bad = |detail: String| CliError::Usage(format!("`{call}`: {detail}"));
    let bytes = Type::list(Type::U8);
    let window = Type::record([
        ("key", Type::STRING),
        ("start-ms", Type::S64),
        ("end-ms", Type::S64),
    ])
    .expect("a record type");
    let types = match name {
        "fold" => vec![Type::option(bytes.clone()), Type::STRING],
        _ => vec![window, bytes.clone()],
    };
    let arguments = match call.find('(') {
        Some(open) => format!("f{}", &call[open..]),
        None => return Some(Err(bad("expected `name(arguments)`".into()))),
    };
    let parsed = UntypedFuncCall::parse(&arguments)
        .and_then(|parsed| parsed.to_wasm_params::<Value>(types.iter()));
    let values = match parsed {
        Ok(values) => values,
        Err(error) => return Some(Err(bad(error.to_string()))),
    };
    Some(match name {
        "fold" => fold(instance, &values),
        _ => emit(instance, &values).map_err(|detail| match detail {
            Ok(error) => error,
            Err(detail) => bad(detail),
        }),
    })
}

fn byte_list(value: &Value) -> Vec<u8> {
    value.unwrap_list().map(|byte| byte.unwrap_u8()).collect()
}

fn fold(instance: &mut WasmtimeInstance, values: &[Value]) -> Result<String, CliError> {
    let state = values[0].unwrap_option().map(|state| byte_list(&state));
    let payload = values[1].unwrap_string().into_owned();
    let folded = instance.fold(state.as_deref(), &Element::new(0, "text/plain", payload))?;
    Ok(format!("ok({})", list_text(&folded)))
}

fn emit(
    instance: &mut WasmtimeInstance,
    values: &[Value],
) -> Result<String, Result<CliError, String>> {
    let fields: Vec<(String, Value)> = values[0]
        .unwrap_record()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.clone())
            .expect("the record's type has the field")
    };
    let (start, end) = (field("start-ms").unwrap_s64(), field("end-ms").unwrap_s64());
    let window =
        Window::new(start, end).ok_or_else(|| Err(format!("window {start}-{end} is empty")))?;
    let key = field("key").unwrap_string().into_owned();
    let state = byte_list(&values[1]);
    let output = instance
        .emit(&key, window, &state)
        .map_err(|e| Ok(e.into()))?;
    let payload = match std::str::from_utf8(&output.payload) {
        Ok(text) => format!("{text:?}"),
        Err(_) => list_text(&output.payload),
    };
    Ok(format!(
        "ok({{content-type: {:?}, payload: {payload}}})",
        output.meta.content_type
    ))
}

/// Bytes as a WAVE list.
fn list_text(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("[{}]", items.join(", "))
}
