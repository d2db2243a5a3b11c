//! Settling a batch: sinks flushed, then inputs acknowledged, kept (held
//! by an aggregator) or handed back — the one owner of those calls on the
//! source connectors.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use super::intake::source_connector;
use crate::error::Result;
use crate::flow::graph::Graph;
use crate::flow::slot::Slot;
use crate::flow::tracking::{by_source, InputKey};
use crate::flow::FlowSpec;
use crate::invoker::AsyncComponentInvoker;

/// After a batch: every sink connector flushed (retried while its broker
/// is away), then every pending input nothing holds acknowledged and what
/// is held kept from redelivery. `false`: a stop was asked for while the
/// sinks could not store their outputs (nothing was acknowledged).
pub(super) async fn settle<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    pending: &mut HashSet<InputKey>,
    shutdown: &Option<tokio::sync::watch::Receiver<bool>>,
    retry: Duration,
) -> Result<bool> {
    if !flush_sinks(graph, shutdown, retry).await? {
        return Ok(false);
    }
    let held = ack_settled(graph, pending).await?;
    keep_held(graph, held).await?;
    Ok(true)
}

/// Flushes every sink connector, retrying while it fails (the broker
/// away) for up to `sink_retry`. `false`: a shutdown came first.
pub(super) async fn flush_sinks<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    shutdown: &Option<tokio::sync::watch::Receiver<bool>>,
    retry: Duration,
) -> Result<bool> {
    let spec: &FlowSpec = graph.spec;
    for node in 0..spec.nodes.len() {
        let Some(stage) = graph.stages[node].as_mut() else {
            continue;
        };
        let Slot::Sink(sink) = &mut *stage.slot else {
            continue;
        };
        let report = &mut *stage.report;
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            let flushed = sink.flush().await;
            report.latencies.record(started.elapsed());
            let Err(error) = flushed else {
                break;
            };
            report.errors += 1;
            if started.elapsed() >= retry {
                return Err(error);
            }
            tracing::warn!(flow = %spec.name, node = %spec.nodes[node].name,
                %error, "storing outputs failed; retrying");
            if stop_requested(shutdown) {
                return Ok(false);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
    Ok(true)
}

/// Acknowledges every pending input no aggregator holds; returns what
/// is still held.
pub(super) async fn ack_settled<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    pending: &mut HashSet<InputKey>,
) -> Result<BTreeSet<InputKey>> {
    let held = graph.tracking().held();
    graph.tracking().forget_settled(&held);
    let settled: Vec<InputKey> = pending
        .iter()
        .filter(|key| !held.contains(key))
        .copied()
        .collect();
    for key in &settled {
        pending.remove(key);
    }
    for (source, handles) in by_source(settled) {
        source_connector(graph, source)?.ack(&handles).await?;
    }
    Ok(held)
}

/// Keeps what aggregators hold from being redelivered meanwhile.
pub(super) async fn keep_held<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    held: BTreeSet<InputKey>,
) -> Result<()> {
    for (source, handles) in by_source(held) {
        if let Ok(connector) = source_connector(graph, source) {
            connector.keep(&handles).await?;
        }
    }
    Ok(())
}

/// Hands `keys` back to their sources, unprocessed: they are delivered
/// again, here or to another worker.
pub(super) async fn release<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    keys: impl IntoIterator<Item = InputKey>,
) -> Result<()> {
    for (source, handles) in by_source(keys) {
        source_connector(graph, source)?.release(&handles).await?;
    }
    Ok(())
}

pub(super) fn stop_requested(shutdown: &Option<tokio::sync::watch::Receiver<bool>>) -> bool {
    shutdown.as_ref().is_some_and(|receiver| *receiver.borrow())
}
