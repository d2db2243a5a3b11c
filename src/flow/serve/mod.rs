//! The service driver, [`Flow::serve`]: flows whose sources or sinks are
//! connectors ([`crate::connect`]), run in batches until their sources end,
//! they stay idle, a limit is reached, or they are told to stop.
//!
//! One batch: take up to `batch` inputs from every source; send each
//! through the graph (the same depth-first forwarding as [`Flow::run`]);
//! flush every sink connector (retried while the broker is away); then
//! acknowledge every input of the batch that no aggregator still holds.
//! What an aggregator absorbed stays unacknowledged (kept alive after every
//! batch) until the aggregate holding it is stored.
//!
//! A failing input (guest error, trap, limit) is handed back to its source
//! to be redelivered or dead-lettered ([`SourceConnector::fail`]); a node
//! whose instance the failure poisoned gets a fresh one from
//! [`ServeOptions::respawn`] (inited with its config) and the flow goes on.
//! What a replaced aggregator held is handed back too: its state is gone, so
//! those inputs must come again.
//!
//! At a stop on request ([`ServeOptions::shutdown`]) the batch in flight is
//! finished and stored, what is still held is handed back
//! ([`SourceConnector::release`]: redelivered, not lost) and aggregators are
//! not flushed. At the end of the stream (sources ended, idle, limit)
//! aggregators flush, sinks complete and everything is acknowledged.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use super::state::{state_key, StateOptions};
use super::{pull_one, report_of, Flow, FlowReport, FlowSpec, Graph, NodeSpec, PauseCounts, Slot};
use crate::calls::{AsyncCalls, Calls};
use crate::connect::{Failed, Fetched};
use crate::error::{Error, Result};
use crate::flow::now_ns;
use crate::interfaces::Interface;
use crate::invoker::{AsyncComponentInvoker, Element};

mod options;

use super::tracking::{by_source, InputKey, Tracking};
pub use options::{ConnectorReport, Respawn, ServeOptions, ServeReport, Stop};

/// A connector's fetch, given up when a stop is asked for meanwhile (a
/// source waiting on stdin or an idle broker must not hold the shutdown).
async fn fetch_or_stop(
    connector: &mut Box<dyn crate::connect::SourceConnector>,
    max: usize,
    shutdown: &Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<Fetched> {
    let Some(shutdown) = shutdown else {
        return connector.fetch(max).await;
    };
    let mut shutdown = shutdown.clone();
    // (`wait_for`'s guard is not `Send`: only whether it came is kept.)
    let asked = async move { shutdown.wait_for(|stop| *stop).await.is_ok() };
    tokio::select! {
        fetched = connector.fetch(max) => fetched,
        asked = asked => if asked {
            Ok(Fetched::Idle)
        } else {
            // Nobody can ask any more: only the fetch can end this wait.
            connector.fetch(max).await
        },
    }
}

fn stop_requested(shutdown: &Option<tokio::sync::watch::Receiver<bool>>) -> bool {
    shutdown.as_ref().is_some_and(|receiver| *receiver.borrow())
}

/// Counters of one run of [`Flow::serve`].
#[derive(Default)]
struct Counts {
    failed_inputs: u64,
    respawned: u64,
    states_restored: u64,
    states_saved: u64,
}

impl<I: AsyncComponentInvoker> Flow<I> {
    /// Whether any node is a connector.
    pub fn has_connectors(&self) -> bool {
        self.slots
            .iter()
            .any(|slot| matches!(slot, Slot::Source(_) | Slot::Sink(_)))
    }

    /// Runs the flow as a service: inputs in batches from every source;
    /// after each batch every sink connector is flushed (retried while its
    /// broker is away), then every input nothing holds any more is
    /// acknowledged. An aggregator's inputs are held (kept alive with
    /// [`SourceConnector::keep`](crate::connect::SourceConnector::keep))
    /// until the aggregate carrying them is stored. A failing input goes
    /// back to its source (retried or dead-lettered), and a poisoned
    /// instance is replaced through [`ServeOptions::respawn`]. At a
    /// requested stop the batch in flight is stored and what is held is
    /// handed back ([`SourceConnector::release`](crate::connect::SourceConnector::release));
    /// at the end of the stream aggregators flush and everything is acked.
    /// `delivered(sink, element)` sees every element a sink accepted.
    ///
    /// # Errors
    ///
    /// A connector that fails outright (its fetch, an ack, a sink that stays
    /// unreachable past [`ServeOptions::sink_retry`]), a component source or
    /// an `init` that fails, or a node failure with no
    /// [`ServeOptions::respawn`]. Failures of single inputs are not errors:
    /// they are retried or dead-lettered and counted.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: use [`ServeOptions::shutdown`] to stop. A dropped
    /// future loses nothing the broker holds (unacknowledged inputs are
    /// redelivered after their ack wait) but skips every `teardown`.
    pub async fn serve(
        &mut self,
        mut options: ServeOptions<I>,
        mut delivered: impl FnMut(&str, &Element) + Send,
    ) -> Result<ServeReport> {
        let started = Instant::now();
        let mut counts = Counts::default();
        let mut result = self.init_with::<AsyncCalls>().await;
        let mut stop = Stop::Ended;
        if result.is_ok() {
            let pauses = PauseCounts::new(self.spec.nodes.len());
            let mut graph = self.graph(&pauses, Some(Tracking::new(self.spec.nodes.len())));
            result = graph
                .serve_inputs(&mut options, &mut delivered, &mut counts)
                .await
                .map(|stopped| stop = stopped);
        }
        let teardown = self.teardown_with::<AsyncCalls>().await;
        result.and(teardown)?;
        Ok(ServeReport {
            flow: self.report(started.elapsed()),
            connectors: self.connector_reports(),
            stop,
            failed_inputs: counts.failed_inputs,
            respawned: counts.respawned,
            states_restored: counts.states_restored,
            states_saved: counts.states_saved,
        })
    }

    fn connector_reports(&self) -> Vec<ConnectorReport> {
        connector_reports(
            self.spec.nodes.iter().zip(self.slots.iter()),
            &self.plan.order,
        )
    }
}

fn connector_reports<'a, I: 'a>(
    nodes: impl Iterator<Item = (&'a NodeSpec, &'a Slot<I>)>,
    order: &[usize],
) -> Vec<ConnectorReport> {
    let mut reports: Vec<(usize, ConnectorReport)> = nodes
        .enumerate()
        .filter_map(|(index, (node, slot))| {
            let stats = match slot {
                Slot::Source(source) => source.stats(),
                Slot::Sink(sink) => sink.stats(),
                Slot::Component(_) => return None,
            };
            Some((
                order.iter().position(|&i| i == index).unwrap_or(index),
                ConnectorReport {
                    node: node.name.clone(),
                    kind: node
                        .connector
                        .as_ref()
                        .map_or_else(String::new, |c| c.kind.clone()),
                    role: node.role,
                    stats,
                },
            ))
        })
        .collect();
    reports.sort_by_key(|(position, _)| *position);
    reports.into_iter().map(|(_, report)| report).collect()
}

/// The scope of the flow's state keys: the options', else the flow's name.
fn scope_of<'s>(spec: &'s FlowSpec, state: &'s StateOptions) -> &'s str {
    match state.scope.is_empty() {
        true => &spec.name,
        false => &state.scope,
    }
}

impl<'a, I: AsyncComponentInvoker> Graph<'a, I> {
    fn tracking(&mut self) -> &mut Tracking {
        self.tracking
            .as_mut()
            .expect("the service driver always tracks inputs")
    }

    /// The batches, until a stop; returns why it stopped.
    async fn serve_inputs(
        &mut self,
        options: &mut ServeOptions<I>,
        delivered: &mut (impl FnMut(&str, &Element) + Send),
        counts: &mut Counts,
    ) -> Result<Stop> {
        let started = Instant::now();
        let sources = self.sources();
        let batch = options.batch.max(1);
        let mut ended = vec![false; self.spec.nodes.len()];
        // Connector inputs taken and not yet settled.
        let mut pending: HashSet<InputKey> = HashSet::new();
        let mut last_input = Instant::now();
        if let Some(state) = &options.state {
            counts.states_restored = self.restore_states(state).await?;
        }
        // Whether every output so far is stored: only then may a saved
        // state stand for the inputs it absorbed.
        let mut sinks_flushed = true;
        let mut stop = loop {
            if stop_requested(&options.shutdown) {
                break Stop::Shutdown;
            }
            if self.budget == 0 {
                break Stop::Limit;
            }
            let inputs = self
                .take_batch(&sources, batch, &mut ended, &options.shutdown)
                .await?;
            // Upgrades take over between batches: every input of the last
            // batch went through the old instance and is settled. Taken
            // after the fetch, which may have waited long for input: what
            // was queued meanwhile serves this batch.
            if self.take_upgrades::<AsyncCalls>(delivered).await? > 0 {
                // What a replaced aggregator flushed is stored, and the
                // inputs it held settled, before this batch.
                if !self
                    .flush_sinks(&options.shutdown, options.sink_retry)
                    .await?
                {
                    // The batch taken goes back with what else is pending.
                    for (source, _, handle, _) in &inputs {
                        if let Some(handle) = handle {
                            pending.insert((*source, *handle));
                        }
                    }
                    sinks_flushed = false;
                    break Stop::Shutdown;
                }
                let held = self.ack_settled(&mut pending).await?;
                self.keep_held(held).await?;
            }
            if inputs.is_empty() {
                if sources.iter().all(|&source| ended[source]) {
                    break Stop::Ended;
                }
                if options
                    .idle_timeout
                    .is_some_and(|idle| last_input.elapsed() >= idle)
                {
                    break Stop::Idle;
                }
                let held = self.tracking().held();
                self.keep_held(held).await?;
                if let Some(observe) = &mut options.on_batch {
                    // Idle too: the broker's counts (pending) stay current.
                    observe(&self.report(started.elapsed()), &self.connector_reports());
                }
                continue;
            }
            last_input = Instant::now();
            for (source, element, handle, origin) in inputs {
                let key = (source, handle.unwrap_or(element.meta.sequence));
                if handle.is_some() {
                    pending.insert(key);
                }
                self.tracking().begin(key, &origin);
                if let Err(error) = self.forward::<AsyncCalls>(source, element, delivered).await {
                    if handle.is_none() {
                        // A component source's element cannot come again.
                        return Err(error);
                    }
                    self.recover(error, key, &mut pending, options, counts)
                        .await?;
                }
            }
            if !self
                .flush_sinks(&options.shutdown, options.sink_retry)
                .await?
            {
                sinks_flushed = false;
                break Stop::Shutdown;
            }
            let held = self.ack_settled(&mut pending).await?;
            self.keep_held(held).await?;
            if let Some(observe) = &mut options.on_batch {
                observe(&self.report(started.elapsed()), &self.connector_reports());
            }
        };
        if stop != Stop::Shutdown {
            self.finish::<AsyncCalls>(delivered).await?;
            if self
                .flush_sinks(&options.shutdown, options.sink_retry)
                .await?
            {
                self.ack_settled(&mut pending).await?;
                if let Some(state) = &options.state {
                    // Flushed downstream and stored: the state was emitted.
                    self.remove_states(state).await?;
                }
            } else {
                // Aggregators flushed into sinks that did not store it.
                sinks_flushed = false;
                stop = Stop::Shutdown;
            }
        }
        if stop == Stop::Shutdown {
            if let (Some(state), true) = (&options.state, sinks_flushed) {
                // What a stored state absorbed is acknowledged, not handed back.
                let (saved, absorbed) = self.save_states(state).await;
                counts.states_saved = saved;
                let held = self.tracking().held();
                let mut settled = Vec::new();
                for key in absorbed {
                    if !held.contains(&key) && pending.remove(&key) {
                        settled.push(key);
                    }
                }
                for (source, handles) in by_source(settled) {
                    // Nothing downstream could tell a redelivery of these
                    // from a new input: the broker must have the ack.
                    self.source_connector(source)?
                        .ack_confirmed(&handles)
                        .await?;
                }
            }
            // Held and unstored inputs go back to their sources: redelivered, not lost.
            self.release(pending).await?;
        }
        // A fetch dropped at the shutdown may have taken inputs no batch saw.
        for &source in &sources {
            if let Ok(connector) = self.source_connector(source) {
                connector.stop().await?;
            }
        }
        if let Some(observe) = &mut options.on_batch {
            observe(&self.report(started.elapsed()), &self.connector_reports());
        }
        Ok(stop)
    }

    /// The component stages exporting `torvyn:state`: (node, its key).
    fn stateful(&mut self, state: &StateOptions) -> Vec<(usize, String)> {
        let spec: &FlowSpec = self.spec;
        let scope = scope_of(spec, state);
        (0..spec.nodes.len())
            .filter(|&node| {
                self.stages[node].as_mut().is_some_and(|stage| {
                    matches!(&*stage.slot, Slot::Component(instance) if instance.has(Interface::Snapshot))
                })
            })
            .map(|node| (node, state_key(scope, &spec.nodes[node].name)))
            .collect()
    }

    /// Restores every stateful stage's stored state (after its `init`). A
    /// state stored for a stage that cannot take it is an error: the inputs
    /// it absorbed were acknowledged, so dropping it would lose them.
    async fn restore_states(&mut self, state: &StateOptions) -> Result<u64> {
        let mut restored = 0;
        let spec: &FlowSpec = self.spec;
        let scope = scope_of(spec, state);
        for (node, stage) in self.stages.iter_mut().enumerate() {
            let Some(stage) = stage else { continue };
            let Slot::Component(instance) = &mut *stage.slot else {
                continue;
            };
            let name = &spec.nodes[node].name;
            let key = state_key(scope, name);
            let Some(saved) = state.store.load(&key).await? else {
                continue;
            };
            let error = |detail: String, source: Option<Error>| Error::State {
                store: state.store.describe(),
                detail,
                source: source.map(|e| Box::new(e) as _),
            };
            if !instance.has(Interface::Snapshot) {
                return Err(error(
                    format!(
                        "node `{name}`: a state is stored under `{key}` but component `{}` does \
                         not export torvyn:state/snapshot to take it; run a version that \
                         does, or remove the key to drop what it counted",
                        instance.name()
                    ),
                    None,
                ));
            }
            AsyncCalls::restore(instance, &saved).await.map_err(|e| {
                error(
                    format!(
                        "node `{name}`: restoring its stored state ({} bytes, key `{key}`)",
                        saved.len()
                    ),
                    Some(e),
                )
            })?;
            tracing::info!(flow = %spec.name, node = %name, bytes = saved.len(), %key, "state restored");
            restored += 1;
        }
        Ok(restored)
    }

    /// Saves every stateful stage's state into the store; returns the inputs
    /// the stored states absorbed (no longer held). A stage whose `save` or
    /// store fails keeps its inputs held: they are handed back.
    async fn save_states(&mut self, state: &StateOptions) -> (u64, BTreeSet<InputKey>) {
        let mut absorbed = BTreeSet::new();
        let mut saved_count = 0;
        for (node, key) in self.stateful(state) {
            let name = self.spec.nodes[node].name.clone();
            let Some(stage) = self.stages[node].as_mut() else {
                continue;
            };
            let Slot::Component(instance) = &mut *stage.slot else {
                continue;
            };
            let saved = match AsyncCalls::save(instance).await {
                Ok(saved) => state.store.store(&key, &saved).await.map(|()| saved.len()),
                Err(error) => Err(error),
            };
            match saved {
                Ok(bytes) => {
                    tracing::info!(flow = %self.spec.name, node = %name, bytes, %key, "state saved");
                    absorbed.extend(std::mem::take(&mut self.tracking().holds[node]));
                    saved_count += 1;
                }
                Err(error) => {
                    tracing::warn!(flow = %self.spec.name, node = %name, %error, "state not saved; its inputs are handed back")
                }
            }
        }
        (saved_count, absorbed)
    }

    /// Removes every stateful stage's stored state (emitted at the end).
    async fn remove_states(&mut self, state: &StateOptions) -> Result<()> {
        for (_, key) in self.stateful(state) {
            state.store.remove(&key).await?;
        }
        Ok(())
    }

    /// Up to `batch` inputs from every source not ended, each numbered as it
    /// enters the flow: (source, element, connector handle, origin).
    async fn take_batch(
        &mut self,
        sources: &[usize],
        batch: usize,
        ended: &mut [bool],
        shutdown: &Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<Vec<(usize, Element, Option<u64>, String)>> {
        let mut inputs = Vec::new();
        for &source in sources {
            if ended[source] || self.budget == 0 {
                continue;
            }
            let want = batch.min(usize::try_from(self.budget).unwrap_or(usize::MAX));
            let flow: &FlowSpec = self.spec;
            let name = &flow.nodes[source].name;
            let Some(stage) = &mut self.stages[source] else {
                continue;
            };
            match &mut *stage.slot {
                Slot::Source(connector) => match fetch_or_stop(connector, want, shutdown).await? {
                    Fetched::Inputs(fetched) if fetched.len() > want => {
                        // More than asked for: taking them would pass the
                        // flow's limit, dropping them would lose them.
                        return Err(Error::Flow {
                            flow: flow.name.clone(),
                            detail: format!(
                                "source connector `{name}` returned {} inputs when asked for at most {want}",
                                fetched.len()
                            ),
                        });
                    }
                    Fetched::Inputs(fetched) => {
                        for input in fetched {
                            let mut element = input.element;
                            element.meta.sequence = stage.report.elements_in;
                            element.meta.timestamp_ns = now_ns();
                            stage.report.elements_in += 1;
                            stage.report.elements_out += 1;
                            self.budget -= 1;
                            inputs.push((source, element, Some(input.handle), input.origin));
                        }
                    }
                    Fetched::Idle => {}
                    Fetched::Ended => ended[source] = true,
                },
                Slot::Component(_) => {
                    for _ in 0..want {
                        match pull_one::<I, AsyncCalls>(stage).await? {
                            Some(element) => {
                                self.budget -= 1;
                                let origin =
                                    format!("{}.{name}:{}", flow.name, element.meta.sequence);
                                inputs.push((source, element, None, origin));
                            }
                            None => {
                                ended[source] = true;
                                break;
                            }
                        }
                    }
                }
                Slot::Sink(_) => unreachable!("validation: a sink is no source"),
            }
        }
        Ok(inputs)
    }

    fn source_connector(
        &mut self,
        source: usize,
    ) -> Result<&mut Box<dyn crate::connect::SourceConnector>> {
        match self.stages[source].as_mut().map(|stage| &mut *stage.slot) {
            Some(Slot::Source(connector)) => Ok(connector),
            _ => Err(Error::Flow {
                flow: self.spec.name.clone(),
                detail: format!(
                    "node `{}` is no source connector",
                    self.spec.nodes[source].name
                ),
            }),
        }
    }

    /// An input failed: replace the instance it poisoned, hand the input
    /// back to its source (retried or dead-lettered), and hand back what an
    /// aggregator released into it (their aggregate was not stored).
    async fn recover(
        &mut self,
        error: Error,
        key: InputKey,
        pending: &mut HashSet<InputKey>,
        options: &mut ServeOptions<I>,
        counts: &mut Counts,
    ) -> Result<()> {
        counts.failed_inputs += 1;
        let flow: &FlowSpec = self.spec;
        let failed_node = self.failed_at.take();
        let mut give_back: BTreeSet<InputKey> = std::mem::take(&mut self.tracking().carried);
        give_back.remove(&key);
        if let Some(node) = failed_node.filter(|_| error.poisons_instance()) {
            let spec = &flow.nodes[node];
            let Some(respawn) = options.respawn.as_mut() else {
                return Err(error);
            };
            tracing::warn!(flow = %flow.name, node = %spec.name, %error,
                "instance failed; replacing it");
            let mut fresh = respawn(spec).await?;
            if fresh.has(Interface::Lifecycle) {
                fresh.init_async(&spec.config).await?;
            }
            if let Some(stage) = &mut self.stages[node] {
                *stage.slot = Slot::Component(fresh);
            }
            counts.respawned += 1;
            // Its state is gone with it: what it held must come again.
            let lost = std::mem::take(&mut self.tracking().holds[node]);
            give_back.extend(lost);
        }
        let still_held = self.tracking().held();
        let text = error.to_string();
        if pending.remove(&key) {
            let failed = self.source_connector(key.0)?.fail(key.1, &text).await?;
            if failed == Failed::DeadLettered {
                tracing::error!(flow = %flow.name, %text, "input dead-lettered");
            }
        }
        let give_back: Vec<InputKey> = give_back
            .into_iter()
            .filter(|key| !still_held.contains(key) && pending.remove(key))
            .collect();
        self.release(give_back).await?;
        Ok(())
    }

    /// Hands `keys` back to their sources, unprocessed: they are delivered
    /// again, here or to another worker.
    async fn release(&mut self, keys: impl IntoIterator<Item = InputKey>) -> Result<()> {
        for (source, handles) in by_source(keys) {
            self.source_connector(source)?.release(&handles).await?;
        }
        Ok(())
    }

    /// Flushes every sink connector, retrying while it fails (the broker
    /// away) for up to `sink_retry`. `false`: a shutdown came first.
    async fn flush_sinks(
        &mut self,
        shutdown: &Option<tokio::sync::watch::Receiver<bool>>,
        retry: Duration,
    ) -> Result<bool> {
        let spec: &FlowSpec = self.spec;
        for node in 0..spec.nodes.len() {
            let Some(stage) = self.stages[node].as_mut() else {
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
    async fn ack_settled(&mut self, pending: &mut HashSet<InputKey>) -> Result<BTreeSet<InputKey>> {
        let held = self.tracking().held();
        self.tracking().forget_settled(&held);
        let settled: Vec<InputKey> = pending
            .iter()
            .filter(|key| !held.contains(key))
            .copied()
            .collect();
        for key in &settled {
            pending.remove(key);
        }
        for (source, handles) in by_source(settled) {
            self.source_connector(source)?.ack(&handles).await?;
        }
        Ok(held)
    }

    /// Keeps what aggregators hold from being redelivered meanwhile.
    async fn keep_held(&mut self, held: BTreeSet<InputKey>) -> Result<()> {
        for (source, handles) in by_source(held) {
            if let Ok(connector) = self.source_connector(source) {
                connector.keep(&handles).await?;
            }
        }
        Ok(())
    }

    /// The report so far, upstream first.
    fn report(&self, elapsed: Duration) -> FlowReport {
        report_of(self.spec, &self.plan.order, elapsed, |i| {
            let stage = self.stages[i].as_ref()?;
            Some((&*stage.report, &*stage.slot))
        })
    }

    fn connector_reports(&self) -> Vec<ConnectorReport> {
        connector_reports(
            self.spec.nodes.iter().zip(
                self.stages
                    .iter()
                    .map(|stage| &*stage.as_ref().expect("no stage is taken out here").slot),
            ),
            &self.plan.order,
        )
    }
}
