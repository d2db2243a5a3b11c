//! Flows with every stage role: sources, processors, filters, routers,
//! aggregators and sinks, connected by edges, each node with its own
//! config ([`FlowSpec`], from code or a flow file: [`file`](mod@file)).
//!
//! One driver serves both ways of running a flow: [`Flow::run`] on the
//! calling thread and [`Flow::run_async`] as a future (a tokio task per
//! flow), written once over the `Calls` strategy (sync calls as ready
//! futures, or awaited async calls). Per element, from each source in turn,
//! the element goes depth-first down every edge:
//!
//! - a **processor**'s `emit` goes on, `drop` is counted;
//! - a **filter**'s `false` drops the element (counted), `true` passes it;
//! - a **router**'s ports each send the element down the edges leaving
//!   that port (a port no edge leaves is an error naming it; a port named
//!   twice in one answer gets the element once);
//! - an **aggregator**'s `ingest` may emit; at the end of the stream its
//!   `flush` emits the rest, in order, downstream;
//! - a **sink**'s `pause` is passed to every source upstream of it (and
//!   `ready` once no sink it feeds is paused).
//!
//! The runtime numbers each node's input: every stage sees sequences 0, 1,
//! 2, ... in arrival order (what upstream dropped or routed elsewhere
//! leaves no gap).
//!
//! Every node is `init`ed with its own config first; at the end every sink
//! gets `complete`, and every node's `teardown` is attempted, even after a
//! failure. On the async driver each source runs ahead of the rest of the
//! flow by at most [`FlowSpec::queue_depth`] elements: a full queue is
//! backpressure (the source is told `pause`, then `ready`).

pub mod file;
mod report;
mod serve;
mod spec;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use report::{FlowReport, NodeReport};
pub use serve::{ConnectorReport, Respawn, ServeOptions, ServeReport, Stop};
pub use spec::{role_of, EdgeSpec, FlowSpec, NodeSpec, PortRef, DEFAULT_QUEUE_DEPTH};

use crate::calls::{AsyncCalls, Calls, SyncCalls};
use crate::connect::{Connector, Connectors, SinkConnector, SourceConnector};
use crate::engine::WasmEngine;
use crate::error::{Error, Result};
use crate::gate::run_ready;
use crate::interfaces::Interface;
use crate::invoker::{
    AsyncComponentInvoker, Backpressure, ComponentInvoker, Element, ProcessOutcome,
};
use crate::pipeline::now_ns;
use spec::Plan;
use tracing::Instrument;

/// What runs at a node: a component instance or a connector.
pub(crate) enum Slot<I> {
    Component(I),
    Source(Box<dyn SourceConnector>),
    Sink(Box<dyn SinkConnector>),
}

impl<I> Slot<I> {
    /// The component instance. Connector slots only exist in flows run by
    /// [`Flow::serve`], which never asks a connector for one.
    fn instance(&mut self) -> &mut I {
        match self {
            Slot::Component(instance) => instance,
            Slot::Source(_) | Slot::Sink(_) => {
                unreachable!("connector nodes are driven by Flow::serve")
            }
        }
    }
}

/// A validated flow with an instance (or a connector) per node, ready to run.
pub struct Flow<I> {
    spec: FlowSpec,
    plan: Plan,
    /// Elements pulled at most, over all sources.
    limit: Option<u64>,
    /// Per node, in `spec.nodes` order.
    slots: Vec<Slot<I>>,
    reports: Vec<NodeReport>,
}

impl<I> std::fmt::Debug for Flow<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl<I: ComponentInvoker> Flow<I> {
    /// A flow of `spec` whose node `i` runs `instances[i]`. The graph is
    /// checked, and every node's component must export its role (on the
    /// typed or the dynamic path); errors name the node or edge at fault.
    pub fn new(spec: FlowSpec, instances: Vec<I>) -> Result<Flow<I>> {
        let plan = spec.validate()?;
        refuse_connectors(&spec, "Flow::new")?;
        Flow::planned(
            spec,
            plan,
            instances.into_iter().map(Slot::Component).collect(),
        )
    }

    /// [`Flow::new`] for a spec already validated into `plan`.
    fn planned(spec: FlowSpec, plan: Plan, slots: Vec<Slot<I>>) -> Result<Flow<I>> {
        if slots.len() != spec.nodes.len() {
            return Err(Error::Flow {
                flow: spec.name.clone(),
                detail: format!("{} instances for {} nodes", slots.len(), spec.nodes.len()),
            });
        }
        for (node, slot) in spec.nodes.iter().zip(&slots) {
            let fits = match slot {
                Slot::Component(instance) => instance.has(node.role),
                Slot::Source(_) => node.role == Interface::Source,
                Slot::Sink(_) => node.role == Interface::Sink,
            };
            if !fits {
                return Err(Error::Flow {
                    flow: spec.name.clone(),
                    detail: format!(
                        "node `{}`: component `{}` does not export `{}`",
                        node.name,
                        node.component,
                        node.role.wit_name()
                    ),
                });
            }
        }
        let reports = spec
            .nodes
            .iter()
            .map(|node| NodeReport::new(&node.name, node.role))
            .collect();
        Ok(Flow {
            spec,
            plan,
            limit: None,
            slots,
            reports,
        })
    }

    /// Instantiates every node's component (looked up by name in
    /// `components`) on `engine` and makes the flow.
    pub fn instantiate<E>(
        engine: &E,
        spec: FlowSpec,
        components: &std::collections::BTreeMap<String, E::Component>,
    ) -> Result<Flow<I>>
    where
        E: WasmEngine<Instance = I>,
    {
        // The graph is checked before any component is instantiated.
        let plan = spec.validate()?;
        refuse_connectors(&spec, "Flow::instantiate")?;
        let slots = spec
            .nodes
            .iter()
            .map(|node| {
                engine
                    .instantiate(component_of(&spec, node, components)?)
                    .map(Slot::Component)
            })
            .collect::<Result<Vec<_>>>()?;
        Flow::planned(spec, plan, slots)
    }

    /// Stops pulling after `count` elements over all sources, even if they
    /// have more.
    pub fn limit(mut self, count: u64) -> Self {
        self.limit = Some(count);
        self
    }

    /// The flow's description.
    pub fn spec(&self) -> &FlowSpec {
        &self.spec
    }

    /// The instance of node `name`.
    pub fn instance(&mut self, name: &str) -> Option<&mut I> {
        let index = self.spec.nodes.iter().position(|n| n.name == name)?;
        match self.slots.get_mut(index)? {
            Slot::Component(instance) => Some(instance),
            Slot::Source(_) | Slot::Sink(_) => None,
        }
    }

    /// What the run so far did, per node (upstream first).
    pub fn report(&self, elapsed: Duration) -> FlowReport {
        let nodes = self
            .plan
            .order
            .iter()
            .map(|&i| {
                let mut node = self.reports[i].clone();
                if let Slot::Component(instance) = &self.slots[i] {
                    node.fuel = instance.total_fuel_consumed();
                }
                node
            })
            .collect();
        FlowReport {
            flow: self.spec.name.clone(),
            nodes,
            elapsed,
        }
    }

    /// Runs the flow to its end on this thread: `init` every node with its
    /// config, move every element, flush the aggregators, `complete` every
    /// sink, then `teardown` every node (attempted even after a failure).
    /// `delivered(sink, element)` sees each element a sink accepted. On
    /// failure the first error is returned; [`Flow::report`] still tells
    /// what happened up to it.
    pub fn run(&mut self, delivered: impl FnMut(&str, &Element)) -> Result<FlowReport> {
        refuse_connectors(&self.spec, "Flow::run")?;
        run_ready(self.run_with::<SyncCalls>(delivered, None))
    }

    async fn run_with<C: Calls<I>>(
        &mut self,
        mut delivered: impl FnMut(&str, &Element),
        queue_depth: Option<usize>,
    ) -> Result<FlowReport> {
        let started = Instant::now();
        let mut result = self.init_with::<C>().await;
        let pauses = PauseCounts::new(self.spec.nodes.len());
        if result.is_ok() {
            let mut graph = self.graph(&pauses, None);
            result = match queue_depth {
                None => graph.stream::<C>(&mut delivered).await,
                Some(depth) => graph.stream_queued::<C>(&mut delivered, depth).await,
            };
            if result.is_ok() {
                result = graph.finish::<C>(&mut delivered).await;
            }
        }
        let teardown = self.teardown_with::<C>().await;
        result.and(teardown)?;
        Ok(self.report(started.elapsed()))
    }

    /// The nodes borrowed for one run.
    fn graph<'a>(
        &'a mut self,
        pauses: &'a PauseCounts,
        tracking: Option<serve::Tracking>,
    ) -> Graph<'a, I> {
        Graph {
            spec: &self.spec,
            plan: &self.plan,
            stages: self
                .slots
                .iter_mut()
                .zip(self.reports.iter_mut())
                .map(|(slot, report)| Some(Stage { slot, report }))
                .collect(),
            pauses,
            paused_sinks: vec![false; self.spec.nodes.len()],
            budget: self.limit.unwrap_or(u64::MAX),
            tracking,
            failed_at: None,
        }
    }

    async fn init_with<C: Calls<I>>(&mut self) -> Result<()> {
        for (node, slot) in self.spec.nodes.iter().zip(&mut self.slots) {
            if let Slot::Component(instance) = slot {
                if instance.has(Interface::Lifecycle) {
                    C::init(instance, &node.config).await?;
                }
            }
        }
        Ok(())
    }

    async fn teardown_with<C: Calls<I>>(&mut self) -> Result<()> {
        let mut first_error = None;
        for slot in &mut self.slots {
            let Slot::Component(instance) = slot else {
                continue;
            };
            if instance.has(Interface::Lifecycle) {
                if let Err(error) = C::teardown(instance).await {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl<I: AsyncComponentInvoker> Flow<I> {
    /// [`Flow::instantiate`] with `instantiate_async`.
    pub async fn instantiate_async<E>(
        engine: &E,
        spec: FlowSpec,
        components: &std::collections::BTreeMap<String, E::Component>,
    ) -> Result<Flow<I>>
    where
        E: WasmEngine<Instance = I>,
    {
        Flow::instantiate_connected(engine, spec, components, &Connectors::builtin()).await
    }

    /// [`Flow::instantiate_async`] for a flow that may hold connector nodes:
    /// every connector is opened (connected, its stream and consumer found
    /// or created) with a kind from `connectors`, after the graph and every
    /// connector's settings were checked.
    pub async fn instantiate_connected<E>(
        engine: &E,
        spec: FlowSpec,
        components: &std::collections::BTreeMap<String, E::Component>,
        connectors: &Connectors,
    ) -> Result<Flow<I>>
    where
        E: WasmEngine<Instance = I>,
    {
        let plan = spec.validate()?;
        for node in &spec.nodes {
            if let Some(connector) = &node.connector {
                connectors.check(&node.name, node.role, connector)?;
            }
        }
        let mut slots = Vec::with_capacity(spec.nodes.len());
        for node in &spec.nodes {
            slots.push(match &node.connector {
                Some(connector) => match connectors.open(&node.name, node.role, connector).await? {
                    Connector::Source(source) => Slot::Source(source),
                    Connector::Sink(sink) => Slot::Sink(sink),
                },
                None => Slot::Component(
                    engine
                        .instantiate_async(component_of(&spec, node, components)?)
                        .await?,
                ),
            });
        }
        Flow::planned(spec, plan, slots)
    }

    /// [`Flow::run`] as a future: every stage call awaited, each source
    /// running ahead of the rest by at most [`FlowSpec::queue_depth`]
    /// elements.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the stage call under way (that instance
    /// is poisoned, what its guest held released); elements already
    /// delivered stay delivered, those in flight are lost with the run.
    pub async fn run_async(
        &mut self,
        delivered: impl FnMut(&str, &Element) + Send,
    ) -> Result<FlowReport> {
        if self.has_connectors() {
            let served = self.serve(ServeOptions::default(), delivered).await?;
            return Ok(served.flow);
        }
        let depth = self.spec.queue_depth.max(1);
        self.run_with::<AsyncCalls>(delivered, Some(depth)).await
    }
}

/// A node's instance (or connector) and report, borrowed for one run.
struct Stage<'a, I> {
    slot: &'a mut Slot<I>,
    report: &'a mut NodeReport,
}

/// The flow's nodes during a run. On the async driver the sources are
/// taken out (their stage is `None` here) and fed through a queue.
struct Graph<'a, I> {
    spec: &'a FlowSpec,
    plan: &'a Plan,
    stages: Vec<Option<Stage<'a, I>>>,
    pauses: &'a PauseCounts,
    paused_sinks: Vec<bool>,
    /// Pulls left before the flow's limit.
    budget: u64,
    /// On [`Flow::serve`]: which inputs what is being forwarded derives from.
    tracking: Option<serve::Tracking>,
    /// The node whose call failed last (for `serve` to replace its instance).
    failed_at: Option<usize>,
}

impl<'a, I: ComponentInvoker> Graph<'a, I> {
    fn sources(&self) -> Vec<usize> {
        (0..self.spec.nodes.len())
            .filter(|&i| self.spec.nodes[i].role == Interface::Source)
            .collect()
    }

    fn stage(&mut self, node: usize) -> &mut Stage<'a, I> {
        match &mut self.stages[node] {
            Some(stage) => stage,
            None => unreachable!("only sources are taken out, and no edge enters a source"),
        }
    }

    /// Pulls from every source in turn until all are exhausted, sending
    /// each element through the graph before the next pull.
    async fn stream<C: Calls<I>>(
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
    /// graph run concurrently in the flow's task, joined by a queue of
    /// `depth` elements per source. A source whose queue is full, or one of
    /// whose sinks said `pause`, is told `pause`, then `ready`.
    async fn stream_queued<C: Calls<I>>(
        &mut self,
        delivered: &mut impl FnMut(&str, &Element),
        depth: usize,
    ) -> Result<()> {
        let sources: Vec<(usize, Stage<'a, I>)> = self
            .sources()
            .into_iter()
            .filter_map(|source| Some((source, self.stages[source].take()?)))
            .collect();
        let (sender, mut receiver) =
            tokio::sync::mpsc::channel::<(usize, Element)>(depth * sources.len().max(1));
        let pauses = self.pauses;
        let feed = feed_sources::<I, C>(sources, sender, pauses, self.budget);
        let graph = &mut *self;
        let consume = async move {
            while let Some((source, element)) = receiver.recv().await {
                graph.forward::<C>(source, element, delivered).await?;
            }
            Ok::<(), Error>(())
        };
        let (fed, consumed) = join(feed, consume).await;
        consumed.and(fed)
    }

    /// End of stream: every aggregator flushes (upstream first, so what one
    /// flushes reaches the next before it flushes), then every sink completes.
    async fn finish<C: Calls<I>>(
        &mut self,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        for position in 0..self.plan.order.len() {
            let node = self.plan.order[position];
            if self.spec.nodes[node].role != Interface::Aggregator {
                continue;
            }
            let stage = self.stage(node);
            let started = Instant::now();
            let flushed = C::flush(stage.slot.instance()).await;
            stage.report.latencies.record(started.elapsed());
            let flushed = flushed.inspect_err(|_| stage.report.errors += 1);
            let flushed = flushed.inspect_err(|_| self.failed_at = Some(node))?;
            if let Some(tracking) = &mut self.tracking {
                tracking.begin_flush(node, &self.spec.nodes[node].name);
            }
            for element in flushed {
                self.stage(node).report.elements_out += 1;
                self.forward::<C>(node, element, delivered).await?;
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

    /// Sends `element`, which left node `from`, down the graph depth-first
    /// until every copy is dropped or delivered.
    async fn forward<C: Calls<I>>(
        &mut self,
        from: usize,
        element: Element,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        let mut work = Vec::new();
        self.push_targets(&mut work, from, None, element);
        while let Some((node, element)) = work.pop() {
            let handled = self.handle::<C>(node, element, &mut work, delivered).await;
            handled.inspect_err(|_| {
                self.stage(node).report.errors += 1;
                self.failed_at = Some(node);
            })?;
        }
        Ok(())
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
        let targets: Vec<usize> = self.plan.outputs[from]
            .iter()
            .filter(|(p, _)| port.is_none_or(|port| p == port))
            .map(|&(_, to)| to)
            .collect();
        let Some((&first, rest)) = targets.split_first() else {
            return;
        };
        for &to in rest.iter().rev() {
            work.push((to, element.clone()));
        }
        work.push((first, element));
    }

    /// One node's role with one element.
    async fn handle<C: Calls<I>>(
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
        let started = Instant::now();
        match role {
            Interface::Processor => {
                let outcome = C::process(stage.slot.instance(), &element)
                    .instrument(span.clone())
                    .await;
                stage.report.latencies.record(started.elapsed());
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
                let keep = C::evaluate(stage.slot.instance(), &element)
                    .instrument(span.clone())
                    .await;
                stage.report.latencies.record(started.elapsed());
                if keep? {
                    stage.report.elements_out += 1;
                    self.push_targets(work, node, None, element);
                } else {
                    stage.report.dropped += 1;
                }
            }
            Interface::Router => {
                let ports = C::route(stage.slot.instance(), &element)
                    .instrument(span.clone())
                    .await;
                stage.report.latencies.record(started.elapsed());
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
                let emitted = C::ingest(stage.slot.instance(), &element)
                    .instrument(span.clone())
                    .await;
                stage.report.latencies.record(started.elapsed());
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
                        C::push(slot.instance(), &element)
                            .instrument(span.clone())
                            .await
                    }
                };
                stage.report.latencies.record(started.elapsed());
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
            Interface::Source | Interface::Lifecycle => {
                unreachable!("validation leaves no edge into a source")
            }
        }
        Ok(())
    }
}

/// One pull, numbered in the source's pull order.
async fn pull_one<I, C: Calls<I>>(stage: &mut Stage<'_, I>) -> Result<Option<Element>> {
    let started = Instant::now();
    let pulled = C::pull(stage.slot.instance()).await;
    let report = &mut *stage.report;
    report.latencies.record(started.elapsed());
    let pulled = pulled.inspect_err(|_| report.errors += 1)?;
    Ok(pulled.map(|mut element| {
        element.meta.sequence = report.elements_in;
        element.meta.timestamp_ns = now_ns();
        report.elements_in += 1;
        report.elements_out += 1;
        element
    }))
}

/// The async driver's sources: each pull waits for room in the queue
/// first (reserve, then pull: a pulled element is never left unsent).
async fn feed_sources<I, C: Calls<I>>(
    mut sources: Vec<(usize, Stage<'_, I>)>,
    queue: tokio::sync::mpsc::Sender<(usize, Element)>,
    pauses: &PauseCounts,
    mut budget: u64,
) -> Result<()> {
    let mut exhausted = vec![false; sources.len()];
    while exhausted.iter().any(|done| !done) && budget > 0 {
        for (i, (source, stage)) in sources.iter_mut().enumerate() {
            if exhausted[i] || budget == 0 {
                continue;
            }
            let permit = match queue.try_reserve() {
                Ok(permit) => permit,
                Err(tokio::sync::mpsc::error::TrySendError::Full(())) => {
                    pauses.add(*source, true);
                    if let Some(signal) = pauses.change(*source) {
                        C::notify_backpressure(stage.slot.instance(), signal).await?;
                    }
                    let permit = queue.reserve().await;
                    pauses.add(*source, false);
                    match permit {
                        Ok(permit) => permit,
                        // The rest of the flow stopped (it failed): stop feeding.
                        Err(_) => return Ok(()),
                    }
                }
                Err(tokio::sync::mpsc::error::TrySendError::Closed(())) => return Ok(()),
            };
            if let Some(signal) = pauses.change(*source) {
                C::notify_backpressure(stage.slot.instance(), signal).await?;
            }
            match pull_one::<I, C>(stage).await? {
                Some(element) => {
                    budget -= 1;
                    permit.send((*source, element));
                }
                // (A pull that finds the source exhausted costs no budget.)
                None => exhausted[i] = true,
            }
        }
    }
    Ok(())
}

/// Polls two futures in the same task until both are done.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut a_out, mut b_out) = (None, None);
    std::future::poll_fn(|context| {
        if a_out.is_none() {
            if let std::task::Poll::Ready(value) = a.as_mut().poll(context) {
                a_out = Some(value);
            }
        }
        if b_out.is_none() {
            if let std::task::Poll::Ready(value) = b.as_mut().poll(context) {
                b_out = Some(value);
            }
        }
        match (a_out.take(), b_out.take()) {
            (Some(a), Some(b)) => std::task::Poll::Ready((a, b)),
            (a, b) => {
                a_out = a;
                b_out = b;
                std::task::Poll::Pending
            }
        }
    })
    .await
}

/// Pause requests per source: how many of the sinks it feeds are paused,
/// and what the source was last told.
struct PauseCounts {
    counts: Vec<AtomicU32>,
    told_paused: Vec<AtomicBool>,
}

impl PauseCounts {
    fn new(nodes: usize) -> PauseCounts {
        PauseCounts {
            counts: (0..nodes).map(|_| AtomicU32::new(0)).collect(),
            told_paused: (0..nodes).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn add(&self, source: usize, pause: bool) {
        if pause {
            self.counts[source].fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts[source].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The signal `source` must be told now, if its state changed.
    fn change(&self, source: usize) -> Option<Backpressure> {
        let paused = self.counts[source].load(Ordering::Relaxed) > 0;
        let told = self.told_paused[source].swap(paused, Ordering::Relaxed);
        match (paused, told) {
            (true, false) => Some(Backpressure::Pause),
            (false, true) => Some(Backpressure::Ready),
            _ => None,
        }
    }
}

/// Connector nodes run only on [`Flow::serve`] (they are async and settle
/// inputs per batch): the sync entry points refuse them by name.
fn refuse_connectors(spec: &FlowSpec, entry: &str) -> Result<()> {
    match spec.nodes.iter().find(|node| node.connector.is_some()) {
        None => Ok(()),
        Some(node) => Err(Error::Flow {
            flow: spec.name.clone(),
            detail: format!(
                "node `{}` is a `{}` connector: {entry} runs components only; connectors run \
                 on the async driver (Flow::instantiate_connected, then Flow::serve or run_async)",
                node.name,
                node.connector.as_ref().map_or("", |c| c.kind.as_str()),
            ),
        }),
    }
}

fn component_of<'c, C>(
    spec: &FlowSpec,
    node: &NodeSpec,
    components: &'c std::collections::BTreeMap<String, C>,
) -> Result<&'c C> {
    components.get(&node.component).ok_or_else(|| Error::Flow {
        flow: spec.name.clone(),
        detail: format!(
            "node `{}` names component `{}`, which is not declared",
            node.name, node.component
        ),
    })
}
