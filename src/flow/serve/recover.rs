//! A failed input: the instance it poisoned replaced, the input handed
//! back to its source (retried or dead-lettered), and what an aggregator
//! had released into it handed back too.

use std::collections::BTreeSet;

use super::intake::source_connector;
use super::options::Counts;
use super::settle::release;
use super::unsettled::Unsettled;
use super::ServeOptions;
use crate::connect::Failed;
use crate::error::{Error, Result};
use crate::flow::graph::Graph;
use crate::flow::slot::Slot;
use crate::flow::tracking::InputKey;
use crate::flow::FlowSpec;
use crate::interfaces::Interface;
use crate::invoker::AsyncComponentInvoker;

/// An input failed: replace the instance it poisoned, hand the input
/// back to its source (retried or dead-lettered), and hand back what an
/// aggregator released into it (their aggregate was not stored).
pub(super) async fn recover<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    error: Error,
    key: InputKey,
    unsettled: &mut Unsettled,
    options: &mut ServeOptions<I>,
    counts: &mut Counts,
) -> Result<()> {
    counts.failed_inputs += 1;
    let flow: &FlowSpec = graph.spec;
    let failed_node = graph.failed_at.take();
    let mut give_back: BTreeSet<InputKey> = std::mem::take(&mut graph.tracking().carried);
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
        if let Some(stage) = &mut graph.stages[node] {
            *stage.slot = Slot::Component(fresh);
        }
        counts.respawned += 1;
        // Its state is gone with it: what it held must come again.
        let lost = std::mem::take(&mut graph.tracking().holds[node]);
        give_back.extend(lost);
    }
    let still_held = graph.tracking().held();
    let text = error.to_string();
    if unsettled.remove(&key) {
        let failed = source_connector(graph, key.0)?.fail(key.1, &text).await?;
        if failed == Failed::DeadLettered {
            tracing::error!(flow = %flow.name, %text, "input dead-lettered");
        }
    }
    let give_back: Vec<InputKey> = give_back
        .into_iter()
        .filter(|key| !still_held.contains(key) && unsettled.remove(key))
        .collect();
    release(graph, give_back).await?;
    Ok(())
}
