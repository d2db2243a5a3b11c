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
mod graph;
mod pipeline;
pub mod project;
mod report;
mod serve;
mod spec;
pub mod state;
mod tracking;
mod upgrade;

use std::time::{Duration, Instant};

pub use pipeline::{Pipeline, PipelineReport};
pub use report::{FlowReport, NodeReport};
pub use serve::{ConnectorReport, Respawn, ServeOptions, ServeReport, Stop};
// Where it stood before it moved to the engine's config (the engine knows
// no flow); kept so `flow::NodeLimits` still names it.
pub use crate::config::NodeLimits;
pub use spec::{role_of, EdgeSpec, FlowSpec, NodeSpec, PortRef, DEFAULT_QUEUE_DEPTH};
pub use state::{DirStore, StateOptions, StateStore};
pub use upgrade::{Carried, UpgradeOutcome, Upgrader};

use crate::calls::{AsyncCalls, Calls, SyncCalls};
use crate::connect::{Connector, Connectors, SinkConnector, SourceConnector};
use crate::engine::WasmEngine;
use crate::error::{Error, Result};
use crate::gate::run_ready;
use crate::interfaces::Interface;
use crate::invoker::{AsyncComponentInvoker, ComponentInvoker, Element};
use graph::{pull_one, Graph, PauseCounts, Stage};
use spec::Plan;

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
    /// The queue of an [`Upgrader`], once one was made.
    upgrade_queue: Option<upgrade::Queue<I>>,
    /// What the upgrades so far did.
    upgrades: Vec<UpgradeOutcome>,
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
            upgrade_queue: None,
            upgrades: Vec::new(),
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
                    .instantiate(&component_of(engine, &spec, node, components)?)
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

    /// A handle that replaces nodes' instances while the flow runs (from
    /// any thread; see [`Upgrader::upgrade`]): the driver takes each new
    /// instance before the next element, carrying the state over
    /// (`torvyn:state`) or flushing an aggregator first.
    pub fn upgrader(&mut self) -> Upgrader<I> {
        let queue = &self
            .upgrade_queue
            .get_or_insert_with(std::sync::mpsc::channel)
            .0;
        let nodes = self
            .spec
            .nodes
            .iter()
            .map(|node| (node.name.clone(), node.role, node.config.clone()))
            .collect();
        Upgrader::new(self.spec.name.clone(), nodes, queue.clone())
    }

    /// What every upgrade so far did, in order.
    pub fn upgrades(&self) -> &[UpgradeOutcome] {
        &self.upgrades
    }

    /// What the run so far did, per node (upstream first).
    pub fn report(&self, elapsed: Duration) -> FlowReport {
        report_of(&self.spec, &self.plan.order, elapsed, |i| {
            Some((&self.reports[i], &self.slots[i]))
        })
    }

    /// Runs the flow to its end on this thread: `init` every node with its
    /// config, move every element, flush the aggregators, `complete` every
    /// sink, then `teardown` every node (attempted even after a failure).
    /// `delivered(sink, element)` sees each element a sink accepted. On
    /// failure the first error is returned; [`Flow::report`] still tells
    /// what happened up to it.
    pub fn run(&mut self, delivered: impl FnMut(&str, &Element)) -> Result<FlowReport> {
        refuse_connectors(&self.spec, "Flow::run")?;
        run_ready(self.run_with::<SyncCalls>(delivered, false))
    }

    async fn run_with<C: Calls<I>>(
        &mut self,
        mut delivered: impl FnMut(&str, &Element),
        queued: bool,
    ) -> Result<FlowReport> {
        let started = Instant::now();
        let mut result = self.init_with::<C>().await;
        if result.is_ok() {
            result = self.stream_with::<C>(&mut delivered, queued).await;
        }
        let teardown = self.teardown_with::<C>().await;
        result.and(teardown)?;
        Ok(self.report(started.elapsed()))
    }

    /// The run between `init` and `teardown`: every element moved, the
    /// aggregators flushed, the sinks completed. `queued`: the async
    /// driver's queue behind each source (else pulled in step).
    async fn stream_with<C: Calls<I>>(
        &mut self,
        delivered: &mut impl FnMut(&str, &Element),
        queued: bool,
    ) -> Result<()> {
        let pauses = PauseCounts::new(self.spec.nodes.len());
        let mut graph = self.graph(&pauses, None);
        match queued {
            false => graph.stream::<C>(delivered).await?,
            true => graph.stream_queued::<C>(delivered).await?,
        }
        graph.finish::<C>(delivered).await
    }

    /// The nodes borrowed for one run.
    fn graph<'a>(
        &'a mut self,
        pauses: &'a PauseCounts,
        tracking: Option<tracking::Tracking>,
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
            work: Vec::new(),
            upgrades: self.upgrade_queue.as_mut().map(|(_, queue)| queue),
            outcomes: &mut self.upgrades,
            to_feeder: None,
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
                        .instantiate_async(&component_of(engine, &spec, node, components)?)
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
        self.run_with::<AsyncCalls>(delivered, true).await
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

/// The component node `node` runs: the one its flow names, with the
/// node's own limits when it has any.
fn component_of<E: WasmEngine>(
    engine: &E,
    spec: &FlowSpec,
    node: &NodeSpec,
    components: &std::collections::BTreeMap<String, E::Component>,
) -> Result<E::Component> {
    let component = components.get(&node.component).ok_or_else(|| Error::Flow {
        flow: spec.name.clone(),
        detail: format!(
            "node `{}` names component `{}`, which is not declared",
            node.name, node.component
        ),
    })?;
    engine
        .with_node_limits(component, &node.limits)
        .map_err(|error| Error::Flow {
            flow: spec.name.clone(),
            detail: format!("node `{}`: its limits: {error}", node.name),
        })
}

/// Nanoseconds since the Unix epoch (the runtime's element timestamps).
pub(crate) fn now_ns() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// The report of a flow's nodes, upstream first: each node's counts with
/// its instance's fuel so far. `node(i)` is node `i`'s counts and slot
/// (`None`: not in the report, e.g. a source the async driver took out).
fn report_of<'a, I: 'a + ComponentInvoker>(
    spec: &FlowSpec,
    order: &[usize],
    elapsed: Duration,
    node: impl Fn(usize) -> Option<(&'a NodeReport, &'a Slot<I>)>,
) -> FlowReport {
    let nodes = order
        .iter()
        .filter_map(|&i| {
            let (report, slot) = node(i)?;
            let mut report = report.clone();
            if let Slot::Component(instance) = slot {
                report.fuel = instance.total_fuel_consumed();
            }
            Some(report)
        })
        .collect();
    FlowReport {
        flow: spec.name.clone(),
        nodes,
        elapsed,
    }
}
