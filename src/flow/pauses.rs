//! Backpressure's bookkeeping: per source, how many of the sinks it feeds
//! asked it to pause, and what it was last told.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::invoker::Backpressure;

/// Pause requests per source: how many of the sinks it feeds are paused,
/// and what the source was last told.
pub(super) struct PauseCounts {
    counts: Vec<AtomicU32>,
    told_paused: Vec<AtomicBool>,
}

impl PauseCounts {
    pub(super) fn new(nodes: usize) -> PauseCounts {
        PauseCounts {
            counts: (0..nodes).map(|_| AtomicU32::new(0)).collect(),
            told_paused: (0..nodes).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    pub(super) fn add(&self, source: usize, pause: bool) {
        if pause {
            self.counts[source].fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts[source].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The signal `source` must be told now, if its state changed.
    pub(super) fn change(&self, source: usize) -> Option<Backpressure> {
        let paused = self.counts[source].load(Ordering::Relaxed) > 0;
        let told = self.told_paused[source].swap(paused, Ordering::Relaxed);
        match (paused, told) {
            (true, false) => Some(Backpressure::Pause),
            (false, true) => Some(Backpressure::Ready),
            _ => None,
        }
    }
}
