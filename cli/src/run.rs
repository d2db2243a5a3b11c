//! `torvyn run`: a flow from a flow file, or the linear shortcut
//! (`--source`, `--processor`..., `--sink`), on the sync driver or as N
//! concurrent copies on tokio; prints a summary, a per-node report and,
//! with `--print`, every delivered element.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use torvyn_engine::flow::file::FlowFile;
use torvyn_engine::flow::NodeSpec;
use torvyn_engine::{
    CompiledComponent, Element, EngineConfig, Flow, FlowReport, FlowSpec, Interface, WasmtimeEngine,
};

use crate::bundled;
use crate::commands::{engine_with, CliError, LimitArgs};

/// What `torvyn run` does.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    /// A flow file; when given, the linear flags must not be.
    pub flow_file: Option<PathBuf>,
    /// Which flow of the file (needed when it has several).
    pub flow: Option<String>,
    /// The linear shortcut's source component.
    pub source: Option<String>,
    /// Its processors, in order.
    pub processors: Vec<String>,
    /// Its sink component.
    pub sink: Option<String>,
    /// Configs of the linear shortcut: one for every stage, or one per
    /// stage in order (source, processors, sink).
    pub configs: Vec<String>,
    /// Stop after this many elements (over all sources).
    pub count: Option<u64>,
    /// Copies of the flow run at once (as tokio tasks when more than one).
    pub flows: usize,
    /// Print each delivered element.
    pub print: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Limits per call.
    pub limits: LimitArgs,
    /// WASI: the guests' stdio is this process's.
    pub inherit_stdio: bool,
    /// WASI: environment variables granted (`KEY=VALUE`).
    pub env: Vec<String>,
    /// WASI: directories granted (`HOST::GUEST[:ro]`).
    pub dirs: Vec<String>,
    /// Connector flows: end after this long without an input.
    pub idle_timeout: Option<Duration>,
    /// Connector flows: fills `{partition}` in connector settings.
    pub partition: Option<String>,
    /// Connector flows: serve Prometheus metrics on this address.
    pub metrics: Option<String>,
    /// Connector flows: most inputs per batch from each source.
    pub batch: Option<usize>,
}

/// What `torvyn run` runs: the flow, where its components are, and the
/// file's `[runtime] worker_threads`.
struct Chosen {
    spec: FlowSpec,
    locations: BTreeMap<String, String>,
    worker_threads: Option<usize>,
}

/// The flow to run and its components (name → location), from the file or
/// from the linear flags.
fn flow_of(args: &RunArgs) -> Result<Chosen, CliError> {
    if let Some(path) = &args.flow_file {
        if args.source.is_some() || args.sink.is_some() || !args.processors.is_empty() {
            return Err(CliError::Usage(
                "give either a flow file or --source/--processor/--sink, not both".into(),
            ));
        }
        if !args.configs.is_empty() {
            return Err(CliError::Usage(
                "--config is for the linear shortcut; a flow file gives each node its config"
                    .into(),
            ));
        }
        let mut file = FlowFile::read(path)?;
        if let Some(partition) = &args.partition {
            file.substitute("partition", partition);
        }
        let spec = file.flow(args.flow.as_deref())?.clone();
        for node in &spec.nodes {
            let Some(connector) = &node.connector else {
                continue;
            };
            if let Some((key, _)) = connector
                .settings
                .iter()
                .find(|(_, value)| value.contains("{partition}"))
            {
                return Err(CliError::Usage(format!(
                    "node `{}`: setting `{key}` names {{partition}}: give --partition",
                    node.name
                )));
            }
        }
        return Ok(Chosen {
            spec,
            locations: file.components,
            worker_threads: file.worker_threads,
        });
    }
    let (Some(source), Some(sink)) = (&args.source, &args.sink) else {
        return Err(CliError::Usage(
            "give a flow file, or at least --source and --sink".into(),
        ));
    };
    let stages: Vec<(String, &String, Interface)> =
        std::iter::once(("source".to_string(), source, Interface::Source))
            .chain(
                args.processors
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("processor-{}", i + 1), p, Interface::Processor)),
            )
            .chain(std::iter::once(("sink".to_string(), sink, Interface::Sink)))
            .collect();
    let config = |i: usize| -> Result<String, CliError> {
        match args.configs.len() {
            0 => Ok(String::new()),
            1 => Ok(args.configs[0].clone()),
            n if n == stages.len() => Ok(args.configs[i].clone()),
            n => Err(CliError::Usage(format!(
                "{n} --config values for {} stages: give one for all, or one per stage",
                stages.len()
            ))),
        }
    };
    let mut nodes = Vec::new();
    let mut components = BTreeMap::new();
    for (i, (name, location, role)) in stages.iter().enumerate() {
        components.insert(name.clone(), (*location).clone());
        nodes.push(NodeSpec::component(name, name, *role, &config(i)?));
    }
    let sink = nodes.pop().expect("the linear shortcut has a sink");
    let source = nodes.remove(0);
    let spec = FlowSpec::linear(source, nodes, sink);
    Ok(Chosen {
        spec,
        locations: components,
        worker_threads: None,
    })
}

/// The engine, with the WASI grants of the command line.
fn engine(args: &RunArgs) -> Result<WasmtimeEngine, CliError> {
    let mut config = EngineConfig::builder().wasi_inherit_stdio(args.inherit_stdio);
    for pair in &args.env {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--env `{pair}`: expected KEY=VALUE")))?;
        config = config.wasi_env(key, value);
    }
    for dir in &args.dirs {
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
    engine_with(&args.limits, config)
}

/// Compiles each component the flow uses, named as the flow names it.
fn compile_all(
    engine: &WasmtimeEngine,
    spec: &FlowSpec,
    locations: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, CompiledComponent>, CliError> {
    let mut compiled = BTreeMap::new();
    for node in &spec.nodes {
        if compiled.contains_key(&node.component) {
            continue;
        }
        // A component the file does not declare is named by the flow's own error.
        let Some(location) = locations.get(&node.component) else {
            continue;
        };
        let (_, bytes) = bundled::load(location)?;
        compiled.insert(
            node.component.clone(),
            crate::commands::compile_file(engine, &node.component, location, &bytes)?,
        );
    }
    Ok(compiled)
}

/// `torvyn run`.
pub fn run(args: &RunArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let Chosen {
        spec,
        locations,
        worker_threads,
    } = flow_of(args)?;
    let engine = engine(args)?;
    let components = compile_all(&engine, &spec, &locations)?;
    let connected = spec.nodes.iter().any(|node| node.connector.is_some());
    if connected {
        if args.flows > 1 {
            return Err(CliError::Usage(
                "--flows is for flows of components; to share a stream's work, run more \
                 processes on the same consumer"
                    .into(),
            ));
        }
        return crate::serve::run_served(args, engine, spec, components, worker_threads, out);
    }
    if args.partition.is_some() || args.metrics.is_some() || args.idle_timeout.is_some() {
        return Err(CliError::Usage(
            "--partition, --metrics and --idle-timeout are for flows with connector nodes".into(),
        ));
    }
    if args.flows > 1 {
        return run_copies(
            args,
            Arc::new(engine),
            spec,
            &components,
            worker_threads,
            out,
        );
    }
    let mut flow = Flow::instantiate(&engine, spec, &components)?;
    if let Some(count) = args.count {
        flow = flow.limit(count);
    }
    let bar = args.progress.then(|| progress_bar(args.count));
    let mut bytes = 0u64;
    let mut printed = Vec::new();
    let started = Instant::now();
    let result = flow.run(|sink, element| {
        bytes += element.payload.len() as u64;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        if args.print {
            printed.push(describe(sink, element));
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    for line in &printed {
        writeln!(out, "{line}")?;
    }
    let report = flow.report(started.elapsed());
    if let Err(error) = result {
        // What ran before the failure is still worth seeing.
        write_nodes(out, &report)?;
        return Err(error.into());
    }
    let dropped: u64 = report.nodes.iter().map(|n| n.dropped).sum();
    let fuel: u64 = report.nodes.iter().map(|n| n.fuel).sum();
    writeln!(
        out,
        "elements: {} delivered, {dropped} dropped; bytes: {bytes}; {:.0} elements/s; fuel: {}; errors: 0",
        report.delivered(),
        report.delivered() as f64 / report.elapsed.as_secs_f64().max(f64::EPSILON),
        if args.limits.fuel.is_some() {
            fuel.to_string()
        } else {
            "not metered".into()
        },
    )?;
    write_nodes(out, &report)?;
    Ok(())
}

/// One printed element: `[sink] #sequence content-type "payload"`.
pub(crate) fn describe(sink: &str, element: &Element) -> String {
    let payload = String::from_utf8_lossy(&element.payload);
    let shown: String = payload.chars().take(120).collect();
    let more = if payload.chars().count() > 120 {
        "…"
    } else {
        ""
    };
    format!(
        "[{sink}] #{:<5} {:<12} {shown:?}{more}",
        element.meta.sequence, element.meta.content_type
    )
}

/// The per-node report.
pub(crate) fn write_nodes(out: &mut dyn Write, report: &FlowReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:<10} {:>9} {:>9} {:>8} {:>6} {:>12} {:>10} {:>10}",
        "node", "role", "in", "out", "dropped", "errors", "fuel", "p50", "p99"
    )?;
    for node in &report.nodes {
        writeln!(
            out,
            "{:<16} {:<10} {:>9} {:>9} {:>8} {:>6} {:>12} {:>10} {:>10}",
            node.name,
            node.role.role(),
            node.elements_in,
            node.elements_out,
            node.dropped,
            node.errors,
            node.fuel,
            format_duration(node.p50()),
            format_duration(node.p99()),
        )?;
    }
    Ok(())
}

fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    match nanos {
        0 => "-".into(),
        n if n < 10_000 => format!("{n} ns"),
        n if n < 10_000_000 => format!("{} µs", n / 1_000),
        n => format!("{} ms", n / 1_000_000),
    }
}

fn progress_bar(count: Option<u64>) -> indicatif::ProgressBar {
    let bar = match count {
        Some(count) => indicatif::ProgressBar::new(count),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos} elements ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// A multi-thread tokio runtime with the flow file's `[runtime]
/// worker_threads`, else one worker per core.
pub(crate) fn tokio_runtime(
    worker_threads: Option<usize>,
) -> Result<tokio::runtime::Runtime, CliError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = worker_threads {
        builder.worker_threads(threads.max(1));
    }
    builder
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the tokio runtime: {e}")))
}

/// `--flows N`: N copies of the flow, each a task on a multi-thread tokio
/// runtime, every stage call awaited.
fn run_copies(
    args: &RunArgs,
    engine: Arc<WasmtimeEngine>,
    spec: FlowSpec,
    components: &BTreeMap<String, CompiledComponent>,
    worker_threads: Option<usize>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let runtime = tokio_runtime(worker_threads)?;
    let started = Instant::now();
    let reports = runtime.block_on(async {
        let mut flows = tokio::task::JoinSet::new();
        for copy in 0..args.flows {
            let (engine, spec, components, count, print) = (
                engine.clone(),
                spec.clone(),
                components.clone(),
                args.count,
                args.print,
            );
            flows.spawn(async move {
                let report = async {
                    let mut flow = Flow::instantiate_async(&*engine, spec, &components).await?;
                    if let Some(count) = count {
                        flow = flow.limit(count);
                    }
                    let mut bytes = 0u64;
                    let mut printed = Vec::new();
                    let report = flow
                        .run_async(|sink, element| {
                            bytes += element.payload.len() as u64;
                            if print {
                                printed.push(format!("flow {copy} {}", describe(sink, element)));
                            }
                        })
                        .await?;
                    Ok::<_, torvyn_engine::Error>((report, bytes, printed))
                }
                .await;
                (copy, report)
            });
        }
        let mut reports = Vec::with_capacity(args.flows);
        while let Some(joined) = flows.join_next().await {
            reports
                .push(joined.map_err(|e| CliError::Runtime(format!("a flow task failed: {e}")))?);
        }
        reports.sort_by_key(|(copy, _)| *copy);
        Ok::<_, CliError>(reports)
    })?;
    let elapsed = started.elapsed();
    let reports = reports
        .into_iter()
        .map(|(copy, report)| report.map(|report| (copy, report)))
        .collect::<Result<Vec<_>, _>>()?;
    // With `--print`: every copy's elements, copy by copy, then the counts.
    for (_, (_, _, printed)) in &reports {
        for line in printed {
            writeln!(out, "{line}")?;
        }
    }
    let mut delivered = 0;
    for (copy, (report, bytes, _)) in reports {
        delivered += report.delivered();
        writeln!(
            out,
            "flow {copy}: elements: {} delivered, {} dropped; bytes: {bytes}; {:.0} elements/s",
            report.delivered(),
            report.nodes.iter().map(|n| n.dropped).sum::<u64>(),
            report.delivered() as f64 / report.elapsed.as_secs_f64().max(f64::EPSILON),
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
