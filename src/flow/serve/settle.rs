//! Settling batches: a closed batch's outputs sent by every sink; the
//! oldest batch in flight stored (retried while its broker is away), then
//! the inputs it settles acknowledged; what is held kept, what a stop
//! leaves handed back — the one owner of those calls on the connectors.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::intake::source_connector;
use super::unsettled::Unsettled;
use super::windows::{store_windows, take_windows};
use crate::error::Result;
use crate::flow::graph::Graph;
use crate::flow::slot::Slot;
use crate::flow::state::StateOptions;
use crate::flow::tracking::{by_source, InputKey};
use crate::flow::FlowSpec;
use crate::invoker::AsyncComponentInvoker;

/// How the driver waits for its sinks: the stop it watches, how long a
/// sink (or the store) that fails is retried, and where windows are stored.
pub(super) struct Waiting<'a> {
    pub(super) shutdown: &'a Option<tokio::sync::watch::Receiver<bool>>,
    pub(super) retry: Duration,
    pub(super) state: Option<&'a StateOptions>,
}

/// Closes a batch: the inputs it settles (those not `held`) marked, the
/// windows it leaves taken (with its inputs' `origins`) when there is a
/// store for them, and every sink connector's outputs sent (without
/// waiting for the broker).
pub(super) async fn close_batch<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    unsettled: &mut Unsettled,
    held: &BTreeSet<InputKey>,
    waiting: &Waiting<'_>,
    origins: &[String],
) -> Result<()> {
    let number = unsettled.close(held);
    let windows = match waiting.state.is_some() && !graph.windowing.is_empty() {
        true => take_windows(graph, origins, unsettled.carried()),
        false => None,
    };
    let mut sends = Vec::new();
    let spec: &FlowSpec = graph.spec;
    for (node, stage) in graph.stages.iter_mut().enumerate() {
        if let Some(Slot::Sink(sink)) = stage.as_mut().map(|stage| &mut *stage.slot) {
            let send = match sink.send().await {
                Ok(send) => send,
                Err(error) => {
                    // Kept by the sink: stored (or failing the run) when
                    // this batch is settled.
                    if let Some(stage) = stage.as_mut() {
                        stage.report.errors += 1;
                    }
                    tracing::warn!(flow = %spec.name, node = %spec.nodes[node].name,
                        %error, "sending outputs failed; retried when the batch is stored");
                    u64::MAX
                }
            };
            sends.push((node, send));
        }
    }
    unsettled.sent(number, sends, windows);
    Ok(())
}

/// Stores the oldest batch in flight, then acknowledges the inputs it
/// settles. `false`: a stop was asked for while the sinks could not store
/// it (nothing was acknowledged).
pub(super) async fn settle_oldest<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    unsettled: &mut Unsettled,
    waiting: &Waiting<'_>,
) -> Result<bool> {
    let Some(oldest) = unsettled.oldest() else {
        return Ok(true);
    };
    // Borrowed, not copied: the batch stays in `unsettled` until stored
    // (a batch's windows are all of its open windows, tens of KB).
    if !store(graph, &oldest.sends, waiting).await? {
        return Ok(false);
    }
    // With windows in a store every ack is confirmed, whether or not this
    // batch changed them: the stored value names only the last batch's
    // inputs, so an input must never come again once a later value is
    // stored (it would be folded twice).
    let confirm = match (&oldest.windows, waiting.state) {
        (Some(windows), Some(state)) => {
            if !store_windows_retrying(graph.spec, state, windows, waiting).await? {
                return Ok(false);
            }
            true
        }
        (None, Some(_)) => !graph.windowing.is_empty(),
        _ => false,
    };
    let settled = unsettled.stored_oldest();
    for (source, handles) in by_source(settled) {
        let connector = source_connector(graph, source)?;
        match confirm {
            true => connector.ack_confirmed(&handles).await?,
            false => connector.ack(&handles).await?,
        }
    }
    Ok(true)
}

/// Stores a batch's windows, retrying while the store fails for up to the
/// retry bound. `false`: a shutdown came first.
async fn store_windows_retrying(
    spec: &FlowSpec,
    state: &StateOptions,
    windows: &[u8],
    waiting: &Waiting<'_>,
) -> Result<bool> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        let Err(error) = store_windows(spec, state, windows).await else {
            return Ok(true);
        };
        if started.elapsed() >= waiting.retry {
            return Err(error);
        }
        tracing::warn!(flow = %spec.name, %error, "storing windows failed; retrying");
        if stop_requested(waiting.shutdown) {
            return Ok(false);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// Closes a batch of what is not yet in one (an upgraded aggregator's
/// flush, the end of the stream's), and settles everything in flight.
/// `false` as [`settle_oldest`].
pub(super) async fn settle_all<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    unsettled: &mut Unsettled,
    waiting: &Waiting<'_>,
) -> Result<bool> {
    let held = graph.tracking().held();
    close_batch(graph, unsettled, &held, waiting, &[]).await?;
    while unsettled.in_flight() > 0 {
        if !settle_oldest(graph, unsettled, waiting).await? {
            return Ok(false);
        }
    }
    graph.tracking().forget_settled(&held);
    Ok(true)
}

/// Stores every sink connector's outputs through its send in `sends`,
/// retrying while it fails (the broker away) for up to the retry bound.
/// `false`: a shutdown came first.
async fn store<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    sends: &[(usize, u64)],
    waiting: &Waiting<'_>,
) -> Result<bool> {
    let spec: &FlowSpec = graph.spec;
    for &(node, send) in sends {
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
            let flushed = sink.flush_through(send).await;
            report.latencies.record(started.elapsed());
            let Err(error) = flushed else {
                break;
            };
            report.errors += 1;
            if started.elapsed() >= waiting.retry {
                return Err(error);
            }
            tracing::warn!(flow = %spec.name, node = %spec.nodes[node].name,
                %error, "storing outputs failed; retrying");
            if stop_requested(waiting.shutdown) {
                return Ok(false);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
    Ok(true)
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
