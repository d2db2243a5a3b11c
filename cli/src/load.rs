//! A component from where the user named it: a location (a path, a
//! project's build output, or `bundled:NAME`) → its bytes (a core module
//! carrying its WIT made into a component) → compiled. Every command that
//! takes a component goes through here: run, check, watch, inspect,
//! invoke.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use torvyn_engine::flow::file::FlowFile;
use torvyn_engine::{CompiledComponent, FlowSpec, WasmEngine, WasmtimeEngine};

use crate::bundled;
use crate::error::{CliError, LoadError};

/// A flow file read for a run: `{partition}` in its connector settings
/// filled in when a partition is given.
pub(crate) fn flow_file(path: &Path, partition: Option<&str>) -> Result<FlowFile, CliError> {
    let mut file = FlowFile::read(path)?;
    if let Some(partition) = partition {
        file.substitute("partition", partition);
    }
    Ok(file)
}

/// Flow `name` of `file` (its only one when `None`) and where each of its
/// components is (project directories resolved, notes to `log`).
pub(crate) fn flow_in(
    file: &FlowFile,
    name: Option<&str>,
    log: &mut dyn Write,
) -> Result<(FlowSpec, BTreeMap<String, String>), CliError> {
    let spec = file.flow(name)?.clone();
    let locations = crate::project::resolve_all(file, &spec, log)?;
    Ok((spec, locations))
}

/// Reads and compiles the component at `location`, named after it (its
/// file's stem, or its bundled name).
pub(crate) fn compile(
    engine: &WasmtimeEngine,
    location: &str,
) -> Result<CompiledComponent, CliError> {
    let (name, bytes) = load(location)?;
    compile_bytes(engine, &name, location, &bytes)
}

/// Compiles the bytes read from `location` as component `name`; an error
/// names the location as the user gave it.
pub(crate) fn compile_bytes(
    engine: &WasmtimeEngine,
    name: &str,
    location: &str,
    bytes: &[u8],
) -> Result<CompiledComponent, CliError> {
    engine
        .compile(name, bytes)
        .map_err(|error| CliError::Component {
            file: location.to_string(),
            error,
        })
}

/// The bytes of a component given as a path or as `bundled:<name>`.
pub fn load(spec: &str) -> Result<(String, Vec<u8>), LoadError> {
    if let Some(name) = spec.strip_prefix("bundled:") {
        let bytes =
            bundled::bytes_of(name).ok_or_else(|| LoadError::UnknownBundled(name.to_string()))?;
        return Ok((name.to_string(), bytes));
    }
    let bytes = std::fs::read(spec).map_err(|source| LoadError::Read {
        path: spec.to_string(),
        source,
    })?;
    let bytes = as_component(spec, bytes)?;
    let name = std::path::Path::new(spec)
        .file_stem()
        .map_or_else(|| spec.to_string(), |s| s.to_string_lossy().into_owned());
    Ok((name, bytes))
}

/// The bytes of a component: a component as it is; a core module that
/// carries its WIT (what `wit-bindgen` emits, before `wasm-tools component
/// new`) made into one the way that command does; a core module without
/// its WIT refused by what it is.
fn as_component(path: &str, bytes: Vec<u8>) -> Result<Vec<u8>, LoadError> {
    // Anything but a core module goes to the engine as it is (which names
    // what a file that is no WebAssembly starts with).
    if !bytes.starts_with(b"\0asm") {
        return Ok(bytes);
    }
    // Bytes 4..8: version 1 with layer 0 is a core module; a component's
    // layer is 1.
    if bytes.get(4..8) != Some(&[1, 0, 0, 0]) {
        return Ok(bytes);
    }
    let carries_wit = wasmparser::Parser::new(0).parse_all(&bytes).any(|payload| {
        matches!(payload, Ok(wasmparser::Payload::CustomSection(section))
            if section.name().starts_with("component-type"))
    });
    if !carries_wit {
        return Err(LoadError::NotComponent {
            path: path.to_string(),
            detail: "a core WebAssembly module, not a component, and it carries no WIT \
                     (`component-type` section) to make one from: build it with a component \
                     toolchain (`cargo component build`, or `wasm-tools component new` on a \
                     module made by wit-bindgen)"
                .into(),
        });
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&bytes)
        .and_then(|mut encoder| encoder.encode())
        .map_err(|error| LoadError::NotComponent {
            path: path.to_string(),
            detail: format!(
                "a core WebAssembly module, not a component, and it cannot be made into one \
                 (a module made by wit-bindgen carries its WIT; one importing WASI preview 1 \
                 needs `wasm-tools component new --adapt`): {error:#}"
            ),
        })
}
