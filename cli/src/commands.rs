//! `inspect`, `run` and `invoke`: each writes its report to `out`.

use std::io::Write;
use std::time::Duration;

use torvyn_engine::{
    CallPath, EngineConfig, ImportProvider, Interface, WasmEngine, WasmtimeEngine,
};

use crate::error::CliError;
use crate::load::compile;
use crate::output::{to_line, ExportDocument, Format, ImportDocument, InspectDocument, SCHEMA};

/// Limits given on the command line (of `run` and `invoke`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Fuel per call (turns fuel metering on).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Wall-clock deadline per call, in milliseconds (default 5000).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
}

pub(crate) fn engine(limits: &LimitArgs) -> Result<WasmtimeEngine, CliError> {
    engine_with(limits, EngineConfig::builder())
}

/// `--env KEY=VALUE` and `--dir HOST::GUEST[:ro]` (of `run` and `invoke`)
/// granted on `config`.
pub(crate) fn wasi_grants(
    mut config: torvyn_engine::EngineConfigBuilder,
    env: &[String],
    dirs: &[String],
) -> Result<torvyn_engine::EngineConfigBuilder, CliError> {
    for pair in env {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--env `{pair}`: expected KEY=VALUE")))?;
        config = config.wasi_env(key, value);
    }
    for dir in dirs {
        let (host, guest) = dir.split_once("::").ok_or_else(|| {
            CliError::Usage(format!(
                "--dir `{dir}`: expected HOST::GUEST or HOST::GUEST:ro"
            ))
        })?;
        let (guest, read_only) = match guest.strip_suffix(":ro") {
            Some(guest) => (guest, true),
            None => (guest, false),
        };
        config = config.wasi_preopen(host, guest, read_only);
    }
    Ok(config)
}

/// WASI grants of `invoke`: what `run`'s `--env` and `--dir` give.
#[derive(Debug, Clone, Default)]
pub struct WasiArgs {
    /// Environment variables granted (`KEY=VALUE`).
    pub env: Vec<String>,
    /// Directories granted (`HOST::GUEST[:ro]`).
    pub dirs: Vec<String>,
}

/// An engine with `limits` on top of `config`.
pub(crate) fn engine_with(
    limits: &LimitArgs,
    config: torvyn_engine::EngineConfigBuilder,
) -> Result<WasmtimeEngine, CliError> {
    // The command line's fuel is over a flow file's `[runtime]` one.
    let mut config = config;
    if let Some(fuel) = limits.fuel {
        config = config.fuel_per_call(Some(fuel));
    }
    if let Some(ms) = limits.deadline_ms {
        config = config.call_deadline(Some(Duration::from_millis(ms)));
    }
    Ok(WasmtimeEngine::new(config.build()?)?)
}

/// The contract world whose exports are exactly `interfaces`, if any.
fn world_match(interfaces: &[Interface]) -> Option<&'static str> {
    use Interface::*;
    let worlds: [(&str, &[Interface]); 9] = [
        ("torvyn:streaming/transform", &[Processor]),
        (
            "torvyn:streaming/managed-transform",
            &[Lifecycle, Processor],
        ),
        ("torvyn:streaming/data-source", &[Lifecycle, Source]),
        ("torvyn:streaming/data-sink", &[Lifecycle, Sink]),
        ("torvyn:filtering/content-filter", &[Lifecycle, Filter]),
        ("torvyn:filtering/content-router", &[Lifecycle, Router]),
        (
            "torvyn:aggregation/stream-aggregator",
            &[Lifecycle, Aggregator],
        ),
        (
            "torvyn:state/stateful-aggregator",
            &[Lifecycle, Aggregator, Snapshot],
        ),
        (
            "torvyn:windowing/windowed-aggregation",
            &[Lifecycle, Windowed],
        ),
    ];
    let mut sorted = interfaces.to_vec();
    sorted.sort();
    worlds
        .into_iter()
        .find(|(_, exports)| *exports == sorted.as_slice())
        .map(|(world, _)| world)
}

/// The name of a call path in JSON, and its reason.
pub(crate) fn path_name(path: &CallPath) -> (&'static str, Option<String>) {
    match path {
        CallPath::Typed => ("typed", None),
        CallPath::Dynamic(why) => ("dynamic", Some(why.clone())),
        CallPath::ByNameOnly(why) => ("by-name", Some(why.clone())),
        // A path a newer engine added: named by its debug form.
        other => ("other", Some(format!("{other:?}"))),
    }
}

/// `torvyn inspect <component>`: imports, exports, world match and the call
/// path of every export with the reason.
pub fn inspect(spec: &str, format: Format, out: &mut dyn Write) -> Result<(), CliError> {
    let engine = engine(&LimitArgs::default())?;
    let component = compile(&engine, spec)?;
    let mut stage_interfaces = Vec::new();
    for export in component.exports() {
        if let (Some(interface), CallPath::Typed | CallPath::Dynamic(_)) =
            (export.interface, &export.path)
        {
            stage_interfaces.push(interface);
        }
    }
    let world = world_match(&stage_interfaces);
    if format == Format::Json {
        let document = InspectDocument {
            kind: "inspect",
            schema: SCHEMA,
            component: component.name().to_string(),
            sha256: component.digest().to_string(),
            imports: component
                .import_providers()
                .into_iter()
                .map(|(name, provider)| {
                    let (provider, served_as) = match provider {
                        ImportProvider::Contract => ("contract", None),
                        ImportProvider::Wasi => ("wasi", None),
                        ImportProvider::ServedAs(contract) => {
                            ("served-as", Some(contract.to_string()))
                        }
                        ImportProvider::Custom => ("custom", None),
                        ImportProvider::Missing => ("missing", None),
                        other => ("other", Some(format!("{other:?}"))),
                    };
                    ImportDocument {
                        name: name.to_string(),
                        provider,
                        served_as,
                    }
                })
                .collect(),
            exports: component
                .exports()
                .iter()
                .map(|export| {
                    let (path, reason) = path_name(&export.path);
                    ExportDocument {
                        name: export.name.to_string(),
                        role: export.interface.map(Interface::role),
                        path,
                        reason,
                    }
                })
                .collect(),
            world: world.map(|world| format!("{world}@0.1.0")),
        };
        writeln!(out, "{}", to_line(&document))?;
        return Ok(());
    }
    writeln!(
        out,
        "component {} (sha256 {})",
        component.name(),
        component.digest()
    )?;
    writeln!(out, "imports:")?;
    for (import, provider) in component.import_providers() {
        let provider = match provider {
            ImportProvider::Contract => "host: contract".to_string(),
            ImportProvider::Wasi => "host: WASI 0.2, deny-by-default".to_string(),
            ImportProvider::ServedAs(contract) => format!("host: served as {contract}"),
            ImportProvider::Custom => "host: custom".to_string(),
            ImportProvider::Missing => "MISSING".to_string(),
            other => format!("host: {other:?}"),
        };
        writeln!(out, "  {import:<48} {provider}")?;
    }
    writeln!(out, "exports:")?;
    for export in component.exports() {
        let interface = export.interface.map_or("-", Interface::role);
        writeln!(out, "  {:<48} {interface:<10} {}", export.name, export.path)?;
    }
    match world {
        Some(world) => writeln!(out, "world: matches {world}@0.1.0")?,
        None if stage_interfaces.is_empty() => writeln!(out, "world: not a stream stage")?,
        None => writeln!(
            out,
            "world: no contract world exports exactly these interfaces"
        )?,
    }
    Ok(())
}

/// `torvyn invoke <component> '<func>(<wave args>)'`: prints the results in WAVE.
pub fn invoke(
    spec: &str,
    call: &str,
    limits: &LimitArgs,
    wasi: &WasiArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let config = wasi_grants(EngineConfig::builder(), &wasi.env, &wasi.dirs)?;
    let engine = engine_with(limits, config)?;
    let mut instance = engine.instantiate(&compile(&engine, spec)?)?;
    let result = match crate::contract_calls::windowed_call(&mut instance, call) {
        Some(result) => result?,
        None => instance.invoke(call)?,
    };
    writeln!(out, "{result}")?;
    Ok(())
}
