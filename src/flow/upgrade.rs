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
use crate::invoker::{ComponentInvoker, Element};

use super::graph::Graph;
use super::Slot;

/// A new instance for a node, waiting for the driver.
pub(super) struct Pending<I> {
    node: usize,
    instance: I,
}

/// An upgrader's queue: its sending end (cloned into every upgrader) and
/// the driver's receiving end.
pub(super) type Queue<I> = (mpsc::Sender<Pending<I>>, mpsc::Receiver<Pending<I>>);

/// What one upgrade did.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl<I: ComponentInvoker> Graph<'_, I> {
    /// Applies every upgrade queued so far (before the next element);
    /// returns how many were taken (applied or refused).
    pub(super) async fn take_upgrades<C: Calls<I>>(
        &mut self,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<usize> {
        let mut taken = 0;
        while let Some(pending) = self.upgrades.as_mut().and_then(|q| q.try_recv().ok()) {
            let node = pending.node;
            let outcome = self.swap::<C>(pending, delivered).await?;
            if let Some(stage) = self.stages[node].as_mut() {
                match outcome.failed {
                    Some(_) => stage.report.upgrades_refused += 1,
                    None => stage.report.upgrades += 1,
                }
            }
            match &outcome.failed {
                Some(why) => {
                    tracing::warn!(flow = %self.spec.name, node = %outcome.node, %why, "upgrade refused; the old instance keeps serving")
                }
                None => {
                    tracing::info!(flow = %self.spec.name, node = %outcome.node, after_inputs = outcome.after_inputs, carried = ?outcome.carried, "upgraded")
                }
            }
            self.outcomes.push(outcome);
            taken += 1;
        }
        Ok(taken)
    }

    /// One swap at node `pending.node`.
    async fn swap<C: Calls<I>>(
        &mut self,
        pending: Pending<I>,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<UpgradeOutcome> {
        let Pending { node, mut instance } = pending;
        let name = self.spec.nodes[node].name.clone();
        let aggregator = self.spec.nodes[node].role == Interface::Aggregator;
        if self.stages[node].is_none() {
            // The async driver's sources are pulled by its feeder, apart from
            // the graph: they are replaced on the sync and service drivers.
            return Ok(UpgradeOutcome {
                node: name,
                after_inputs: 0,
                carried: Carried::Nothing,
                failed: Some(
                    "a source is upgraded on Flow::run and Flow::serve, not on run_async's \
                     feeder"
                        .into(),
                ),
            });
        }
        let stage = self.stage(node);
        let after_inputs = stage.report.elements_in;
        let old = stage.slot.instance();
        let mut outcome = UpgradeOutcome {
            node: name,
            after_inputs,
            carried: Carried::Nothing,
            failed: None,
        };
        if old.has(Interface::Snapshot) && instance.has(Interface::Snapshot) {
            let carried = match C::save(old).await {
                Ok(state) => C::restore(&mut instance, &state)
                    .await
                    .map(|()| state.len()),
                Err(error) => Err(error),
            };
            match carried {
                Ok(bytes) => outcome.carried = Carried::State(bytes),
                Err(error) => {
                    // The old instance keeps serving; the new one is dropped.
                    outcome.failed = Some(error.to_string());
                    return Ok(outcome);
                }
            }
        } else if aggregator {
            // No state to carry: what the old one holds goes downstream now.
            self.flush_downstream::<C>(node, delivered).await?;
            outcome.carried = Carried::Flushed;
        }
        let stage = self.stage(node);
        let mut old = std::mem::replace(stage.slot, Slot::Component(instance));
        let old = old.instance();
        if old.has(Interface::Lifecycle) {
            // The old version is done either way: its teardown's failure
            // is reported, not a reason to stop the flow.
            if let Err(error) = C::teardown(old).await {
                tracing::warn!(node = %outcome.node, %error, "teardown of the replaced instance failed");
            }
        }
        Ok(outcome)
    }
}
