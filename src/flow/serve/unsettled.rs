//! Inputs taken and not yet settled, and the batches whose outputs are
//! sent and not yet confirmed stored: which inputs the storing of which
//! batch settles.
//!
//! The rule: an input is acknowledged once every output derived from it is
//! stored. Its outputs leave with the batch it came in ([`close`]), unless
//! an aggregator absorbed it: then with the batch in which the aggregate
//! carrying it was emitted (the first [`close`] after the release). So each
//! input is settled by exactly one batch, and acknowledged when that
//! batch's sends are confirmed, in any order relative to other inputs.
//!
//! [`close`]: Unsettled::close

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::flow::tracking::InputKey;

/// A batch whose outputs were sent: its number and each sink's send.
pub(super) struct Closed {
    pub(super) number: u64,
    /// (sink node, the number its `send` returned).
    pub(super) sends: Vec<(usize, u64)>,
    /// The windowed nodes' windows as this batch left them, to store
    /// after its outputs and before its acks (`None`: unchanged).
    pub(super) windows: Option<Vec<u8>>,
}

#[derive(Default)]
pub(super) struct Unsettled {
    /// Each connector input taken and not yet settled, with the batch
    /// whose storing settles it; `None` while its batch is being processed
    /// or an aggregator holds it.
    inputs: HashMap<InputKey, Option<u64>>,
    /// Sent, oldest first.
    in_flight: VecDeque<Closed>,
    closed: u64,
    /// The inputs the restored windows name that have not come again yet.
    /// Every windows value this run stores names them too, until they have:
    /// a value naming only its own batch would forget them, and one coming
    /// after it (its ack lost) would be folded twice. An `ordered` source
    /// brings them before anything new, so the first batches empty it.
    carried: BTreeSet<String>,
}

/// Most restored origins carried (one batch's, and those carried before:
/// a run restarted many times before they came again would grow it).
const CARRIED: usize = 10_000;

impl Unsettled {
    /// The restored windows named `origins`.
    pub(super) fn carry(&mut self, origins: Vec<String>) {
        self.carried.extend(origins.into_iter().take(CARRIED));
    }

    /// `origin`, named by the restored windows, came again.
    pub(super) fn came_again(&mut self, origin: &str) {
        self.carried.remove(origin);
    }

    /// What the restored windows named and has not come again.
    pub(super) fn carried(&self) -> &BTreeSet<String> {
        &self.carried
    }

    pub(super) fn take(&mut self, key: InputKey) {
        self.inputs.insert(key, None);
    }

    /// Forgets `key` (failed, handed back): whether it was unsettled.
    pub(super) fn remove(&mut self, key: &InputKey) -> bool {
        self.inputs.remove(key).is_some()
    }

    /// Batches sent and not yet confirmed.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Closes a batch: every input not held and not yet in a batch is
    /// settled by this one. Returns its number.
    pub(super) fn close(&mut self, held: &BTreeSet<InputKey>) -> u64 {
        self.closed += 1;
        for (key, batch) in &mut self.inputs {
            if batch.is_none() && !held.contains(key) {
                *batch = Some(self.closed);
            }
        }
        self.closed
    }

    /// The closed batch `number` was sent with these sends, leaving these
    /// windows.
    pub(super) fn sent(&mut self, number: u64, sends: Vec<(usize, u64)>, windows: Option<Vec<u8>>) {
        self.in_flight.push_back(Closed {
            number,
            sends,
            windows,
        });
    }

    pub(super) fn oldest(&self) -> Option<&Closed> {
        self.in_flight.front()
    }

    /// The oldest batch is stored: its inputs, now settled.
    pub(super) fn stored_oldest(&mut self) -> Vec<InputKey> {
        let Some(batch) = self.in_flight.pop_front() else {
            return Vec::new();
        };
        let settled: Vec<InputKey> = self
            .inputs
            .iter()
            .filter(|(_, settles)| settles.is_some_and(|n| n <= batch.number))
            .map(|(key, _)| *key)
            .collect();
        for key in &settled {
            self.inputs.remove(key);
        }
        settled
    }

    /// Everything taken and not settled (a stop hands it back).
    pub(super) fn drain(&mut self) -> Vec<InputKey> {
        self.in_flight.clear();
        self.inputs.drain().map(|(key, _)| key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absorbed_input_is_settled_by_the_batch_that_emitted_its_aggregate() {
        let mut unsettled = Unsettled::default();
        let (a, b, c) = ((0, 1), (0, 2), (0, 3));
        // Batch 1: `a` passes, `b` is absorbed by an aggregator.
        unsettled.take(a);
        unsettled.take(b);
        let first = unsettled.close(&BTreeSet::from([b]));
        unsettled.sent(first, vec![(2, 1)], None);
        // Batch 2: `c` makes the aggregator emit what carries `b`.
        unsettled.take(c);
        let second = unsettled.close(&BTreeSet::new());
        unsettled.sent(second, vec![(2, 2)], None);
        assert_eq!(unsettled.in_flight(), 2);
        assert_eq!(unsettled.stored_oldest(), vec![a]);
        let mut last = unsettled.stored_oldest();
        last.sort_unstable();
        assert_eq!(last, vec![b, c]);
        assert!(unsettled.drain().is_empty());
    }
}
