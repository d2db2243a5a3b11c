//! A flow while it runs: its nodes' stages, the depth-first forwarding of
//! each element through them, the sources' feed on the async driver and
//! the pause counts behind backpressure.

use std::time::Duration;

use tracing::Instrument;

use super::feed::{feed_sources, room_per_source};
use super::pauses::PauseCounts;
use super::report::report_of;
use super::slot::Slot;
use super::spec::Plan;
use super::stage::{pull_one, Stage};
use super::tracking::Tracking;
use super::upgrade::Pending;
use super::windowed::Windowing;
use super::{FlowReport, FlowSpec, UpgradeOutcome};
use crate::calls::Calls;
use crate::error::{Error, Result};
use crate::interfaces::Interface;
use crate::invoker::{Backpressure, ComponentInvoker, Element, ProcessOutcome};

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
    pub(super) tracking: Option<Tracking>,
    /// The node whose call failed last (for `serve` to replace its instance).
    pub(super) failed_at: Option<usize>,
    /// [`Graph::forward`]'s list of (node, element) still to handle, kept
    /// between elements.
    pub(super) work: Vec<(usize, Element)>,
    /// New instances queued by an [`Upgrader`](super::Upgrader), if the
    /// flow has one.
    pub(super) upgrades: Option<&'a mut std::sync::mpsc::Receiver<Pending<I>>>,
    /// What each upgrade did.
    pub(super) outcomes: &'a mut Vec<UpgradeOutcome>,
    /// On `run_async` with an upgrader: where upgrades of the sources (which
    /// its feeder holds) go.
    pub(super) to_feeder: Option<std::sync::mpsc::Sender<Pending<I>>>,
    /// The windowed nodes' windows and watermarks (empty: none).
    pub(super) windowing: Vec<Windowing>,
}

/// Which edges leaving a node an element goes down.
#[derive(Clone, Copy)]
pub(super) enum Port<'p> {
    /// Every one.
    All,
    /// Those leaving the port named so (a router's answer, a windowed
    /// node's `late`).
    Named(&'p str),
    /// A windowed node's results: all but those leaving `late`.
    Results,
}

impl Port<'_> {
    fn takes(self, port: &str) -> bool {
        match self {
            Port::All => true,
            Port::Named(name) => port == name,
            Port::Results => port != super::windowed::LATE_PORT,
        }
    }
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

/// An input entering from `source`: `forward`ed, or, in a flow with
/// windowed nodes, `input_windowed` (their watermarks moved after it). A
/// macro, so that a flow without windows awaits `forward`'s own future:
/// an async fn choosing between the two would wrap it in one more future
/// per element (measured: ~250 instructions an element of `Pipeline::run`).
macro_rules! input {
    ($graph:expr, $calls:ty, $source:expr, $element:expr, $delivered:expr) => {
        if $graph.windowing.is_empty() {
            $graph
                .forward::<$calls>($source, Port::All, $element, $delivered)
                .await
        } else {
            $graph
                .input_windowed::<$calls>($source, $element, $delivered)
                .await
        }
    };
}
pub(super) use input;

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
                        input!(self, C, source, element, delivered)?;
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
        let (room, capacity) = room_per_source(self.spec);
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
                    input!(graph, C, source, element, delivered)?;
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
            match self.spec.nodes[node].role {
                Interface::Aggregator => self.flush_downstream::<C>(node, delivered).await?,
                Interface::Windowed => self.close_all_windows::<C>(node, delivered).await?,
                _ => {}
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
            self.forward::<C>(node, Port::All, element, delivered)
                .await?;
        }
        Ok(())
    }

    /// Sends `element`, which left node `from`, down the edges leaving it
    /// at `port`, and on, depth-first, until every copy is dropped or
    /// delivered. (An input of a flow with windowed nodes goes through
    /// [`input`](Self::input), which moves their watermarks after it.)
    pub(super) async fn forward<C: Calls<I>>(
        &mut self,
        from: usize,
        port: Port<'_>,
        element: Element,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        // The work list is the graph's, reused: no allocation per element.
        let mut work = std::mem::take(&mut self.work);
        work.clear();
        self.push_targets(&mut work, from, port, element);
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

    /// Queues `element` for every edge leaving `from` at `port`, so that
    /// the first edge is handled first.
    pub(super) fn push_targets(
        &self,
        work: &mut Vec<(usize, Element)>,
        from: usize,
        port: Port<'_>,
        element: Element,
    ) {
        // Pushed last to first, so the first edge is popped first; every
        // target but the first gets a clone.
        let mut targets = self.plan.outputs[from]
            .iter()
            .rev()
            .filter(|(p, _)| port.takes(p))
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
                        // Timestamps of outputs are advisory: keep the
                        // runtime's; and the key, which guests do not see.
                        output.meta.timestamp_ns = element.meta.timestamp_ns;
                        output.meta.key = element.meta.key;
                        stage.report.elements_out += 1;
                        self.push_targets(work, node, Port::All, output);
                    }
                    ProcessOutcome::Drop => stage.report.dropped += 1,
                }
            }
            Interface::Filter => {
                let keep = traced!(span, C::evaluate(stage.slot.instance(), &element));
                stage.report.latencies.stop(started);
                if keep? {
                    stage.report.elements_out += 1;
                    self.push_targets(work, node, Port::All, element);
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
                    self.push_targets(work, node, Port::Named(port), element.clone());
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
                    self.push_targets(work, node, Port::All, output);
                }
            }
            Interface::Windowed => {
                self.handle_windowed::<C>(node, element, work, started)
                    .await?;
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

    /// On [`Flow::serve`](super::Flow::serve): which inputs what is being
    /// forwarded derives from.
    pub(super) fn tracking(&mut self) -> &mut Tracking {
        self.tracking
            .as_mut()
            .expect("the service driver always tracks inputs")
    }

    /// The report so far, upstream first.
    pub(super) fn report(&self, elapsed: Duration) -> FlowReport {
        report_of(self.spec, &self.plan.order, elapsed, |i| {
            let stage = self.stages[i].as_ref()?;
            Some((&*stage.report, &*stage.slot))
        })
    }
}
