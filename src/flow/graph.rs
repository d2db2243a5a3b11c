//! A flow while it runs: its nodes' stages, the depth-first forwarding of
//! each element through them, the sources' feed on the async driver and
//! the pause counts behind backpressure.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::now_ns;
use super::spec::Plan;
use crate::calls::Calls;
use crate::error::{Error, Result};
use crate::interfaces::Interface;
use crate::invoker::{Backpressure, ComponentInvoker, Element, ProcessOutcome};
use tracing::Instrument;

use super::{FlowSpec, NodeReport, Slot};

/// A node's instance (or connector) and report, borrowed for one run.
pub(super) struct Stage<'a, I> {
    pub(super) slot: &'a mut Slot<I>,
    pub(super) report: &'a mut NodeReport,
}

/// The flow's nodes during a run. On the async driver the sources are
/// taken out (their stage is `None` here) and fed through a queue.
pub(super) struct Graph<'a, I> {
    pub(super) spec: &'a FlowSpec,
    pub(super) plan: &'a Plan,
    pub(super) stages: Vec<Option<Stage<'a, I>>>,
    pub(super) pauses: &'a PauseCounts,
    pub(super) paused_sinks: Vec<bool>,
    /// Pulls left before the flow's limit.
    pub(super) budget: u64,
    /// On [`Flow::serve`]: which inputs what is being forwarded derives from.
    pub(super) tracking: Option<super::tracking::Tracking>,
    /// The node whose call failed last (for `serve` to replace its instance).
    pub(super) failed_at: Option<usize>,
    /// [`Graph::forward`]'s list of (node, element) still to handle, kept
    /// between elements.
    pub(super) work: Vec<(usize, Element)>,
    /// New instances queued by an [`Upgrader`](super::Upgrader), if the
    /// flow has one.
    pub(super) upgrades: Option<&'a mut std::sync::mpsc::Receiver<super::upgrade::Pending<I>>>,
    /// What each upgrade did.
    pub(super) outcomes: &'a mut Vec<super::UpgradeOutcome>,
    /// On `run_async` with an upgrader: where upgrades of the sources (which
    /// its feeder holds) go.
    pub(super) to_feeder: Option<std::sync::mpsc::Sender<super::upgrade::Pending<I>>>,
}

/// Awaits a stage call, inside the node's span when a subscriber wants
/// it. Without one the call's future is awaited as it is: wrapping it in
/// `Instrumented` anyway moved every call's future once more (with the
/// async invoker's futures, ~430 instructions an element, 13 % of what the
/// async flow costs beyond the sync one).
macro_rules! traced {
    ($span:expr, $call:expr) => {
        if $span.is_disabled() {
            $call.await
        } else {
            $call.instrument($span.clone()).await
        }
    };
}

impl<'a, I: ComponentInvoker> Graph<'a, I> {
    pub(super) fn sources(&self) -> Vec<usize> {
        (0..self.spec.nodes.len())
            .filter(|&i| self.spec.nodes[i].role == Interface::Source)
            .collect()
    }

    pub(super) fn stage(&mut self, node: usize) -> &mut Stage<'a, I> {
        match &mut self.stages[node] {
            Some(stage) => stage,
            None => unreachable!("only sources are taken out, and no edge enters a source"),
        }
    }

    /// Pulls from every source in turn until all are exhausted, sending
    /// each element through the graph before the next pull.
    pub(super) async fn stream<C: Calls<I>>(
        &mut self,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        let sources = self.sources();
        let mut exhausted = vec![false; self.spec.nodes.len()];
        loop {
            let mut any = false;
            for &source in &sources {
                if exhausted[source] || self.budget == 0 {
                    continue;
                }
                any = true;
                self.take_upgrades::<C>(delivered).await?;
                let stage = self.stage(source);
                match pull_one::<I, C>(stage).await? {
                    // (A pull that finds the source exhausted costs no budget.)
                    None => exhausted[source] = true,
                    Some(element) => {
                        self.budget -= 1;
                        self.forward::<C>(source, element, delivered).await?;
                        for &source in &sources {
                            if let Some(signal) = self.pauses.change(source) {
                                C::notify_backpressure(self.stage(source).slot.instance(), signal)
                                    .await?;
                            }
                        }
                    }
                }
            }
            if !any {
                return Ok(());
            }
        }
    }

    /// The async driver's streaming: the sources' pulls and the rest of the
    /// graph run concurrently in the flow's task, joined by one queue in
    /// which each source may hold at most its own bound
    /// (`FlowSpec::source_queue_depth`: the flow's `queue_depth`, or a
    /// smaller edge `queue_depth`). A source at its bound, or one of whose
    /// sinks said `pause`, is told `pause`, then `ready`.
    pub(super) async fn stream_queued<C: Calls<I>>(
        &mut self,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        let sources: Vec<(usize, Stage<'a, I>)> = self
            .sources()
            .into_iter()
            .filter_map(|source| Some((source, self.stages[source].take()?)))
            .collect();
        // Room per source, as permits: taken before a pull, given back when
        // the element leaves the queue. The channel holds every source's
        // bound at once, so a send never waits on it.
        let room: Vec<Option<tokio::sync::Semaphore>> = (0..self.spec.nodes.len())
            .map(|node| {
                (self.spec.nodes[node].role == Interface::Source)
                    .then(|| tokio::sync::Semaphore::new(self.spec.source_queue_depth(node)))
            })
            .collect();
        let capacity = room
            .iter()
            .flatten()
            .map(tokio::sync::Semaphore::available_permits)
            .sum::<usize>()
            .max(1);
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<(usize, Element)>(capacity);
        // Told each time the consumer takes an element (or stops): the feeder
        // waits on it when every source is at its bound.
        let taken = tokio::sync::Notify::new();
        let pauses = self.pauses;
        let source_upgrades = self.upgrades.is_some().then(|| {
            let (to_feeder, upgrades) = std::sync::mpsc::channel();
            self.to_feeder = Some(to_feeder);
            upgrades
        });
        let feed = feed_sources::<I, C>(
            self.spec,
            sources,
            sender,
            &room,
            &taken,
            pauses,
            self.budget,
            source_upgrades,
        );
        let graph = &mut *self;
        let (room, taken) = (&room, &taken);
        let consume = async move {
            let consumed = async {
                while let Some((source, element)) = receiver.recv().await {
                    if let Some(room) = &room[source] {
                        room.add_permits(1);
                    }
                    taken.notify_one();
                    graph.take_upgrades::<C>(delivered).await?;
                    graph.forward::<C>(source, element, delivered).await?;
                }
                Ok::<(), Error>(())
            }
            .await;
            // A failed rest of the flow stops the feeder: it sees the queue
            // closed when it wakes.
            drop(receiver);
            taken.notify_one();
            consumed
        };
        let (fed, consumed) = tokio::join!(feed, consume);
        self.to_feeder = None;
        let fed = fed.map(|outcomes| self.outcomes.extend(outcomes));
        consumed.and(fed)
    }

    /// End of stream: every aggregator flushes (upstream first, so what one
    /// flushes reaches the next before it flushes), then every sink completes.
    pub(super) async fn finish<C: Calls<I>>(
        &mut self,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        for position in 0..self.plan.order.len() {
            let node = self.plan.order[position];
            if self.spec.nodes[node].role == Interface::Aggregator {
                self.flush_downstream::<C>(node, delivered).await?;
            }
        }
        for node in 0..self.spec.nodes.len() {
            if self.spec.nodes[node].role == Interface::Sink {
                let stage = self.stage(node);
                let Slot::Component(instance) = &mut *stage.slot else {
                    continue;
                };
                let completed = C::complete(instance).await;
                completed.inspect_err(|_| stage.report.errors += 1)?;
            }
        }
        Ok(())
    }

    /// Aggregator `node`'s `flush` (timed and counted like any call), its
    /// outputs sent downstream in order: at the end of the stream, and when
    /// an upgrade replaces an aggregator that carries no state.
    pub(super) async fn flush_downstream<C: Calls<I>>(
        &mut self,
        node: usize,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        let stage = self.stage(node);
        let started = stage.report.latencies.start();
        let flushed = C::flush(stage.slot.instance()).await;
        stage.report.latencies.stop(started);
        let flushed = flushed.inspect_err(|_| stage.report.errors += 1);
        let flushed = flushed.inspect_err(|_| self.failed_at = Some(node))?;
        if let Some(tracking) = &mut self.tracking {
            tracking.begin_flush(node, &self.spec.nodes[node].name);
        }
        for element in flushed {
            self.stage(node).report.elements_out += 1;
            self.forward::<C>(node, element, delivered).await?;
        }
        Ok(())
    }

    /// Sends `element`, which left node `from`, down the graph depth-first
    /// until every copy is dropped or delivered.
    pub(super) async fn forward<C: Calls<I>>(
        &mut self,
        from: usize,
        element: Element,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        // The work list is the graph's, reused: no allocation per element.
        let mut work = std::mem::take(&mut self.work);
        work.clear();
        self.push_targets(&mut work, from, None, element);
        let mut result = Ok(());
        while let Some((node, element)) = work.pop() {
            let handled = self.handle::<C>(node, element, &mut work, delivered).await;
            if let Err(error) = handled {
                self.stage(node).report.errors += 1;
                self.failed_at = Some(node);
                result = Err(error);
                break;
            }
        }
        self.work = work;
        result
    }

    /// Queues `element` for every edge leaving `from` (at `port`, if given),
    /// so that the first edge is handled first.
    fn push_targets(
        &self,
        work: &mut Vec<(usize, Element)>,
        from: usize,
        port: Option<&str>,
        element: Element,
    ) {
        // Pushed last to first, so the first edge is popped first; every
        // target but the first gets a clone.
        let mut targets = self.plan.outputs[from]
            .iter()
            .rev()
            .filter(|(p, _)| port.is_none_or(|port| p == port))
            .map(|&(_, to)| to)
            .peekable();
        while let Some(to) = targets.next() {
            if targets.peek().is_none() {
                work.push((to, element));
                return;
            }
            work.push((to, element.clone()));
        }
    }

    /// One node's role with one element.
    pub(super) async fn handle<C: Calls<I>>(
        &mut self,
        node: usize,
        mut element: Element,
        work: &mut Vec<(usize, Element)>,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        let role = self.spec.nodes[node].role;
        let span = tracing::trace_span!(
            "node",
            flow = %self.spec.name,
            node = %self.spec.nodes[node].name,
            role = role.role(),
            sequence = tracing::field::Empty,
        );
        let Some(stage) = &mut self.stages[node] else {
            unreachable!("only sources are taken out, and no edge enters a source")
        };
        // The runtime numbers each node's input stream: every stage sees
        // sequences 0, 1, 2, ... whatever was dropped or routed upstream.
        element.meta.sequence = stage.report.elements_in;
        span.record("sequence", element.meta.sequence);
        stage.report.elements_in += 1;
        let started = stage.report.latencies.start();
        match role {
            Interface::Processor => {
                let outcome = traced!(span, C::process(stage.slot.instance(), &element));
                stage.report.latencies.stop(started);
                match outcome? {
                    ProcessOutcome::Emit(mut output) => {
                        // Timestamps of outputs are advisory: keep the runtime's.
                        output.meta.timestamp_ns = element.meta.timestamp_ns;
                        stage.report.elements_out += 1;
                        self.push_targets(work, node, None, output);
                    }
                    ProcessOutcome::Drop => stage.report.dropped += 1,
                }
            }
            Interface::Filter => {
                let keep = traced!(span, C::evaluate(stage.slot.instance(), &element));
                stage.report.latencies.stop(started);
                if keep? {
                    stage.report.elements_out += 1;
                    self.push_targets(work, node, None, element);
                } else {
                    stage.report.dropped += 1;
                }
            }
            Interface::Router => {
                let ports = traced!(span, C::route(stage.slot.instance(), &element));
                stage.report.latencies.stop(started);
                let ports = ports?;
                if ports.is_empty() {
                    stage.report.dropped += 1;
                }
                let outputs = &self.plan.outputs[node];
                if let Some(unknown) = ports
                    .iter()
                    .find(|port| !outputs.iter().any(|(p, _)| p == *port))
                {
                    let known: Vec<&str> = outputs.iter().map(|(p, _)| p.as_str()).collect();
                    return Err(Error::Flow {
                        flow: self.spec.name.clone(),
                        detail: format!(
                            "router `{}` sent element {} to port `{unknown}`, which no edge \
                             leaves (its ports: {})",
                            self.spec.nodes[node].name,
                            element.meta.sequence,
                            known.join(", ")
                        ),
                    });
                }
                // A port named twice in one answer gets the element once:
                // an answer can make the host deliver at most once per edge,
                // however long the list a guest returns (the ports are known
                // by now, so this costs at most ports × edges comparisons).
                let mut distinct: Vec<&String> = Vec::with_capacity(outputs.len());
                for port in &ports {
                    if !distinct.contains(&port) {
                        distinct.push(port);
                    }
                }
                stage.report.elements_out += distinct.len() as u64;
                for port in distinct.into_iter().rev() {
                    self.push_targets(work, node, Some(port), element.clone());
                }
            }
            Interface::Aggregator => {
                let emitted = traced!(span, C::ingest(stage.slot.instance(), &element));
                stage.report.latencies.stop(started);
                let emitted = emitted?;
                if let Some(tracking) = &mut self.tracking {
                    // What it absorbed is held until it emits; what it emits
                    // carries everything it held.
                    tracking.absorb(node);
                    if emitted.is_some() {
                        tracking.release(node);
                    }
                }
                if let Some(output) = emitted {
                    stage.report.elements_out += 1;
                    self.push_targets(work, node, None, output);
                }
            }
            Interface::Sink => {
                let signal = match &mut *stage.slot {
                    Slot::Sink(sink) => {
                        let id = self
                            .tracking
                            .as_mut()
                            .map(|tracking| tracking.output_id(&self.spec.nodes[node].name))
                            .unwrap_or_default();
                        sink.accept(&element, &id).map(|()| Backpressure::Ready)
                    }
                    slot => {
                        traced!(span, C::push(slot.instance(), &element))
                    }
                };
                stage.report.latencies.stop(started);
                let pause = signal? == Backpressure::Pause;
                stage.report.elements_out += 1;
                if pause {
                    stage.report.pauses += 1;
                }
                delivered(&self.spec.nodes[node].name, &element);
                if pause != self.paused_sinks[node] {
                    self.paused_sinks[node] = pause;
                    for &source in &self.plan.upstream_sources[node] {
                        self.pauses.add(source, pause);
                    }
                }
            }
            Interface::Source | Interface::Lifecycle | Interface::Snapshot => {
                unreachable!("validation leaves no edge into a source")
            }
        }
        Ok(())
    }
}

/// One pull, numbered in the source's pull order.
pub(super) async fn pull_one<I, C: Calls<I>>(stage: &mut Stage<'_, I>) -> Result<Option<Element>> {
    let started = stage.report.latencies.start();
    let pulled = C::pull(stage.slot.instance()).await;
    let report = &mut *stage.report;
    report.latencies.stop(started);
    let pulled = pulled.inspect_err(|_| report.errors += 1)?;
    Ok(pulled.map(|mut element| {
        element.meta.sequence = report.elements_in;
        element.meta.timestamp_ns = now_ns();
        report.elements_in += 1;
        report.elements_out += 1;
        element
    }))
}

/// The async driver's sources, in turn: each pull waits for room in its
/// source's share of the queue (room, then a slot, then the pull: a pulled
/// element is never left unsent). A source at its bound is told `pause`
/// and passed over, so the others keep their own bounds; when every source
/// is at its bound, the feeder waits for the consumer to take an element.
#[allow(clippy::too_many_arguments)]
async fn feed_sources<I: ComponentInvoker, C: Calls<I>>(
    spec: &FlowSpec,
    mut sources: Vec<(usize, Stage<'_, I>)>,
    queue: tokio::sync::mpsc::Sender<(usize, Element)>,
    room: &[Option<tokio::sync::Semaphore>],
    taken: &tokio::sync::Notify,
    pauses: &PauseCounts,
    mut budget: u64,
    upgrades: Option<std::sync::mpsc::Receiver<super::upgrade::Pending<I>>>,
) -> Result<Vec<super::UpgradeOutcome>> {
    let mut exhausted = vec![false; sources.len()];
    let mut at_bound = vec![false; sources.len()];
    let mut outcomes = Vec::new();
    while exhausted.iter().any(|done| !done) && budget > 0 {
        // Upgrades of sources take over between two pulls.
        while let Some(pending) = upgrades.as_ref().and_then(|u| u.try_recv().ok()) {
            let node = pending.node;
            let Some((_, stage)) = sources.iter_mut().find(|(source, _)| *source == node) else {
                continue;
            };
            let instance = pending.into_instance();
            outcomes.push(
                super::upgrade::swap_source::<I, C>(
                    &spec.name,
                    &spec.nodes[node].name,
                    stage,
                    instance,
                )
                .await,
            );
        }
        let mut pulled = false;
        for (i, (source, stage)) in sources.iter_mut().enumerate() {
            if exhausted[i] || budget == 0 {
                continue;
            }
            let Some(room) = &room[*source] else {
                unreachable!("every source has room in the queue")
            };
            let Ok(held) = room.try_acquire() else {
                if !at_bound[i] {
                    at_bound[i] = true;
                    pauses.add(*source, true);
                    if let Some(signal) = pauses.change(*source) {
                        C::notify_backpressure(stage.slot.instance(), signal).await?;
                    }
                }
                continue;
            };
            if at_bound[i] {
                at_bound[i] = false;
                pauses.add(*source, false);
            }
            // Given back by the consumer when the element leaves the queue.
            held.forget();
            // The channel has room for every source's bound: this waits
            // only if the rest of the flow stopped, which ends the feeding.
            let Ok(slot) = queue.reserve().await else {
                return Ok(outcomes);
            };
            if let Some(signal) = pauses.change(*source) {
                C::notify_backpressure(stage.slot.instance(), signal).await?;
            }
            pulled = true;
            match pull_one::<I, C>(stage).await? {
                Some(element) => {
                    budget -= 1;
                    slot.send((*source, element));
                }
                // (A pull that finds the source exhausted costs no budget.)
                None => {
                    room.add_permits(1);
                    exhausted[i] = true;
                }
            }
        }
        if !pulled {
            if queue.is_closed() {
                return Ok(outcomes);
            }
            taken.notified().await;
        }
    }
    Ok(outcomes)
}

/// Pause requests per source: how many of the sinks it feeds are paused,
/// and what the source was last told.
pub(super) struct PauseCounts {
    counts: Vec<AtomicU32>,
    told_paused: Vec<AtomicBool>,
}

impl PauseCounts {
    pub(super) fn new(nodes: usize) -> PauseCounts {
        PauseCounts {
            counts: (0..nodes).map(|_| AtomicU32::new(0)).collect(),
            told_paused: (0..nodes).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    pub(super) fn add(&self, source: usize, pause: bool) {
        if pause {
            self.counts[source].fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts[source].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The signal `source` must be told now, if its state changed.
    pub(super) fn change(&self, source: usize) -> Option<Backpressure> {
        let paused = self.counts[source].load(Ordering::Relaxed) > 0;
        let told = self.told_paused[source].swap(paused, Ordering::Relaxed);
        match (paused, told) {
            (true, false) => Some(Backpressure::Pause),
            (false, true) => Some(Backpressure::Ready),
            _ => None,
        }
    }
}
