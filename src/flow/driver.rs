//! [`Flow`]: a validated flow with an instance (or a connector) per node,
//! and its three ways to run — [`Flow::run`] on the calling thread,
//! [`Flow::run_async`] as a future, [`Flow::serve`] as a service over
//! connectors — each building the run's [`Graph`] and leaving the moving of
//! elements to it.

use std::time::{Duration, Instant};

use super::graph::Graph;
use super::pauses::PauseCounts;
use super::report::report_of;
use super::serve::{self, Counts};
use super::slot::Slot;
use super::spec::Plan;
use super::stage::Stage;
use super::tracking::Tracking;
use super::upgrade::{self, Upgrader};
use super::windowed::windowing_of;
use super::{
    ConnectorReport, FlowReport, FlowSpec, NodeReport, NodeSpec, ServeOptions, ServeReport, Stop,
    UpgradeOutcome,
};
use crate::calls::{AsyncCalls, Calls, SyncCalls};
use crate::connect::{Connector, Connectors};
use crate::engine::WasmEngine;
use crate::error::{Error, Result};
use crate::gate::run_ready;
use crate::interfaces::Interface;
use crate::invoker::{AsyncComponentInvoker, ComponentInvoker, Element};

/// A validated flow with an instance (or a connector) per node, ready to run.
///
/// ```
/// # use std::collections::BTreeMap;
/// # use torvyn_engine::{CompiledComponent, EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// # let mut components = BTreeMap::new();
/// # for (name, bytes) in [
/// #     ("numbers", torvyn_fixtures::counting_source()),
/// #     ("upper", torvyn_fixtures::uppercase_processor()),
/// #     ("printer", torvyn_fixtures::recording_sink()),
/// # ] {
/// #     components.insert(name.to_string(), engine.compile(name, &bytes)?);
/// # }
/// use torvyn_engine::flow::{Flow, FlowSpec, NodeSpec};
/// use torvyn_engine::Interface;
///
/// let spec = FlowSpec::linear(
///     NodeSpec::component("numbers", "numbers", Interface::Source, "3"),
///     vec![NodeSpec::component("upper", "upper", Interface::Processor, "")],
///     NodeSpec::component("printer", "printer", Interface::Sink, ""),
/// );
/// let mut flow = Flow::instantiate(&engine, spec, &components)?;
/// let report = flow.run(|node, element| println!("{node}: {:?}", element.payload))?;
/// assert_eq!(report.delivered(), 3);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
pub struct Flow<I> {
    pub(super) spec: FlowSpec,
    pub(super) plan: Plan,
    /// Elements pulled at most, over all sources.
    pub(super) limit: Option<u64>,
    /// Per node, in `spec.nodes` order.
    pub(super) slots: Vec<Slot<I>>,
    pub(super) reports: Vec<NodeReport>,
    /// The queue of an [`Upgrader`], once one was made.
    pub(super) upgrade_queue: Option<upgrade::Queue<I>>,
    /// What the upgrades so far did.
    pub(super) upgrades: Vec<UpgradeOutcome>,
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
    pub(super) async fn stream_with<C: Calls<I>>(
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
        tracking: Option<Tracking>,
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
            windowing: windowing_of(&self.spec, &self.plan),
        }
    }

    pub(super) async fn init_with<C: Calls<I>>(&mut self) -> Result<()> {
        for (node, slot) in self.spec.nodes.iter().zip(&mut self.slots) {
            if let Slot::Component(instance) = slot {
                if instance.has(Interface::Lifecycle) {
                    C::init(instance, &node.config).await?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn teardown_with<C: Calls<I>>(&mut self) -> Result<()> {
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
        refuse_connectors(&self.spec, "Flow::run_async")?;
        self.run_with::<AsyncCalls>(delivered, true).await
    }

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
            result = serve::run(&mut graph, &mut options, &mut delivered, &mut counts)
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
            already_counted: counts.already_counted,
        })
    }

    fn connector_reports(&self) -> Vec<ConnectorReport> {
        serve::connector_reports(
            self.spec.nodes.iter().zip(self.slots.iter()),
            &self.plan.order,
        )
    }
}

/// Connector nodes run only on [`Flow::serve`] (they are async and settle
/// inputs per batch): `run` and `run_async` refuse them by name.
fn refuse_connectors(spec: &FlowSpec, entry: &str) -> Result<()> {
    match spec.nodes.iter().find(|node| node.connector.is_some()) {
        None => Ok(()),
        Some(node) => Err(Error::Flow {
            flow: spec.name.clone(),
            detail: format!(
                "node `{}` is a `{}` connector: {entry} runs components only; connectors run \
                 on the service driver (Flow::instantiate_connected, then Flow::serve)",
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
