//! Live upgrade: a node's instance replaced while its flow runs, between
//! two elements, with its state carried over (issue 23, first part).
//!
//! An [`Upgrader`] (from [`Flow::upgrader`](super::Flow::upgrader)) lives on
//! any thread. `upgrade` checks the new instance's role and `init`s it with
//! the node's config there, off the flow's path, then queues it. The driver
//! takes what is queued before each element it moves (one `try_recv` per
//! element when nothing is): if old and new export `torvyn:state`, the old
//! one's `save` goes to the new one's `restore`; else an aggregator is
//! flushed first (its outputs go downstream, in order) and the new one
//! starts empty. Then the new instance serves and the old one gets
//! `teardown`. A failed `save` or `restore` leaves the old instance
//! serving; the failure is in [`Flow::upgrades`](super::Flow::upgrades)
//! and logged.

use std::sync::mpsc;

use crate::calls::Calls;
use crate::error::{Error, Result};
use crate::interfaces::Interface;
use crate::invoker::ComponentInvoker;

use super::slot::Slot;
use super::stage::Stage;

/// A new instance for a node, waiting for the driver.
pub(super) struct Pending<I> {
    pub(super) node: usize,
    instance: I,
}

/// An upgrader's queue: its sending end (cloned into every upgrader) and
/// the driver's receiving end.
pub(super) type Queue<I> = (mpsc::Sender<Pending<I>>, mpsc::Receiver<Pending<I>>);

/// What one upgrade did.
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
/// let replacement = engine.instantiate(&components["upper"])?;
/// flow.upgrader().upgrade("upper", replacement)?;
/// flow.run(|_, _| {})?;
/// for outcome in flow.upgrades() {
///     assert!(outcome.failed.is_none(), "{outcome:?}");
///     println!("{} upgraded after {} inputs", outcome.node, outcome.after_inputs);
/// }
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeOutcome {
    /// The node.
    pub node: String,
    /// Elements the node had taken in when the new instance took over.
    pub after_inputs: u64,
    /// How the old instance's state reached the new one.
    pub carried: Carried,
    /// Why the old instance kept serving, if it did.
    pub failed: Option<String>,
}

/// How state crossed an upgrade.
///
/// ```
/// use torvyn_engine::flow::Carried;
///
/// fn describe(carried: Carried) -> String {
///     match carried {
///         Carried::State(bytes) => format!("{bytes} bytes of state moved"),
///         Carried::Flushed => "flushed downstream, started empty".into(),
///         Carried::Nothing => "nothing to carry".into(),
///         _ => "another way".into(), // more ways may come
///     }
/// }
/// assert_eq!(describe(Carried::State(12)), "12 bytes of state moved");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Carried {
    /// `save` on the old instance, `restore` on the new one: this many bytes.
    State(usize),
    /// The old aggregator was flushed downstream; the new one starts empty.
    Flushed,
    /// Nothing to carry (a stage without state, or the upgrade failed).
    Nothing,
}

/// Replaces nodes' instances of a running flow; cheap to clone, usable from
/// any thread.
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
/// use torvyn_engine::flow::Carried;
///
/// // From any thread, while the flow runs: the next element goes to the new one.
/// let upgrader = flow.upgrader();
/// let replacement = engine.compile("upper v2", &torvyn_fixtures::uppercase_processor())?;
/// upgrader.upgrade("upper", engine.instantiate(&replacement)?)?;
/// flow.run(|_, _| {})?;
/// let outcome = &flow.upgrades()[0];
/// assert_eq!((outcome.node.as_str(), outcome.carried), ("upper", Carried::Nothing));
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
pub struct Upgrader<I> {
    flow: String,
    /// Per node: name, role, config.
    nodes: Vec<(String, Interface, String)>,
    queue: mpsc::Sender<Pending<I>>,
}

impl<I> Clone for Upgrader<I> {
    fn clone(&self) -> Self {
        Upgrader {
            flow: self.flow.clone(),
            nodes: self.nodes.clone(),
            queue: self.queue.clone(),
        }
    }
}

impl<I> std::fmt::Debug for Upgrader<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrader")
            .field("flow", &self.flow)
            .finish_non_exhaustive()
    }
}

impl<I> std::fmt::Debug for Pending<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl<I> Pending<I> {
    /// The new instance.
    pub(super) fn into_instance(self) -> I {
        self.instance
    }
}

impl<I: ComponentInvoker> Upgrader<I> {
    pub(super) fn new(
        flow: String,
        nodes: Vec<(String, Interface, String)>,
        queue: mpsc::Sender<Pending<I>>,
    ) -> Upgrader<I> {
        Upgrader { flow, nodes, queue }
    }

    /// Makes `instance` the one of node `node` from the next element on:
    /// checks it exports the node's role, `init`s it with the node's config
    /// (on this thread), and queues it for the driver. An error here (no
    /// such node, the role missing, `init` failing, the flow gone) leaves
    /// the flow untouched.
    pub fn upgrade(&self, node: &str, mut instance: I) -> Result<()> {
        let error = |detail: String| Error::Flow {
            flow: self.flow.clone(),
            detail,
        };
        let index = self
            .nodes
            .iter()
            .position(|(name, _, _)| name == node)
            .ok_or_else(|| error(format!("upgrade: no node `{node}`")))?;
        let (_, role, config) = &self.nodes[index];
        if !instance.has(*role) {
            return Err(error(format!(
                "upgrade of node `{node}`: component `{}` does not export `{}`",
                instance.name(),
                role.wit_name()
            )));
        }
        if instance.has(Interface::Lifecycle) {
            instance.init(config)?;
        }
        self.queue
            .send(Pending {
                node: index,
                instance,
            })
            .map_err(|_| error(format!("upgrade of node `{node}`: the flow is gone")))
    }
}

/// The first steps of every swap: the old instance's state carried into
/// the new one when both export `torvyn:state`. A failure is in the
/// outcome (and the node's row): the old instance keeps serving.
pub(super) async fn prepare<I: ComponentInvoker, C: Calls<I>>(
    node: String,
    stage: &mut Stage<'_, I>,
    instance: &mut I,
) -> UpgradeOutcome {
    let mut outcome = UpgradeOutcome {
        node,
        after_inputs: stage.report.elements_in,
        carried: Carried::Nothing,
        failed: None,
    };
    match carry::<I, C>(stage.slot.instance(), instance).await {
        Ok(Some(bytes)) => outcome.carried = Carried::State(bytes),
        Ok(None) => {}
        Err(error) => {
            stage.report.upgrades_refused += 1;
            outcome.failed = Some(error.to_string());
        }
    }
    outcome
}

/// `save` on `old` and `restore` into `new` when both export
/// `torvyn:state`: the bytes carried; `None` when either does not. An
/// error: the old instance keeps serving.
async fn carry<I: ComponentInvoker, C: Calls<I>>(
    old: &mut I,
    new: &mut I,
) -> Result<Option<usize>> {
    if !(old.has(Interface::Snapshot) && new.has(Interface::Snapshot)) {
        return Ok(None);
    }
    let state = C::save(old).await?;
    C::restore(new, &state).await?;
    Ok(Some(state.len()))
}

/// `instance` serves `stage` from now on; the old one gets `teardown`.
pub(super) async fn take_over<I: ComponentInvoker, C: Calls<I>>(
    node: &str,
    stage: &mut Stage<'_, I>,
    instance: I,
) {
    let mut old = std::mem::replace(stage.slot, Slot::Component(instance));
    stage.report.upgrades += 1;
    let old = old.instance();
    if old.has(Interface::Lifecycle) {
        // The old version is done either way: its teardown's failure is
        // reported, not a reason to stop the flow.
        if let Err(error) = C::teardown(old).await {
            tracing::warn!(%node, %error, "teardown of the replaced instance failed");
        }
    }
}

/// A source's swap on `run_async`, whose feeder holds the source's stage:
/// the steps of the graph's own swap (a source is no aggregator: nothing
/// to flush).
pub(super) async fn swap_source<I: ComponentInvoker, C: Calls<I>>(
    flow: &str,
    node: &str,
    stage: &mut Stage<'_, I>,
    mut instance: I,
) -> UpgradeOutcome {
    let outcome = prepare::<I, C>(node.to_string(), stage, &mut instance).await;
    if outcome.failed.is_none() {
        take_over::<I, C>(node, stage, instance).await;
    }
    log_outcome(flow, &outcome);
    outcome
}

pub(super) fn log_outcome(flow: &str, outcome: &UpgradeOutcome) {
    match &outcome.failed {
        Some(why) => {
            tracing::warn!(%flow, node = %outcome.node, %why, "upgrade refused; the old instance keeps serving")
        }
        None => {
            tracing::info!(%flow, node = %outcome.node, after_inputs = outcome.after_inputs, carried = ?outcome.carried, "upgraded")
        }
    }
}
