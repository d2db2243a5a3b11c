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
use crate::commands::{engine_with, wasi_grants, LimitArgs};
use crate::error::CliError;
use crate::output::{
    nodes_of, to_line, CopyDocument, ElementDocument, Format, RunDocument, UpgradeDocument, SCHEMA,
};
use crate::watch::{self, WatchTotals};

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
    /// Run each component project's build command first.
    pub build: bool,
    /// How the report is written.
    pub format: crate::output::Format,
    /// Upgrade nodes in place when their component files change (or on
    /// SIGHUP).
    pub watch: bool,
    /// Connector flows: stages' state kept in this directory across stops.
    pub state_dir: Option<PathBuf>,
    /// Connector flows: stages' state kept in this JetStream key-value
    /// bucket (on the server of the flow's first `nats` node).
    pub state_bucket: Option<String>,
}

/// What `torvyn run` runs: the flow, where its components are, and the
/// file it came from (its `[runtime]` settings), if any.
pub(crate) struct Chosen {
    pub(crate) spec: FlowSpec,
    pub(crate) locations: BTreeMap<String, String>,
    pub(crate) file: Option<FlowFile>,
}

impl Chosen {
    fn worker_threads(&self) -> Option<usize> {
        self.file.as_ref().and_then(|f| f.runtime.worker_threads)
    }
}

/// The flow to run and its components (name → location), from the file or
/// from the linear flags.
pub(crate) fn flow_of(args: &RunArgs) -> Result<Chosen, CliError> {
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
        if args.build {
            crate::project::build_all(&file, &mut std::io::stderr())?;
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
        let locations = crate::project::resolve_all(&file, &spec, &mut std::io::stderr())?;
        return Ok(Chosen {
            spec,
            locations,
            file: Some(file),
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
    if args.build {
        return Err(CliError::Usage(
            "--build is for a flow file's component projects".into(),
        ));
    }
    Ok(Chosen {
        spec,
        locations: components,
        file: None,
    })
}

/// The engine, with the flow file's `[runtime]` settings and the command
/// line's WASI grants and limits (over the file's).
pub(crate) fn engine(args: &RunArgs, file: Option<&FlowFile>) -> Result<WasmtimeEngine, CliError> {
    let mut config = EngineConfig::builder().wasi_inherit_stdio(args.inherit_stdio);
    if let Some(file) = file {
        config = file.engine_config(config);
    }
    engine_with(&args.limits, wasi_grants(config, &args.env, &args.dirs)?)
}

/// Compiles each component the flow uses, named as the flow names it.
pub(crate) fn compile_all(
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
    let chosen = flow_of(args)?;
    let worker_threads = chosen.worker_threads();
    let Chosen {
        spec,
        locations,
        file,
    } = chosen;
    let engine = engine(args, file.as_ref())?;
    let components = compile_all(&engine, &spec, &locations)?;
    let connected = spec.nodes.iter().any(|node| node.connector.is_some());
    if connected {
        if args.format == Format::Json {
            return Err(CliError::Usage(
                "--format json is for flows of components; a flow with connectors reports \
                 through --metrics (Prometheus) and its summary lines"
                    .into(),
            ));
        }
        if args.flows > 1 {
            return Err(CliError::Usage(
                "--flows is for flows of components; to share a stream's work, run more \
                 processes on the same consumer"
                    .into(),
            ));
        }
        return crate::serve::run_served(
            args,
            engine,
            spec,
            components,
            &locations,
            worker_threads,
            out,
        );
    }
    if args.partition.is_some() || args.metrics.is_some() || args.idle_timeout.is_some() {
        return Err(CliError::Usage(
            "--partition, --metrics and --idle-timeout are for flows with connector nodes".into(),
        ));
    }
    if args.state_dir.is_some() || args.state_bucket.is_some() {
        return Err(CliError::Usage(
            "--state-dir and --state-bucket are for flows with connector nodes: a flow of \
             components alone runs its sources from their start every time"
                .into(),
        ));
    }
    if args.flows > 1 {
        return run_copies(
            args,
            Arc::new(engine),
            spec,
            &components,
            &locations,
            worker_threads,
            out,
        );
    }
    let metered = metered(&engine, &spec);
    let json = args.format == Format::Json;
    let engine = Arc::new(engine);
    let watcher = args
        .watch
        .then(|| watch::start(args, engine.clone(), &spec, &locations, None));
    let mut flow = Flow::instantiate(&*engine, spec, &components)?;
    if let Some(count) = args.count {
        flow = flow.limit(count);
    }
    if let Some(watcher) = &watcher {
        let _ = watcher.upgraders().send(flow.upgrader());
    }
    let bar = (args.progress && !json).then(|| progress_bar(args.count));
    let mut bytes = 0u64;
    let mut printed = Vec::new();
    let started = Instant::now();
    let result = flow.run(|sink, element| {
        bytes += element.payload.len() as u64;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        if args.print {
            printed.push(match json {
                true => ElementDocument::line(0, sink, element),
                false => describe(sink, element),
            });
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let totals = watcher.map(watch::Watcher::finish);
    for line in &printed {
        writeln!(out, "{line}")?;
    }
    let upgrades = UpgradeDocument::of(0, flow.upgrades());
    let report = flow.report(started.elapsed());
    let dropped: u64 = report.nodes.iter().map(|n| n.dropped).sum();
    let fuel: u64 = report.nodes.iter().map(|n| n.fuel).sum();
    let rate = report.delivered() as f64 / report.elapsed.as_secs_f64().max(f64::EPSILON);
    if json {
        let document = RunDocument {
            kind: "run",
            schema: SCHEMA,
            flow: report.flow.clone(),
            copies: 1,
            delivered: report.delivered(),
            dropped,
            bytes,
            elements_per_second: rate,
            fuel: metered.then_some(fuel),
            error: result.as_ref().err().map(ToString::to_string),
            nodes: nodes_of([&report]),
            per_copy: vec![CopyDocument {
                copy: 0,
                delivered: report.delivered(),
                dropped,
                bytes,
                elements_per_second: rate,
            }],
            upgrades,
        };
        writeln!(out, "{}", to_line(&document))?;
        return result.map(drop).map_err(Into::into);
    }
    if let Err(error) = result {
        // What ran before the failure is still worth seeing.
        write_nodes(out, &report)?;
        write_upgrades(&mut std::io::stderr(), &upgrades, 1, totals)?;
        return Err(error.into());
    }
    writeln!(
        out,
        "elements: {} delivered, {dropped} dropped; bytes: {bytes}; {rate:.0} elements/s; fuel: {}; errors: 0",
        report.delivered(),
        if metered {
            fuel.to_string()
        } else {
            "not metered".into()
        },
    )?;
    write_nodes(out, &report)?;
    write_upgrades(out, &upgrades, 1, totals)?;
    Ok(())
}

/// With `--watch`: what the watcher handed over and what each upgrade did.
pub(crate) fn write_upgrades(
    out: &mut dyn Write,
    upgrades: &[UpgradeDocument],
    copies: usize,
    totals: Option<WatchTotals>,
) -> std::io::Result<()> {
    let Some(totals) = totals else {
        return Ok(());
    };
    let refused = upgrades.iter().filter(|u| u.failed.is_some()).count();
    writeln!(
        out,
        "upgrades: {} applied, {} refused by the flow, {} not handed over (see the watch lines)",
        upgrades.len() - refused,
        refused,
        totals.failed
    )?;
    for upgrade in upgrades {
        writeln!(out, "{}", upgrade.text(copies))?;
    }
    Ok(())
}

/// Whether fuel is counted: engine-wide or a node's own `fuel_budget`
/// (else the report says "not metered", not 0).
fn metered(engine: &WasmtimeEngine, spec: &FlowSpec) -> bool {
    engine.config().limits().fuel_per_call.is_some()
        || spec
            .nodes
            .iter()
            .any(|node| node.limits.fuel_per_call.is_some())
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
    if let Some(threads) = worker_threads.filter(|&threads| threads > 0) {
        builder.worker_threads(threads);
    }
    built(&mut builder)
}

/// The runtime `builder` makes, its failure in the CLI's words.
pub(crate) fn built(
    builder: &mut tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, CliError> {
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
    locations: &BTreeMap<String, String>,
    worker_threads: Option<usize>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let runtime = tokio_runtime(worker_threads)?;
    let watcher = args
        .watch
        .then(|| watch::start(args, engine.clone(), &spec, locations, None));
    let upgraders = watcher.as_ref().map(watch::Watcher::upgraders);
    let metered = metered(&engine, &spec);
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
            let json = args.format == Format::Json;
            let upgraders = upgraders.clone();
            flows.spawn(async move {
                let report = async {
                    let mut flow = Flow::instantiate_async(&*engine, spec, &components).await?;
                    if let Some(count) = count {
                        flow = flow.limit(count);
                    }
                    if let Some(upgraders) = &upgraders {
                        let _ = upgraders.send(flow.upgrader());
                    }
                    let mut bytes = 0u64;
                    let mut printed = Vec::new();
                    let report = flow
                        .run_async(|sink, element| {
                            bytes += element.payload.len() as u64;
                            if print {
                                printed.push(match json {
                                    true => ElementDocument::line(copy, sink, element),
                                    false => format!("flow {copy} {}", describe(sink, element)),
                                });
                            }
                        })
                        .await?;
                    let upgrades = UpgradeDocument::of(copy, flow.upgrades());
                    Ok::<_, torvyn_engine::Error>((report, bytes, printed, upgrades))
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
    let totals = watcher.map(watch::Watcher::finish);
    let elapsed = started.elapsed();
    let mut reports = reports
        .into_iter()
        .map(|(copy, report)| report.map(|report| (copy, report)))
        .collect::<Result<Vec<_>, _>>()?;
    // With `--print`: every copy's elements, copy by copy, then the counts.
    for (_, (_, _, printed, _)) in &reports {
        for line in printed {
            writeln!(out, "{line}")?;
        }
    }
    let delivered: u64 = reports.iter().map(|(_, (r, ..))| r.delivered()).sum();
    let total_rate = delivered as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    let per_copy: Vec<CopyDocument> = reports
        .iter()
        .map(|(copy, (report, bytes, ..))| CopyDocument {
            copy: *copy,
            delivered: report.delivered(),
            dropped: report.nodes.iter().map(|n| n.dropped).sum(),
            bytes: *bytes,
            elements_per_second: report.delivered() as f64
                / report.elapsed.as_secs_f64().max(f64::EPSILON),
        })
        .collect();
    let upgrades: Vec<UpgradeDocument> = reports
        .iter_mut()
        .flat_map(|(_, (.., upgrades))| std::mem::take(upgrades))
        .collect();
    if args.format == Format::Json {
        let nodes = nodes_of(reports.iter().map(|(_, (report, ..))| report));
        let document = RunDocument {
            kind: "run",
            schema: SCHEMA,
            flow: reports
                .first()
                .map_or_else(String::new, |(_, (r, ..))| r.flow.clone()),
            copies: args.flows,
            delivered,
            dropped: per_copy.iter().map(|c| c.dropped).sum(),
            bytes: per_copy.iter().map(|c| c.bytes).sum(),
            elements_per_second: total_rate,
            fuel: metered.then(|| nodes.iter().map(|n| n.fuel).sum()),
            error: None,
            nodes,
            per_copy,
            upgrades,
        };
        writeln!(out, "{}", to_line(&document))?;
        return Ok(());
    }
    for copy in &per_copy {
        writeln!(
            out,
            "flow {}: elements: {} delivered, {} dropped; bytes: {}; {:.0} elements/s",
            copy.copy, copy.delivered, copy.dropped, copy.bytes, copy.elements_per_second,
        )?;
    }
    writeln!(
        out,
        "total: {} flows, {delivered} elements delivered; {total_rate:.0} elements/s; errors: 0",
        args.flows,
    )?;
    write_upgrades(out, &upgrades, args.flows, totals)?;
    Ok(())
}
