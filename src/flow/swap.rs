//! Upgrades taken by the running graph between two elements: each one
//! queued applied at its node (or handed to the async driver's feeder for
//! a source it pulls), and what it did recorded.

use super::graph::Graph;
use super::upgrade::{log_outcome, prepare, take_over, Pending};
use super::{Carried, UpgradeOutcome};
use crate::calls::Calls;
use crate::error::Result;
use crate::interfaces::Interface;
use crate::invoker::{ComponentInvoker, Element};

impl<I: ComponentInvoker> Graph<'_, I> {
    /// Applies every upgrade queued so far (before the next element);
    /// returns how many were taken (applied, refused, or handed to the
    /// async driver's feeder for a source it pulls).
    pub(super) async fn take_upgrades<C: Calls<I>>(
        &mut self,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<usize> {
        let mut taken = 0;
        while let Some(pending) = self.upgrades.as_mut().and_then(|q| q.try_recv().ok()) {
            taken += 1;
            if self.stages[pending.node].is_none() {
                // A source pulled by `run_async`'s feeder: the feeder swaps
                // it between two of its pulls.
                let refused = match &self.to_feeder {
                    Some(feeder) => feeder.send(pending).err().map(|returned| {
                        // The feeder has finished: nothing left to pull.
                        (returned.0.node, "the source has ended")
                    }),
                    None => Some((pending.node, "the source is pulled apart from the graph")),
                };
                if let Some((node, why)) = refused {
                    let outcome = UpgradeOutcome {
                        node: self.spec.nodes[node].name.clone(),
                        after_inputs: 0,
                        carried: Carried::Nothing,
                        failed: Some(why.into()),
                    };
                    log_outcome(&self.spec.name, &outcome);
                    self.outcomes.push(outcome);
                }
                continue;
            }
            let outcome = self.swap::<C>(pending, delivered).await?;
            log_outcome(&self.spec.name, &outcome);
            self.outcomes.push(outcome);
        }
        Ok(taken)
    }

    /// One swap at node `pending.node`.
    async fn swap<C: Calls<I>>(
        &mut self,
        pending: Pending<I>,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<UpgradeOutcome> {
        let node = pending.node;
        let mut instance = pending.into_instance();
        let name = self.spec.nodes[node].name.clone();
        let aggregator = self.spec.nodes[node].role == Interface::Aggregator;
        let mut outcome = prepare::<I, C>(name, self.stage(node), &mut instance).await;
        if outcome.failed.is_some() {
            return Ok(outcome);
        }
        if aggregator && outcome.carried == Carried::Nothing {
            // No state to carry: what the old one holds goes downstream now.
            self.flush_downstream::<C>(node, delivered).await?;
            outcome.carried = Carried::Flushed;
        }
        take_over::<I, C>(&outcome.node, self.stage(node), instance).await;
        Ok(outcome)
    }
}
