//! `torvyn run FLOW --partitions N`: the flow's partitions shared out among
//! however many workers run it, by leases in a JetStream key-value bucket
//! ([`PartitionLeases`]). Each partition this worker holds runs as a flow
//! of its own (the flow as read, with `{partition}` = its number), on this
//! worker's runtime; a partition over this worker's share is stopped (its
//! batch in flight finished, its states stored) before its lease is
//! released, and one whose lease could not be renewed in time is dropped
//! at once. Its stages' states are scoped `FLOW.P`, as with `--partition
//! P`, so they move with the partition.
//!
//! The worker runs until SIGINT/SIGTERM: then every partition's flow stops
//! as a served flow does and the leases are released, for the others to
//! take at their next tick.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use torvyn_engine::connect::nats::PartitionLeases;
use torvyn_engine::connect::Connectors;
use torvyn_engine::flow::ServeReport;
use torvyn_engine::{
    CompiledComponent, Flow, FlowReport, FlowSpec, WasmtimeEngine, WasmtimeInstance,
};

use super::served::{serve_options, state_options, Service};
use super::watch::Shared;
use super::RunArgs;
use crate::error::CliError;
use crate::output::{write_nodes, write_summary};

/// How a partition's flow ended, for the report.
struct Served {
    partition: u32,
    /// Its report; or its error, with its nodes' report once it had any.
    outcome: Result<ServeReport, (torvyn_engine::Error, Option<FlowReport>)>,
    bytes: u64,
}

/// A partition's flow running on this worker.
struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Served>,
}

/// The lease bucket's name for flow `flow`: `TORVYN_LEASES_` and the
/// flow's name with anything but letters, digits, `-` and `_` as `_`.
fn default_bucket(flow: &str) -> String {
    let name: String = flow
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("TORVYN_LEASES_{name}")
}

/// What this worker runs every partition with: the flow as the file has
/// it (read once, `{partition}` not filled in), its engine and components.
struct Partitions<'a> {
    args: &'a RunArgs,
    spec: FlowSpec,
    engine: Arc<WasmtimeEngine>,
    components: Shared,
}

impl Partitions<'_> {
    /// Starts partition `partition`'s flow on this thread's task set.
    async fn start(&self, partition: u32) -> Result<Running, CliError> {
        let partition_text = partition.to_string();
        let mut spec = self.spec.clone();
        spec.substitute("partition", &partition_text);
        let components: BTreeMap<String, CompiledComponent> = self
            .components
            .lock()
            .map(|components| components.clone())
            .unwrap_or_default();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut options = serve_options(self.args, &self.engine, &self.components, stopped);
        options.state = state_options(self.args, &spec, Some(&partition_text)).await?;
        let engine = self.engine.clone();
        let print = self.args.print;
        let task = tokio::task::spawn_local(async move {
            let started = Instant::now();
            let mut bytes = 0u64;
            let flow: Result<Flow<WasmtimeInstance>, _> =
                Flow::instantiate_connected(&*engine, spec, &components, &Connectors::builtin())
                    .await;
            let mut flow = match flow {
                Ok(flow) => flow,
                Err(error) => {
                    return Served {
                        partition,
                        outcome: Err((error, None)),
                        bytes,
                    }
                }
            };
            let served = flow
                .serve(options, |sink, element| {
                    bytes += element.payload.len() as u64;
                    if print {
                        println!("[{partition}] {}", crate::output::describe(sink, element));
                    }
                })
                .await;
            let outcome = served.map_err(|error| (error, Some(flow.report(started.elapsed()))));
            Served {
                partition,
                outcome,
                bytes,
            }
        });
        Ok(Running { stop, task })
    }
}

/// Drops a partition whose lease was lost, mid-batch: another worker may
/// hold it already and have restored its stored states, so this one must
/// neither store its states once more (the other's would be overwritten
/// with older ones) nor acknowledge what it took (those inputs, folded only
/// into states it does not store, must come again to the new holder). What
/// it took is redelivered after the ack wait, as after a crash.
async fn abandon(running: Running) {
    running.task.abort();
    let _ = running.task.await;
}

/// Stops `running` (its batch in flight finished, its states stored) and
/// waits for it.
async fn stop(running: Running, partition: u32) -> Served {
    let _ = running.stop.send(true);
    match running.task.await {
        Ok(served) => served,
        Err(error) => Served {
            partition,
            outcome: Err((
                torvyn_engine::Error::Flow {
                    flow: format!("partition {partition}"),
                    detail: format!("its task ended abnormally: {error}"),
                },
                None,
            )),
            bytes: 0,
        },
    }
}

/// Runs a flow with connectors as this worker's share of `partitions`.
pub(crate) fn run_partitioned(
    args: &RunArgs,
    partitions: u32,
    service: Service,
    engine: WasmtimeEngine,
    spec: FlowSpec,
    components: BTreeMap<String, CompiledComponent>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    super::served::default_logging();
    let (node, mut connector) = super::served::first_nats_node(&spec).ok_or_else(|| {
        CliError::Usage(format!(
            "--partitions: flow `{}` has no `nats` node to keep the leases by",
            spec.name
        ))
    })?;
    // The leases are kept on partition 0's server (a `{partition}` in its
    // settings filled in as 0).
    connector.substitute("partition", "0");
    let bucket = args
        .lease_bucket
        .clone()
        .unwrap_or_else(|| default_bucket(&spec.name));
    let ttl = args.lease_ttl.unwrap_or(Duration::from_secs(10));
    let (runtime, signals) = service.into_parts();
    let shared: Shared = Arc::new(std::sync::Mutex::new(components));
    let context = Partitions {
        args,
        spec,
        engine: Arc::new(engine),
        components: shared,
    };
    let local = tokio::task::LocalSet::new();
    let ran = local.block_on(&runtime, async {
        let (stop_all, mut stopping) = tokio::sync::watch::channel(false);
        let signals = tokio::task::spawn_local(signals.stop_on_signal(stop_all));
        let mut leases = PartitionLeases::open(&node, &connector, &bucket, partitions, ttl).await?;
        if !args.quiet {
            eprintln!(
                "worker {}: {partitions} partitions, leases in bucket `{bucket}` (TTL {ttl:?})",
                leases.worker()
            );
        }
        let mut running: BTreeMap<u32, Running> = BTreeMap::new();
        let mut served: Vec<Served> = Vec::new();
        let quiet = args.quiet;
        let note = |text: String| {
            if !quiet {
                eprintln!("{text}");
            }
        };
        // Whatever ends the loop (a signal, a partition's error, a lease
        // that cannot be released), the flows still running are stopped
        // and the leases released below.
        let ended: Result<(), CliError> = async {
            loop {
                let mut to_release = Vec::new();
                match leases.tick().await {
                    Ok(changes) => to_release.extend_from_slice(changes.to_release()),
                    Err(error) => {
                        tracing::warn!(%error, "partition leases not renewed; retrying");
                        leases.expire_unrenewed();
                    }
                }
                // Whatever the tick said: run exactly what is held.
                let held: Vec<u32> = leases.held().collect();
                let lost: Vec<u32> = running
                    .keys()
                    .filter(|p| !held.contains(p))
                    .copied()
                    .collect();
                for partition in lost {
                    if let Some(flow) = running.remove(&partition) {
                        note(format!(
                            "partition {partition}: lease lost, abandoned (its batch in flight \
                             comes again to the new holder)"
                        ));
                        abandon(flow).await;
                    }
                }
                for partition in to_release {
                    if let Some(flow) = running.remove(&partition) {
                        served.push(stop(flow, partition).await);
                    }
                    leases.release(partition).await?;
                    note(format!("partition {partition}: released"));
                }
                for partition in leases.held().collect::<Vec<_>>() {
                    if let std::collections::btree_map::Entry::Vacant(slot) =
                        running.entry(partition)
                    {
                        slot.insert(context.start(partition).await?);
                        note(format!("partition {partition}: started"));
                    }
                }
                // A partition's flow that ended by itself: its sources ended
                // (its lease released for another to take), or it failed, which
                // ends the worker as a served flow's error does.
                let ended: Vec<u32> = running
                    .iter()
                    .filter(|(_, flow)| flow.task.is_finished())
                    .map(|(partition, _)| *partition)
                    .collect();
                let mut failed = false;
                for partition in ended {
                    if let Some(flow) = running.remove(&partition) {
                        let ended = stop(flow, partition).await;
                        failed |= ended.outcome.is_err();
                        served.push(ended);
                        leases.release(partition).await?;
                        note(format!("partition {partition}: ended, released"));
                    }
                }
                if failed {
                    return Ok(());
                }
                tokio::select! {
                    _ = tokio::time::sleep(leases.tick_every()) => {}
                    _ = stopping.changed() => return Ok(()),
                }
            }
        }
        .await;
        for (partition, flow) in std::mem::take(&mut running) {
            served.push(stop(flow, partition).await);
        }
        let released = leases.release_all().await;
        signals.abort();
        ended?;
        released?;
        Ok::<_, CliError>(served)
    });
    runtime.shutdown_background();
    let served = ran?;
    let mut failed = None;
    for Served {
        partition,
        outcome,
        bytes,
    } in served
    {
        writeln!(out, "partition {partition}:")?;
        match outcome {
            Ok(report) => write_summary(out, &report, bytes)?,
            Err((error, report)) => {
                if let Some(report) = &report {
                    write_nodes(out, report)?;
                }
                writeln!(out, "error: {error}")?;
                failed.get_or_insert(error);
            }
        }
    }
    match failed {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}
