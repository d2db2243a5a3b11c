//! `torvyn run` for a flow with connector nodes (NATS, files, stdio): a
//! service on a tokio runtime ([`Flow::serve`]) that runs until its sources
//! end, `--idle-timeout`, `--count`, or SIGINT/SIGTERM. On a signal it
//! finishes the batch in flight, hands back what aggregators hold (it is
//! redelivered), tears the stages down and exits 0.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use torvyn_engine::connect::nats::KvStateStore;
use torvyn_engine::connect::{ConnectorSpec, Connectors};
use torvyn_engine::flow::{DirStore, Respawn, ServeOptions, StateOptions, StateStore};
use torvyn_engine::{
    CompiledComponent, Flow, FlowSpec, WasmEngine, WasmtimeEngine, WasmtimeInstance,
};

use super::runtime::{built, tokio_runtime};
use super::watch::Shared;
use super::RunArgs;
use crate::error::CliError;
use crate::metrics::Metrics;
use crate::output::{describe, write_nodes, write_summary, write_upgrades, UpgradeDocument};

/// Whether the flow has a connector writing to this process's stdout (then
/// the summary goes to stderr, not into the data).
fn writes_stdout(spec: &FlowSpec) -> bool {
    spec.nodes
        .iter()
        .any(|node| node.connector.as_ref().is_some_and(|c| c.kind == "stdout"))
}

/// SIGINT and SIGTERM, listened for from the moment it is made (inside the
/// runtime, before the flow is instantiated): a signal that comes while
/// the worker is still starting stops it cleanly once it can, instead of
/// killing it by the signal's default action.
pub(super) struct StopSignals {
    #[cfg(unix)]
    listeners: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    fn listen() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let listeners = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some((term, int)),
                _ => None,
            };
            StopSignals { listeners }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Waits for SIGINT or SIGTERM, then asks the flow to stop.
    pub(super) async fn stop_on_signal(self, stop: tokio::sync::watch::Sender<bool>) {
        #[cfg(unix)]
        {
            let Some((mut term, mut int)) = self.listeners else {
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
        }
        let _ = stop.send(true);
    }
}

/// The runtime a served flow runs on, listening for SIGINT/SIGTERM from
/// the moment it exists: made before the components are compiled, so a
/// signal that comes while the worker is still starting (compiling can take
/// seconds) stops it cleanly once it can instead of killing it.
pub(crate) struct Service {
    runtime: tokio::runtime::Runtime,
    signals: StopSignals,
}

impl Service {
    /// One flow is one task: a current-thread runtime keeps it and the
    /// broker client's connection task on one thread (no hand-offs between
    /// threads per batch). `[runtime] worker_threads` > 1 asks for more.
    pub(crate) fn start(worker_threads: Option<usize>) -> Result<Service, CliError> {
        let runtime = match worker_threads {
            Some(threads) if threads > 1 => tokio_runtime(Some(threads))?,
            _ => built(tokio::runtime::Builder::new_current_thread().enable_all())?,
        };
        let signals = {
            let _inside = runtime.enter();
            StopSignals::listen()
        };
        Ok(Service { runtime, signals })
    }

    /// The runtime, and the signals it listens for.
    pub(super) fn into_parts(self) -> (tokio::runtime::Runtime, StopSignals) {
        (self.runtime, self.signals)
    }
}

/// A service's warnings (a broker away, a dead-lettered message) show
/// without --log; --log chooses another level.
pub(super) fn default_logging() {
    if !tracing::dispatcher::has_been_set() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// The flow's first `nats` node and its connector spec: the server a
/// state bucket or the partition leases are kept on.
pub(super) fn first_nats_node(spec: &FlowSpec) -> Option<(String, ConnectorSpec)> {
    spec.nodes.iter().find_map(|node| {
        let connector = node.connector.as_ref()?;
        (connector.kind == "nats").then(|| (node.name.clone(), connector.clone()))
    })
}

/// Runs a flow with connectors.
pub(crate) fn run_served(
    args: &RunArgs,
    service: Service,
    engine: WasmtimeEngine,
    spec: FlowSpec,
    components: BTreeMap<String, CompiledComponent>,
    locations: &BTreeMap<String, String>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    default_logging();
    let Service { runtime, signals } = service;
    let to_stderr = writes_stdout(&spec);
    let print = args.print;
    let started = Instant::now();
    let mut bytes = 0u64;
    let engine = Arc::new(engine);
    // Shared with the watcher: a node respawned after an upgrade gets the
    // new version.
    let shared: Shared = Arc::new(Mutex::new(components.clone()));
    let watcher = args
        .watch
        .then(|| super::watch::start(args, engine.clone(), &spec, locations, Some(shared.clone())));
    let ran = runtime.block_on(async {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let signals = tokio::spawn(signals.stop_on_signal(stop));
        let mut flow: Flow<WasmtimeInstance> =
            Flow::instantiate_connected(&*engine, spec, &components, &Connectors::builtin())
                .await?;
        if let Some(count) = args.count {
            flow = flow.limit(count);
        }
        if let Some(watcher) = &watcher {
            let _ = watcher.upgraders().send(flow.upgrader());
        }
        let mut options = serve_options(args, &engine, &shared, stopped);
        options.state = state_options(args, flow.spec(), args.partition.as_deref()).await?;
        let mut server = None;
        if let Some(address) = &args.metrics {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| CliError::Usage(format!("--metrics {address}: cannot listen: {e}")))?;
            let mut metrics = Metrics::new();
            metrics.watch_engine(engine.clone());
            let metrics = Arc::new(Mutex::new(metrics));
            server = Some(tokio::spawn(crate::metrics::serve(
                listener,
                metrics.clone(),
            )));
            options.on_batch = Some(Box::new(move |report, connectors| {
                if let Ok(mut metrics) = metrics.lock() {
                    metrics.update(report, connectors);
                }
            }));
        }
        let served = flow
            .serve(options, |sink, element| {
                bytes += element.payload.len() as u64;
                if print {
                    // As delivered: a service may run for days.
                    println!("{}", describe(sink, element));
                }
            })
            .await;
        signals.abort();
        if let Some(server) = server {
            server.abort();
        }
        let upgrades = UpgradeDocument::of(0, flow.upgrades());
        Ok::<_, CliError>((flow.report(started.elapsed()), served, upgrades))
    });
    // A stdin source's read is a blocking thread that may wait forever on
    // an open terminal or pipe: the runtime is not waited for on the way out.
    runtime.shutdown_background();
    let (report, served, upgrades) = ran?;
    let not_handed_over = watcher.map(|watcher| watcher.finish().failed);
    let mut stderr = std::io::stderr();
    let out: &mut dyn Write = if to_stderr { &mut stderr } else { out };
    match served {
        Err(error) => {
            write_nodes(out, &report)?;
            write_upgrades(out, &upgrades, 1, not_handed_over)?;
            Err(error.into())
        }
        Ok(served) => {
            write_summary(out, &served, bytes)?;
            write_upgrades(out, &upgrades, 1, not_handed_over)?;
            Ok(())
        }
    }
}

/// How a served flow runs, from the command line: batches, batches in
/// flight, `--idle-timeout`, stopped by `shutdown`, failed instances
/// respawned from `components` (the state store is the caller's).
pub(super) fn serve_options(
    args: &RunArgs,
    engine: &Arc<WasmtimeEngine>,
    components: &Shared,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> ServeOptions<WasmtimeInstance> {
    let mut options: ServeOptions<WasmtimeInstance> = ServeOptions::default();
    options.idle_timeout = args.idle_timeout;
    options.shutdown = Some(shutdown);
    options.respawn = Some(respawn(engine.clone(), components.clone()));
    if let Some(batch) = args.batch {
        options.batch = batch as usize;
    }
    if let Some(in_flight) = args.batches_in_flight {
        options.batches_in_flight = in_flight as usize;
    }
    options
}

/// Where stages keep their state (`--state-dir`, `--state-bucket`); keys
/// are scoped by the flow's name and the partition (`--partition`, or one
/// of `--partitions`), so partitions keep theirs apart.
pub(super) async fn state_options(
    args: &RunArgs,
    spec: &FlowSpec,
    partition: Option<&str>,
) -> Result<Option<StateOptions>, CliError> {
    let scope = match partition {
        Some(partition) => format!("{}.{partition}", spec.name),
        None => spec.name.clone(),
    };
    let store: Arc<dyn StateStore> = if let Some(dir) = &args.state_dir {
        Arc::new(DirStore::open(dir)?)
    } else if let Some(bucket) = &args.state_bucket {
        let (node, connector) = first_nats_node(spec).ok_or_else(|| {
            CliError::Usage(format!(
                "--state-bucket {bucket}: flow `{}` has no `nats` node to find the server by; \
                     use --state-dir",
                spec.name
            ))
        })?;
        Arc::new(KvStateStore::open(&node, &connector, bucket).await?)
    } else {
        return Ok(None);
    };
    Ok(Some(StateOptions::new(store, scope)))
}

/// A fresh instance of a node's component, for nodes whose instance failed.
pub(super) fn respawn(
    engine: Arc<WasmtimeEngine>,
    components: Shared,
) -> Respawn<WasmtimeInstance> {
    Box::new(move |node| {
        let (engine, components, name, limits) = (
            engine.clone(),
            components.clone(),
            node.component.clone(),
            node.limits,
        );
        Box::pin(async move {
            let component = components
                .lock()
                .ok()
                .and_then(|components| components.get(&name).cloned())
                .ok_or_else(|| torvyn_engine::Error::Flow {
                    flow: name.clone(),
                    detail: format!("component `{name}` is not compiled"),
                })?;
            // A respawned instance keeps the node's own limits.
            let component = engine.with_node_limits(&component, &limits)?;
            engine.instantiate_async(&component).await
        })
    })
}
