//! The service's batches: take, forward, settle, until a stop; then the
//! end of the stream, or the stop's hand-back of what is not stored.

use std::time::Instant;

use super::counted::Counted;
use super::intake::{source_connector, take_batch};
use super::options::Counts;
use super::recover::recover;
use super::report::graph_connectors;
use super::settle::{
    close_batch, keep_held, release, settle_all, settle_oldest, stop_requested, Waiting,
};
use super::states::{remove_states, restore_states, save_states};
use super::unsettled::Unsettled;
use super::windows::{refuse_windows_without_store, remove_windows, restore_windows};
use super::{ServeOptions, Stop};
use crate::calls::AsyncCalls;
use crate::error::Result;
use crate::flow::graph::{input, Graph, Port};
use crate::flow::tracking::by_source;
use crate::invoker::{AsyncComponentInvoker, Element};

/// The batches of [`Flow::serve`](crate::flow::Flow::serve), until a stop;
/// returns why it stopped.
pub(in crate::flow) async fn run<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    options: &mut ServeOptions<I>,
    delivered: &mut (impl FnMut(&str, &Element) + Send),
    counts: &mut Counts,
) -> Result<Stop> {
    let started = Instant::now();
    let sources = graph.sources();
    let batch = options.batch.max(1);
    let in_flight = options.batches_in_flight.max(1);
    let mut ended = vec![false; graph.spec.nodes.len()];
    // Connector inputs taken and not yet settled, and the batches sent.
    let mut unsettled = Unsettled::default();
    let mut last_input = Instant::now();
    // Inputs the restored states already counted (see `counted.rs`).
    let mut counted = Counted::default();
    let windowed = !graph.windowing.is_empty();
    if let Some(state) = &options.state {
        counts.states_restored = restore_states(graph, state, &mut counted).await?;
        if windowed {
            if let Some(origins) = restore_windows(graph, state, &mut counted).await? {
                counts.states_restored += 1;
                unsettled.carry(origins);
            }
        }
    } else if windowed {
        refuse_windows_without_store(graph.spec)?;
    }
    let shutdown = options.shutdown.clone();
    let state = options.state.clone();
    let waiting = Waiting {
        shutdown: &shutdown,
        retry: options.sink_retry,
        state: state.as_ref(),
    };
    // The origins of this batch's inputs, stored with the windows.
    let mut origins = Vec::new();
    // Whether every output so far is stored: only then may a saved
    // state stand for the inputs it absorbed.
    let mut sinks_flushed = true;
    let mut stop = 'batches: loop {
        if stop_requested(&options.shutdown) {
            break Stop::Shutdown;
        }
        if graph.budget == 0 {
            break Stop::Limit;
        }
        let inputs = take_batch(graph, &sources, batch, &mut ended, &options.shutdown).await?;
        // Upgrades take over between batches: every input of the last
        // batch went through the old instance. Taken after the fetch,
        // which may have waited long for input: what was queued meanwhile
        // serves this batch.
        if graph.take_upgrades::<AsyncCalls>(delivered).await? > 0 {
            // What a replaced aggregator flushed is stored, and every
            // batch in flight settled, before this batch.
            if !settle_all(graph, &mut unsettled, &waiting).await? {
                // The batch taken goes back with what else is unsettled.
                for (source, _, handle, _) in &inputs {
                    if let Some(handle) = handle {
                        unsettled.take((*source, *handle));
                    }
                }
                sinks_flushed = false;
                break Stop::Shutdown;
            }
        }
        if inputs.is_empty() {
            // No input: what is in flight is settled now, not when the
            // next input comes.
            if !settle_all(graph, &mut unsettled, &waiting).await? {
                sinks_flushed = false;
                break Stop::Shutdown;
            }
            if sources.iter().all(|&source| ended[source]) {
                break Stop::Ended;
            }
            if options
                .idle_timeout
                .is_some_and(|idle| last_input.elapsed() >= idle)
            {
                break Stop::Idle;
            }
            let held = graph.tracking().held();
            keep_held(graph, held).await?;
            if let Some(observe) = &mut options.on_batch {
                // Idle too: the broker's counts (pending) stay current.
                observe(&graph.report(started.elapsed()), &graph_connectors(graph));
            }
            continue;
        }
        last_input = Instant::now();
        origins.clear();
        let mut recounted = Vec::new();
        for (source, element, handle, origin) in inputs {
            if let (Some(handle), true) = (handle, counted.contains(&origin)) {
                // Finished before a stop, its ack lost by the broker: the
                // restored state holds it already. Acknowledged again —
                // with windows, settled with this batch and named in its
                // windows value: that value replaces the one naming it, so
                // its ack must be confirmed before a later value is stored
                // (else, the ack lost again, it comes again to a value that
                // no longer names it and is folded twice).
                if windowed {
                    counts.already_counted += 1;
                    unsettled.take((source, handle));
                    unsettled.came_again(&origin);
                    origins.push(origin);
                } else {
                    recounted.push((source, handle));
                }
                continue;
            }
            let key = (source, handle.unwrap_or(element.meta.sequence));
            if handle.is_some() {
                unsettled.take(key);
                if windowed {
                    origins.push(origin.clone());
                }
            }
            graph.tracking().begin(key, &origin);
            if let Err(error) = input!(graph, AsyncCalls, source, element, delivered) {
                if handle.is_none() {
                    // A component source's element cannot come again.
                    return Err(error);
                }
                recover(graph, error, key, &mut unsettled, options, counts).await?;
            }
        }
        if !recounted.is_empty() {
            counts.already_counted += recounted.len() as u64;
            tracing::info!(flow = %graph.spec.name, inputs = recounted.len(),
                "inputs a restored state already counted came again; acknowledged, not counted");
            for (source, handles) in by_source(recounted) {
                source_connector(graph, source)?.ack(&handles).await?;
            }
        }
        // This batch's outputs leave now; the oldest batches are settled
        // while `batches_in_flight` are out, so that the next fetch and
        // processing overlap the broker's answers to the last one.
        // What aggregators hold now is held until the next batch: read
        // once for closing, forgetting the others' origins, and keeping.
        let held = graph.tracking().held();
        close_batch(graph, &mut unsettled, &held, &waiting, &origins).await?;
        while unsettled.in_flight() >= in_flight {
            if !settle_oldest(graph, &mut unsettled, &waiting).await? {
                sinks_flushed = false;
                break 'batches Stop::Shutdown;
            }
        }
        graph.tracking().forget_settled(&held);
        keep_held(graph, held).await?;
        if let Some(observe) = &mut options.on_batch {
            observe(&graph.report(started.elapsed()), &graph_connectors(graph));
        }
    };
    if stop != Stop::Shutdown {
        graph.finish::<AsyncCalls>(delivered).await?;
        if settle_all(graph, &mut unsettled, &waiting).await? {
            if let Some(state) = &options.state {
                // Flushed downstream and stored: the state was emitted.
                remove_states(graph, state).await?;
                if windowed {
                    remove_windows(graph.spec, state).await?;
                }
            }
        } else {
            // Aggregators flushed into sinks that did not store it.
            sinks_flushed = false;
            stop = Stop::Shutdown;
        }
    } else if sinks_flushed && !settle_all(graph, &mut unsettled, &waiting).await? {
        // The batches in flight at the stop could not be stored.
        sinks_flushed = false;
    }
    if stop == Stop::Shutdown {
        if let (Some(state), true) = (&options.state, sinks_flushed) {
            // What a stored state absorbed is acknowledged, not handed back.
            let (saved, absorbed) = save_states(graph, state, &counted).await;
            counts.states_saved = saved;
            let held = graph.tracking().held();
            let mut settled = Vec::new();
            for key in absorbed {
                if !held.contains(&key) && unsettled.remove(&key) {
                    settled.push(key);
                }
            }
            for (source, handles) in by_source(settled) {
                // Nothing downstream could tell a redelivery of these
                // from a new input: the broker must have the ack.
                source_connector(graph, source)?
                    .ack_confirmed(&handles)
                    .await?;
            }
        }
        // Held and unstored inputs go back to their sources: redelivered, not lost.
        release(graph, unsettled.drain()).await?;
    }
    // A fetch dropped at the shutdown may have taken inputs no batch saw.
    for &source in &sources {
        if let Ok(connector) = source_connector(graph, source) {
            connector.stop().await?;
        }
    }
    if let Some(observe) = &mut options.on_batch {
        observe(&graph.report(started.elapsed()), &graph_connectors(graph));
    }
    Ok(stop)
}
