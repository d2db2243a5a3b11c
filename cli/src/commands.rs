//! `inspect`, `run` and `invoke`: each writes its report to `out`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use torvyn_engine::{
    CallPath, CompiledComponent, ComponentInvoker, EngineConfig, ImportProvider, Interface,
    Pipeline, WasmEngine, WasmtimeEngine,
};

use crate::bundled::{self, LoadError};

/// A failed command: what the process prints and its exit code.
#[derive(Debug)]
pub enum CliError {
    /// A component file could not be read (exit code 3).
    Load(LoadError),
    /// The engine or a component failed (exit code 1).
    Engine(torvyn_engine::Error),
    /// Writing the report failed (exit code 1).
    Output(std::io::Error),
    /// The async runtime could not run the flows (exit code 1).
    Runtime(String),
}

impl CliError {
    /// The process exit code: 1 engine or component failure, 3 unreadable input.
    /// (Usage errors exit with 2, from the argument parser.)
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Load(_) => 3,
            CliError::Engine(_) | CliError::Output(_) | CliError::Runtime(_) => 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Load(e) => e.fmt(f),
            CliError::Engine(e) => e.fmt(f),
            CliError::Output(e) => write!(f, "cannot write output: {e}"),
            CliError::Runtime(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Load(e) => e.source(),
            CliError::Engine(e) => std::error::Error::source(e),
            CliError::Output(e) => e.source(),
            CliError::Runtime(_) => None,
        }
    }
}

impl From<torvyn_engine::Error> for CliError {
    fn from(e: torvyn_engine::Error) -> Self {
        CliError::Engine(e)
    }
}

impl From<LoadError> for CliError {
    fn from(e: LoadError) -> Self {
        CliError::Load(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e)
    }
}

/// Limits given on the command line.
#[derive(Debug, Clone, Default)]
pub struct LimitArgs {
    /// Fuel per call.
    pub fuel: Option<u64>,
    /// Deadline per call, in milliseconds.
    pub deadline_ms: Option<u64>,
}

fn engine(limits: &LimitArgs) -> Result<WasmtimeEngine, CliError> {
    let mut config = EngineConfig::builder().fuel_per_call(limits.fuel);
    if let Some(ms) = limits.deadline_ms {
        config = config.call_deadline(Some(Duration::from_millis(ms)));
    }
    Ok(WasmtimeEngine::new(config.build()?)?)
}

fn compile(engine: &WasmtimeEngine, spec: &str) -> Result<CompiledComponent, CliError> {
    let (name, bytes) = bundled::load(spec)?;
    Ok(engine.compile(&name, &bytes)?)
}

/// The contract world whose exports are exactly `interfaces`, if any.
fn world_match(interfaces: &[Interface]) -> Option<&'static str> {
    use Interface::*;
    let worlds: [(&str, &[Interface]); 7] = [
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
    ];
    let mut sorted = interfaces.to_vec();
    sorted.sort();
    worlds
        .into_iter()
        .find(|(_, exports)| *exports == sorted.as_slice())
        .map(|(world, _)| world)
}

/// `torvyn inspect <component>`: imports, exports, world match and the call
/// path of every export with the reason.
pub fn inspect(spec: &str, out: &mut dyn Write) -> Result<(), CliError> {
    let engine = engine(&LimitArgs::default())?;
    let component = compile(&engine, spec)?;
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
        };
        writeln!(out, "  {import:<48} {provider}")?;
    }
    writeln!(out, "exports:")?;
    let mut stage_interfaces = Vec::new();
    for export in component.exports() {
        let interface = export.interface.map_or("-", Interface::role);
        writeln!(out, "  {:<48} {interface:<10} {}", export.name, export.path)?;
        if let (Some(interface), CallPath::Typed | CallPath::Dynamic(_)) =
            (export.interface, &export.path)
        {
            stage_interfaces.push(interface);
        }
    }
    match world_match(&stage_interfaces) {
        Some(world) => writeln!(out, "world: matches {world}@0.1.0")?,
        None if stage_interfaces.is_empty() => writeln!(out, "world: not a stream stage")?,
        None => writeln!(
            out,
            "world: no contract world exports exactly these interfaces"
        )?,
    }
    Ok(())
}

/// What `torvyn run` does.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// The source component.
    pub source: String,
    /// The processors, in order.
    pub processors: Vec<String>,
    /// The sink component.
    pub sink: String,
    /// Config text given to every stage's `init`.
    pub config: String,
    /// Stop after this many elements.
    pub count: Option<u64>,
    /// Copies of the flow run at once (as tokio tasks when more than one).
    pub flows: usize,
    /// Show a progress bar.
    pub progress: bool,
    /// Limits per call.
    pub limits: LimitArgs,
}

/// `torvyn run`: runs a pipeline and prints a summary line.
pub fn run(args: &RunArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if args.flows > 1 {
        return run_flows(args, out);
    }
    let engine = engine(&args.limits)?;
    let source = engine.instantiate(&compile(&engine, &args.source)?)?;
    let processors = args
        .processors
        .iter()
        .map(|spec| Ok(engine.instantiate(&compile(&engine, spec)?)?))
        .collect::<Result<Vec<_>, CliError>>()?;
    let sink = engine.instantiate(&compile(&engine, &args.sink)?)?;
    let mut pipeline = Pipeline::new(source, processors, sink);
    if let Some(count) = args.count {
        pipeline = pipeline.limit(count);
    }
    pipeline.init(&args.config)?;
    let bar = if args.progress {
        let bar = match args.count {
            Some(count) => indicatif::ProgressBar::new(count),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos} elements ({per_sec})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let result = pipeline.run(|_| {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = result?;
    pipeline.teardown()?;
    let (source, processors, sink) = pipeline.stages();
    let fuel = source.total_fuel_consumed()
        + processors
            .iter()
            .map(|p| p.total_fuel_consumed())
            .sum::<u64>()
        + sink.total_fuel_consumed();
    writeln!(
        out,
        "elements: {} delivered, {} dropped; bytes: {}; {:.0} elements/s; fuel: {}; errors: 0",
        report.delivered,
        report.dropped,
        report.bytes_delivered,
        report.elements_per_second(),
        if args.limits.fuel.is_some() {
            fuel.to_string()
        } else {
            "not metered".into()
        },
    )?;
    Ok(())
}

/// `torvyn run --flows N`: N copies of the flow, each a task on a
/// multi-thread tokio runtime, every stage call awaited.
fn run_flows(args: &RunArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let engine = Arc::new(engine(&args.limits)?);
    let source = compile(&engine, &args.source)?;
    let processors = args
        .processors
        .iter()
        .map(|spec| compile(&engine, spec))
        .collect::<Result<Vec<_>, CliError>>()?;
    let sink = compile(&engine, &args.sink)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the tokio runtime: {e}")))?;
    let started = std::time::Instant::now();
    let reports = runtime.block_on(async {
        let mut flows = tokio::task::JoinSet::new();
        for flow in 0..args.flows {
            let (engine, source, processors, sink) = (
                engine.clone(),
                source.clone(),
                processors.clone(),
                sink.clone(),
            );
            let (config, count) = (args.config.clone(), args.count);
            flows.spawn(async move {
                let report = async {
                    let mut stages = Vec::with_capacity(processors.len());
                    for processor in &processors {
                        stages.push(engine.instantiate_async(processor).await?);
                    }
                    let mut pipeline = Pipeline::new(
                        engine.instantiate_async(&source).await?,
                        stages,
                        engine.instantiate_async(&sink).await?,
                    );
                    if let Some(count) = count {
                        pipeline = pipeline.limit(count);
                    }
                    pipeline.init_async(&config).await?;
                    let report = pipeline.run_async(|_| {}).await?;
                    pipeline.teardown_async().await?;
                    Ok::<_, torvyn_engine::Error>(report)
                }
                .await;
                (flow, report)
            });
        }
        let mut reports = Vec::with_capacity(args.flows);
        while let Some(joined) = flows.join_next().await {
            reports
                .push(joined.map_err(|e| CliError::Runtime(format!("a flow task failed: {e}")))?);
        }
        reports.sort_by_key(|(flow, _)| *flow);
        Ok::<_, CliError>(reports)
    })?;
    let elapsed = started.elapsed();
    let mut delivered = 0;
    for (flow, report) in reports {
        let report = report?;
        delivered += report.delivered;
        writeln!(
            out,
            "flow {flow}: elements: {} delivered, {} dropped; bytes: {}; {:.0} elements/s",
            report.delivered,
            report.dropped,
            report.bytes_delivered,
            report.elements_per_second(),
        )?;
    }
    writeln!(
        out,
        "total: {} flows, {delivered} elements delivered; {:.0} elements/s; errors: 0",
        args.flows,
        delivered as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
    )?;
    Ok(())
}

/// `torvyn invoke <component> '<func>(<wave args>)'`: prints the results in WAVE.
pub fn invoke(
    spec: &str,
    call: &str,
    limits: &LimitArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let engine = engine(limits)?;
    let mut instance = engine.instantiate(&compile(&engine, spec)?)?;
    let result = instance.invoke(call)?;
    writeln!(out, "{result}")?;
    Ok(())
}
