//! Stateful stages' states in the store: restored after `init`, saved at a
//! stop (what they absorbed then counts as stored), removed once emitted.

use std::collections::BTreeSet;

use super::counted::Counted;
use crate::calls::{AsyncCalls, Calls};
use crate::error::{Error, Result};
use crate::flow::graph::Graph;
use crate::flow::slot::Slot;
use crate::flow::state::{state_key, StateOptions};
use crate::flow::tracking::InputKey;
use crate::flow::FlowSpec;
use crate::interfaces::Interface;
use crate::invoker::AsyncComponentInvoker;

/// The scope of the flow's state keys: the options', else the flow's name.
pub(super) fn scope_of<'s>(spec: &'s FlowSpec, state: &'s StateOptions) -> &'s str {
    match state.scope.is_empty() {
        true => &spec.name,
        false => &state.scope,
    }
}

/// The component stages exporting `torvyn:state`: (node, its key).
fn stateful<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    state: &StateOptions,
) -> Vec<(usize, String)> {
    let spec: &FlowSpec = graph.spec;
    let scope = scope_of(spec, state);
    (0..spec.nodes.len())
        .filter(|&node| {
            graph.stages[node].as_mut().is_some_and(|stage| {
                matches!(&*stage.slot, Slot::Component(instance) if instance.has(Interface::Snapshot))
            })
        })
        .map(|node| (node, state_key(scope, &spec.nodes[node].name)))
        .collect()
}

/// Restores every stateful stage's stored state (after its `init`). A
/// state stored for a stage that cannot take it is an error: the inputs
/// it absorbed were acknowledged, so dropping it would lose them.
pub(super) async fn restore_states<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    state: &StateOptions,
    counted: &mut Counted,
) -> Result<u64> {
    let mut restored = 0;
    let spec: &FlowSpec = graph.spec;
    let scope = scope_of(spec, state);
    for (node, stage) in graph.stages.iter_mut().enumerate() {
        let Some(stage) = stage else { continue };
        let Slot::Component(instance) = &mut *stage.slot else {
            continue;
        };
        let name = &spec.nodes[node].name;
        let key = state_key(scope, name);
        if instance.has(Interface::Snapshot) {
            counted.load(state, &key).await;
        }
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
pub(super) async fn save_states<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    state: &StateOptions,
    counted: &Counted,
) -> (u64, BTreeSet<InputKey>) {
    let mut absorbed = BTreeSet::new();
    let mut saved_count = 0;
    let connectors: Vec<bool> = (0..graph.spec.nodes.len())
        .map(|node| from_connector(graph, node))
        .collect();
    for (node, key) in stateful(graph, state) {
        let name = graph.spec.nodes[node].name.clone();
        let Some(stage) = graph.stages[node].as_mut() else {
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
                tracing::info!(flow = %graph.spec.name, node = %name, bytes, %key, "state saved");
                let tracking = graph.tracking();
                let holds = std::mem::take(&mut tracking.holds[node]);
                // What this state settles: held by no other stage (those
                // stay held, handed back if their state is not stored).
                let held_elsewhere = tracking.held();
                let settled: BTreeSet<String> = holds
                    .iter()
                    .filter(|key| !held_elsewhere.contains(key) && connectors[key.0])
                    .filter_map(|key| tracking.origins.get(key).cloned())
                    .collect();
                counted.store(state, &key, &settled).await;
                absorbed.extend(holds);
                saved_count += 1;
            }
            Err(error) => {
                tracing::warn!(flow = %graph.spec.name, node = %name, %error, "state not saved; its inputs are handed back")
            }
        }
    }
    (saved_count, absorbed)
}

/// Removes every stateful stage's stored state (emitted at the end).
pub(super) async fn remove_states<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    state: &StateOptions,
) -> Result<()> {
    for (_, key) in stateful(graph, state) {
        state.store.remove(&key).await?;
        Counted::remove(state, &key).await;
    }
    Ok(())
}

/// Whether `node` is a source connector (its inputs come again when not
/// acknowledged; a component source's are made anew each run).
fn from_connector<I: AsyncComponentInvoker>(graph: &mut Graph<'_, I>, node: usize) -> bool {
    matches!(
        graph.stages[node].as_mut().map(|stage| &*stage.slot),
        Some(Slot::Source(_))
    )
}
