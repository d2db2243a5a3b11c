//! The async driver's feeder: the sources pulled in turn, each into its
//! own share of the queue in front of the rest of the flow.

use super::pauses::PauseCounts;
use super::stage::{pull_one, Stage};
use super::upgrade::{swap_source, Pending};
use super::{FlowSpec, UpgradeOutcome};
use crate::calls::Calls;
use crate::error::Result;
use crate::interfaces::Interface;
use crate::invoker::{ComponentInvoker, Element};

/// The async driver's sources, in turn: each pull waits for room in its
/// source's share of the queue (room, then a slot, then the pull: a pulled
/// element is never left unsent). A source at its bound is told `pause`
/// and passed over, so the others keep their own bounds; when every source
/// is at its bound, the feeder waits for the consumer to take an element.
#[allow(clippy::too_many_arguments)]
pub(super) async fn feed_sources<I: ComponentInvoker, C: Calls<I>>(
    spec: &FlowSpec,
    mut sources: Vec<(usize, Stage<'_, I>)>,
    queue: tokio::sync::mpsc::Sender<(usize, Element)>,
    room: &[Option<tokio::sync::Semaphore>],
    taken: &tokio::sync::Notify,
    pauses: &PauseCounts,
    mut budget: u64,
    upgrades: Option<std::sync::mpsc::Receiver<Pending<I>>>,
) -> Result<Vec<UpgradeOutcome>> {
    let mut exhausted = vec![false; sources.len()];
    let mut at_bound = vec![false; sources.len()];
    let mut outcomes = Vec::new();
    while exhausted.iter().any(|done| !done) && budget > 0 {
        // Upgrades of sources take over between two pulls.
        while let Some(pending) = upgrades.as_ref().and_then(|u| u.try_recv().ok()) {
            let node = pending.node;
            let Some((_, stage)) = sources.iter_mut().find(|(source, _)| *source == node) else {
                continue;
            };
            let instance = pending.into_instance();
            outcomes.push(
                swap_source::<I, C>(&spec.name, &spec.nodes[node].name, stage, instance).await,
            );
        }
        let mut pulled = false;
        for (i, (source, stage)) in sources.iter_mut().enumerate() {
            if exhausted[i] || budget == 0 {
                continue;
            }
            let Some(room) = &room[*source] else {
                unreachable!("every source has room in the queue")
            };
            let Ok(held) = room.try_acquire() else {
                if !at_bound[i] {
                    at_bound[i] = true;
                    pauses.add(*source, true);
                    if let Some(signal) = pauses.change(*source) {
                        C::notify_backpressure(stage.slot.instance(), signal).await?;
                    }
                }
                continue;
            };
            if at_bound[i] {
                at_bound[i] = false;
                pauses.add(*source, false);
            }
            // Given back by the consumer when the element leaves the queue.
            held.forget();
            // The channel has room for every source's bound: this waits
            // only if the rest of the flow stopped, which ends the feeding.
            let Ok(slot) = queue.reserve().await else {
                return Ok(outcomes);
            };
            if let Some(signal) = pauses.change(*source) {
                C::notify_backpressure(stage.slot.instance(), signal).await?;
            }
            pulled = true;
            match pull_one::<I, C>(stage).await? {
                Some(element) => {
                    budget -= 1;
                    slot.send((*source, element));
                }
                // (A pull that finds the source exhausted costs no budget.)
                None => {
                    room.add_permits(1);
                    exhausted[i] = true;
                }
            }
        }
        if !pulled {
            if queue.is_closed() {
                return Ok(outcomes);
            }
            taken.notified().await;
        }
    }
    Ok(outcomes)
}

/// Room per source, as permits: taken before a pull, given back when the
/// element leaves the queue; and the queue's capacity, which holds every
/// source's bound at once, so a send never waits on it.
pub(super) fn room_per_source(spec: &FlowSpec) -> (Vec<Option<tokio::sync::Semaphore>>, usize) {
    let room: Vec<Option<tokio::sync::Semaphore>> = (0..spec.nodes.len())
        .map(|node| {
            (spec.nodes[node].role == Interface::Source)
                .then(|| tokio::sync::Semaphore::new(spec.source_queue_depth(node)))
        })
        .collect();
    let capacity = room
        .iter()
        .flatten()
        .map(tokio::sync::Semaphore::available_permits)
        .sum::<usize>()
        .max(1);
    (room, capacity)
}
