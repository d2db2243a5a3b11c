//! Components bundled with the tool (the WAT fixtures of `torvyn-fixtures`),
//! named `bundled:<name>` on the command line.

/// A bundled component: (name, what it is, builder of its bytes).
pub type Bundled = (&'static str, &'static str, fn() -> Vec<u8>);

/// Every bundled component.
pub const BUNDLED: &[Bundled] = &[
    (
        "counting-source",
        "source of `element <n>` payloads; config: count",
        torvyn_fixtures::counting_source,
    ),
    (
        "uppercase",
        "processor emitting an uppercased copy",
        torvyn_fixtures::uppercase_processor,
    ),
    (
        "uppercase-or-trap",
        "uppercase, but traps on a payload starting with `!` (a poison message)",
        torvyn_fixtures::uppercase_trapping_on_bang,
    ),
    (
        "acme-uppercase",
        "the uppercase processor under acme:etl@2.0.0 (dynamic path)",
        || torvyn_fixtures::foreign::uppercase_processor_in("acme:etl@2.0.0"),
    ),
    (
        "dropper",
        "processor dropping every n-th element; config: n",
        torvyn_fixtures::dropping_processor,
    ),
    (
        "recording-sink",
        "sink checking order, pausing every n; config: n",
        torvyn_fixtures::recording_sink,
    ),
    (
        "filter",
        "keeps sequences not divisible by n",
        torvyn_fixtures::modulo_filter,
    ),
    (
        "router",
        "routes to even/odd/audit",
        torvyn_fixtures::parity_router,
    ),
    (
        "aggregator",
        "concatenates every n payloads",
        torvyn_fixtures::concat_aggregator,
    ),
    (
        "counter",
        "counts its inputs, emits the count at flush; exports torvyn:state",
        || torvyn_fixtures::counting_aggregator(0),
    ),
    (
        "calculator",
        "not a stream stage: calc.add, calc.shout",
        torvyn_fixtures::calculator,
    ),
    (
        "sleeper",
        "imports WASI; sleeps 10 s in every process call (for deadlines)",
        || torvyn_fixtures::hostile::wasi_sleeper(10_000),
    ),
    (
        "wasi-printer",
        "imports WASI; writes each payload to its stdout, drops it",
        torvyn_fixtures::wasi_printer,
    ),
    (
        "wasi-probe",
        "imports WASI; probe.env-count, probe.preopen-count",
        torvyn_fixtures::wasi_probe,
    ),
];

/// The bytes of a component given as a path or as `bundled:<name>`.
pub fn load(spec: &str) -> Result<(String, Vec<u8>), LoadError> {
    if let Some(name) = spec.strip_prefix("bundled:") {
        let (_, _, build) = BUNDLED
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| LoadError::UnknownBundled(name.to_string()))?;
        return Ok((name.to_string(), build()));
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

/// A component argument that could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Read {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No bundled component has this name.
    UnknownBundled(String),
    /// The file is a core module that cannot be made a component.
    NotComponent {
        /// The path given.
        path: String,
        /// What it is instead.
        detail: String,
    },
    /// A component project directory with nothing built in it (or a build
    /// output that is not there): what to run.
    Project(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Read { path, .. } => write!(f, "cannot read {path}"),
            LoadError::NotComponent { path, detail } => write!(f, "{path}: {detail}"),
            LoadError::Project(detail) => f.write_str(detail),
            LoadError::UnknownBundled(name) => {
                let names: Vec<&str> = BUNDLED.iter().map(|(n, _, _)| *n).collect();
                write!(
                    f,
                    "no bundled component `{name}` (bundled: {})",
                    names.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Read { source, .. } => Some(source),
            LoadError::UnknownBundled(_)
            | LoadError::NotComponent { .. }
            | LoadError::Project(_) => None,
        }
    }
}
