//! Windowed nodes' windows in the store, committed with each batch: when
//! a batch is closed, every windowed node's open states and watermark are
//! taken as one value; when the batch is settled its outputs (the results
//! of the windows it closed among them) are stored first, then that value,
//! then its inputs are acknowledged (confirmed). So a worker killed at any
//! point leaves a stored value that matches the acked inputs: whoever
//! takes over restores it, the unacked inputs come again and are folded
//! again, and a window closed again publishes its result under the same
//! id, which the broker's de-duplication drops.
//!
//! One value for the whole flow (key `SCOPE==windows`), written at once:
//! several writes could be cut half way, leaving some of a batch's folds
//! stored with its inputs still to come again. It also holds the origins
//! of the batch it was taken after: an input whose ack the broker lost
//! after the value was stored comes again, is found there, and is
//! acknowledged without being folded twice (see `counted.rs`).
//!
//! The layout: a version byte (1); the origins (`u32` byte length, one
//! origin a line); per windowed node: name length (`u32`) and bytes,
//! snapshot length (`u32`) and bytes (`KeyedWindows`' own layout).

use std::collections::BTreeSet;

use super::counted::Counted;
use super::states::scope_of;
use crate::error::{Error, Result};
use crate::flow::graph::Graph;
use crate::flow::state::{state_key, StateOptions};
use crate::flow::FlowSpec;
use crate::invoker::AsyncComponentInvoker;

const VERSION: u8 = 1;

/// The key of a flow's windows in `state`'s scope.
fn windows_key(spec: &FlowSpec, state: &StateOptions) -> String {
    // A node's own key is `SCOPE.NODE`; no node is named `==windows`.
    state_key(scope_of(spec, state), "==windows")
}

/// Every windowed node's windows, with the origins of the batch they were
/// taken after and those `carried` from the restored value; `None` when
/// no window changed since the last one (the stored value still holds).
pub(super) fn take_windows<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    origins: &[String],
    carried: &BTreeSet<String>,
) -> Option<Vec<u8>> {
    let mut changed = false;
    for windowing in &mut graph.windowing {
        changed |= windowing.take_changed();
    }
    if !changed {
        return None;
    }
    let mut out = vec![VERSION];
    let named: Vec<&str> = origins.iter().chain(carried).map(String::as_str).collect();
    let text = named.join("\n");
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    for windowing in &mut graph.windowing {
        let name = graph.spec.nodes[windowing.node].name.as_bytes();
        let snapshot = windowing.windows().snapshot();
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(snapshot.len() as u32).to_le_bytes());
        out.extend_from_slice(&snapshot);
    }
    Some(out)
}

/// Stores what [`take_windows`] took.
pub(super) async fn store_windows(
    spec: &FlowSpec,
    state: &StateOptions,
    windows: &[u8],
) -> Result<()> {
    state.store.store(&windows_key(spec, state), windows).await
}

/// Restores the stored windows, if any, into the windowed nodes, and
/// counts the origins of the batch they were taken after as counted.
/// Returns those origins when a value was found: each value this run
/// stores names them too until they have come again (`Unsettled::carry`).
/// A value that cannot be read, or names a node the flow does not have, is
/// an error naming it: its inputs were acknowledged, so dropping it would
/// lose them.
pub(super) async fn restore_windows<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    state: &StateOptions,
    counted: &mut Counted,
) -> Result<Option<Vec<String>>> {
    let key = windows_key(graph.spec, state);
    let Some(bytes) = state.store.load(&key).await? else {
        return Ok(None);
    };
    let error = |detail: String| Error::State {
        store: state.store.describe(),
        detail: format!("the windows stored under `{key}`: {detail}"),
        source: None,
    };
    let total = bytes.len();
    let mut rest: &[u8] = &bytes;
    let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>> {
        if rest.len() < n {
            return Err(error(format!(
                "cut short at byte {} of {total}",
                total - rest.len()
            )));
        }
        let (taken, left) = rest.split_at(n);
        *rest = left;
        Ok(taken.to_vec())
    };
    let version = take(&mut rest, 1)?[0];
    if version != VERSION {
        return Err(error(format!(
            "layout {version}; this version reads layout {VERSION}"
        )));
    }
    let length = |bytes: Vec<u8>| u32::from_le_bytes(bytes.try_into().expect("4 bytes")) as usize;
    let origins_len = length(take(&mut rest, 4)?);
    let origins: Vec<String> = String::from_utf8_lossy(&take(&mut rest, origins_len)?)
        .lines()
        .map(str::to_string)
        .collect();
    for origin in &origins {
        counted.add(origin.clone());
    }
    let mut restored = Vec::new();
    while !rest.is_empty() {
        let name_len = length(take(&mut rest, 4)?);
        let name = String::from_utf8_lossy(&take(&mut rest, name_len)?).into_owned();
        let snapshot_len = length(take(&mut rest, 4)?);
        restored.push((name, take(&mut rest, snapshot_len)?));
    }
    for (name, snapshot) in restored {
        let windowing = graph
            .windowing
            .iter_mut()
            .find(|w| graph.spec.nodes[w.node].name == name)
            .ok_or_else(|| {
                error(format!(
                    "windows of node `{name}`, which flow `{}` has not (or not windowed); \
                     run the flow that stored them, or remove the key to drop them",
                    graph.spec.name
                ))
            })?;
        windowing
            .windows()
            .restore_snapshot(&snapshot)
            .map_err(|detail| error(format!("node `{name}`: {detail}")))?;
        // As stored: the next value is taken once something changes.
        windowing.take_changed();
        tracing::info!(flow = %graph.spec.name, node = %name, bytes = snapshot.len(),
            windows = windowing.windows().len(), "windows restored");
    }
    Ok(Some(origins))
}

/// Removes the stored windows (every window closed and its result stored
/// at the end of the stream).
pub(super) async fn remove_windows(spec: &FlowSpec, state: &StateOptions) -> Result<()> {
    state.store.remove(&windows_key(spec, state)).await
}

/// A flow with windowed nodes served from a broker without a store for
/// its windows: refused, since each batch's inputs are acknowledged once
/// folded and a restart would lose the windows holding them. (From stdin
/// or files nothing comes again anyway: the windows live in memory.)
pub(super) fn refuse_windows_without_store(spec: &FlowSpec) -> Result<()> {
    let redelivering = spec.nodes.iter().find(|node| {
        node.connector
            .as_ref()
            .is_some_and(|connector| connector.kind == "nats")
    });
    match redelivering {
        Some(node) => Err(Error::Flow {
            flow: spec.name.clone(),
            detail: format!(
                "its windowed nodes need a store for their windows (`torvyn run --state-bucket \
                 BUCKET` or `--state-dir DIR`; `ServeOptions::state`): source `{}` acknowledges \
                 each input once folded, and without a store a restart would lose the windows \
                 holding them",
                node.name
            ),
        }),
        None => Ok(()),
    }
}
