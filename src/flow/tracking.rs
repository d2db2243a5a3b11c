//! Which inputs each element carries and each aggregator holds: what may
//! be acknowledged, kept or handed back.

use std::collections::{BTreeMap, BTreeSet};

/// An input of the run: its source node and the source's handle (for a
/// component source, its sequence).
pub(super) type InputKey = (usize, u64);

/// Which inputs the element being forwarded derives from, and which inputs
/// each aggregator holds in state it has not emitted yet.
pub(crate) struct Tracking {
    pub(super) carried: BTreeSet<InputKey>,
    pub(super) holds: Vec<BTreeSet<InputKey>>,
    /// The input being forwarded.
    current: Option<InputKey>,
    /// Outputs of the current input are named after its origin.
    origin: String,
    outputs: u64,
    /// The origins of held inputs (an end-of-stream flush is named after
    /// its last input's).
    pub(super) origins: BTreeMap<InputKey, String>,
}

impl Tracking {
    pub(super) fn new(nodes: usize) -> Tracking {
        Tracking {
            carried: BTreeSet::new(),
            holds: vec![BTreeSet::new(); nodes],
            current: None,
            origin: String::new(),
            outputs: 0,
            origins: BTreeMap::new(),
        }
    }

    pub(super) fn begin(&mut self, key: InputKey, origin: &str) {
        self.carried.clear();
        self.carried.insert(key);
        self.current = Some(key);
        self.origin.clear();
        self.origin.push_str(origin);
        self.outputs = 0;
    }

    /// Aggregator `node` took in what is being forwarded.
    pub(crate) fn absorb(&mut self, node: usize) {
        self.holds[node].extend(self.carried.iter().copied());
        if let Some(key) = self.current {
            // Released inputs had theirs recorded when they were absorbed.
            self.origins
                .entry(key)
                .or_insert_with(|| self.origin.clone());
        }
    }

    /// Aggregator `node` emitted: its output carries all it held.
    pub(crate) fn release(&mut self, node: usize) {
        let held = std::mem::take(&mut self.holds[node]);
        self.carried.extend(held);
    }

    /// Aggregator `node` flushes at the end of the stream: its outputs carry
    /// all it held and are named after it.
    pub(crate) fn begin_flush(&mut self, node: usize, name: &str) {
        self.carried = std::mem::take(&mut self.holds[node]);
        let last = self
            .carried
            .last()
            .and_then(|key| self.origins.get(key))
            .map_or("none", String::as_str);
        // The origin, not just a sequence: two streams' sequences may meet
        // in one output stream.
        self.origin = format!("{name}:flush:{last}");
        self.current = None;
        self.outputs = 0;
    }

    /// What is sent on next is named `origin` (a windowed node's result,
    /// by its window), numbered from 0.
    pub(crate) fn name_outputs(&mut self, origin: &str) {
        self.origin.clear();
        self.origin.push_str(origin);
        self.outputs = 0;
    }

    /// The id of the next output accepted by sink `sink` for the current
    /// input: `ORIGIN:SINK:POSITION`, the same on every redelivery when the
    /// stages are deterministic.
    pub(crate) fn output_id(&mut self, sink: &str) -> String {
        let id = format!("{}:{sink}:{}", self.origin, self.outputs);
        self.outputs += 1;
        id
    }

    pub(super) fn held(&self) -> BTreeSet<InputKey> {
        self.holds.iter().flatten().copied().collect()
    }

    /// Forgets the origins of inputs nothing holds any more.
    pub(super) fn forget_settled(&mut self, held: &BTreeSet<InputKey>) {
        self.origins.retain(|key, _| held.contains(key));
    }
}

/// Keys grouped by source, each group sorted (inputs are settled in the
/// order they came).
pub(super) fn by_source(keys: impl IntoIterator<Item = InputKey>) -> BTreeMap<usize, Vec<u64>> {
    let mut grouped: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for (source, handle) in keys {
        grouped.entry(source).or_default().push(handle);
    }
    for handles in grouped.values_mut() {
        handles.sort_unstable();
    }
    grouped
}
