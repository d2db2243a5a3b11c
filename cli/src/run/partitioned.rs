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
use std::time::Duration;

use torvyn_engine::connect::nats::PartitionLeases;
use torvyn_engine::{CompiledComponent, FlowSpec, WasmtimeEngine};

use super::partition::{Outcome, Partitions, Running, Served};
use super::served::Service;
use super::watch::Shared;
use super::RunArgs;
use crate::error::CliError;
use crate::output::{write_nodes, write_summary};

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

/// This worker's partitions: running, and being stopped (asked to stop,
/// their leases renewed until they have, then released).
#[derive(Default)]
struct Held {
    running: BTreeMap<u32, Running>,
    stopping: BTreeMap<u32, Running>,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.running.is_empty() && self.stopping.is_empty()
    }

    fn has(&self, partition: u32) -> bool {
        self.running.contains_key(&partition) || self.stopping.contains_key(&partition)
    }

    /// Asks `partition` to stop, if it runs.
    fn stop(&mut self, partition: u32) {
        if let Some(flow) = self.running.remove(&partition) {
            flow.ask_to_stop();
            self.stopping.insert(partition, flow);
        }
    }

    /// Removes the flows whose tasks have ended (stopped, failed or
    /// dropped by their deadline).
    fn take_finished(&mut self) -> Vec<Running> {
        let mut finished = Vec::new();
        for flows in [&mut self.running, &mut self.stopping] {
            let ended: Vec<u32> = flows
                .iter()
                .filter(|(_, flow)| flow.is_finished())
                .map(|(partition, _)| *partition)
                .collect();
            finished.extend(ended.into_iter().filter_map(|p| flows.remove(&p)));
        }
        finished
    }
}

/// One lease request's bound: a server that does not answer must not keep
/// the loop from its next tick.
async fn bounded<T>(
    within: Duration,
    what: &str,
    request: impl std::future::Future<Output = torvyn_engine::Result<T>>,
) -> Option<T> {
    match tokio::time::timeout(within, request).await {
        Ok(Ok(answer)) => Some(answer),
        Ok(Err(error)) => {
            tracing::warn!(%error, "partition leases: {what} failed");
            None
        }
        Err(_) => {
            tracing::warn!("partition leases: {what}: no answer within {within:?}");
            None
        }
    }
}

/// Runs a flow with connectors as this worker's share of `partitions`.
///
/// The lease loop awaits nothing but bounded lease requests: partitions
/// start, stop and end on tasks of their own, and each drops itself when
/// its lease's renewal is overdue, so a server restarting under a
/// rebalance can delay this worker's ticks but never leaves it running a
/// partition another worker may have taken.
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
        let every = leases.tick_every();
        let mut held = Held::default();
        let mut served: Vec<Served> = Vec::new();
        let quiet = args.quiet;
        let note = |text: String| {
            if !quiet {
                eprintln!("{text}");
            }
        };
        // Set by a signal or a partition's failure: every partition is
        // stopped (its lease renewed meanwhile), nothing new started, and
        // the loop ends once none is left.
        let mut draining = false;
        let mut failure = None;
        loop {
            let to_release = match bounded(every, "a tick", leases.tick()).await {
                Some(changes) => changes.to_release().to_vec(),
                None => {
                    leases.expire_unrenewed();
                    Vec::new()
                }
            };
            // Run exactly what is held, whatever the tick said.
            let lost: Vec<u32> = held
                .running
                .keys()
                .chain(held.stopping.keys())
                .filter(|p| leases.held_until(**p).is_none())
                .copied()
                .collect();
            for partition in lost {
                let flow = held.running.remove(&partition);
                if let Some(flow) = flow.or_else(|| held.stopping.remove(&partition)) {
                    note(format!(
                        "partition {partition}: lease lost, abandoned (its batch in flight \
                         comes again to the new holder)"
                    ));
                    flow.abandon().await;
                }
            }
            for (partition, flow) in held.running.iter().chain(held.stopping.iter()) {
                if let Some(until) = leases.held_until(*partition) {
                    flow.held_until(until);
                }
            }
            if draining {
                let all: Vec<u32> = held.running.keys().copied().collect();
                all.into_iter().for_each(|p| held.stop(p));
            } else {
                to_release.into_iter().for_each(|p| held.stop(p));
            }
            for flow in held.take_finished() {
                let ended = flow.ended().await;
                let partition = ended.partition;
                match &ended.outcome {
                    // Its lease may still be renewed (the server answered
                    // late): it starts again below from its stored states.
                    Outcome::Abandoned => {
                        note(format!("partition {partition}: renewal overdue, abandoned"))
                    }
                    outcome => {
                        if matches!(outcome, Outcome::Failed(..)) && !draining {
                            draining = true;
                            failure = Some(partition);
                        }
                        let what = format!("releasing partition {partition}");
                        bounded(every, &what, leases.release(partition)).await;
                        note(format!("partition {partition}: stopped, released"));
                    }
                }
                served.push(ended);
            }
            let not_running: Vec<u32> = leases.held().filter(|p| !held.has(*p)).collect();
            for partition in not_running {
                if draining {
                    let what = format!("releasing partition {partition}");
                    bounded(every, &what, leases.release(partition)).await;
                } else if let Some(until) = leases.held_until(partition) {
                    // Not while its renewal is overdue: it would be dropped
                    // at once (the next tick renews it or loses it).
                    if until > std::time::Instant::now() {
                        held.running
                            .insert(partition, context.start(partition, until));
                        note(format!("partition {partition}: started"));
                    }
                }
            }
            if draining && held.is_empty() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stopping.changed(), if !draining => draining = true,
            }
        }
        if let Some(partition) = failure {
            note(format!("partition {partition} failed: the worker stops"));
        }
        let released = bounded(ttl, "releasing the leases", leases.release_all()).await;
        signals.abort();
        if released.is_none() && !quiet {
            eprintln!("leases not released: the others take them after the TTL");
        }
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
            Outcome::Served(report) => write_summary(out, &report, bytes)?,
            Outcome::Abandoned => writeln!(out, "abandoned: its lease's renewal was overdue")?,
            Outcome::Failed(error, report) => {
                if let Some(report) = &report {
                    write_nodes(out, report)?;
                }
                writeln!(out, "error: {error}")?;
                failed.get_or_insert(error);
            }
        }
    }
    match failed {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
