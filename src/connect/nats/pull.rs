//! The source's bookkeeping types: a message held until settled, and the
//! pull request in flight with the time its answer is due.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use bytes::Bytes;
use futures_util::future::BoxFuture;

/// A message delivered and not yet settled.
pub(super) struct Held {
    /// Where its acks go (`$JS.ACK.…`, the delivery's reply subject).
    pub(super) reply: async_nats::Subject,
    pub(super) payload: Bytes,
    pub(super) origin: String,
    pub(super) delivered: i64,
    pub(super) kept: Instant,
}

/// One pull request of a [`NatsSource`](super::NatsSource), and when its answer is due.
pub(super) struct Pull {
    pub(super) state: PullState,
    /// `true`: the server holds it up to `fetch_wait`.
    pub(super) wait: bool,
    /// The link's disconnections when it was sent: a later one lost it.
    pub(super) mark: u64,
    /// How long to wait for the next thing it brings: its wait (if any) and
    /// `answer_timeout` for the first message, `answer_timeout` after.
    pub(super) next_within: Duration,
}

pub(super) enum PullState {
    /// Being sent.
    Opening(BoxFuture<'static, std::result::Result<pull::Batch, pull::BatchError>>),
    /// Sent: its messages arrive until the server ends it.
    Open(Box<pull::Batch>),
}

/// What one wait on a pull brought.
pub(super) enum Answer {
    Opened(pull::Batch),
    Message(jetstream::Message),
    Ended,
    Failed(String),
}

/// The stream sequences this source acknowledged lately. A message whose
/// ack wait passes while it is processed is delivered again; when that
/// delivery was sent before the ack landed it arrives after the message
/// was acknowledged and forgotten, and would be processed twice (a window
/// folding it twice). It can only come within the messages this source was
/// sent meanwhile, so the last few thousand acknowledged are enough.
pub(super) struct Settled {
    order: VecDeque<u64>,
    sequences: HashSet<u64>,
    keep: usize,
}

impl Settled {
    pub(super) fn keeping(keep: usize) -> Settled {
        Settled {
            order: VecDeque::with_capacity(keep),
            sequences: HashSet::with_capacity(keep),
            keep,
        }
    }

    pub(super) fn add(&mut self, sequence: u64) {
        if self.sequences.insert(sequence) {
            self.order.push_back(sequence);
            if self.order.len() > self.keep {
                if let Some(oldest) = self.order.pop_front() {
                    self.sequences.remove(&oldest);
                }
            }
        }
    }

    pub(super) fn contains(&self, sequence: u64) -> bool {
        self.sequences.contains(&sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::Settled;

    #[test]
    fn settled_keeps_the_last_acknowledged_and_forgets_the_oldest() {
        let mut settled = Settled::keeping(3);
        for sequence in [10, 11, 12] {
            settled.add(sequence);
        }
        assert!(settled.contains(10) && settled.contains(12));
        settled.add(11); // again: no room taken
        settled.add(13);
        assert!(!settled.contains(10), "the oldest forgotten");
        assert!(settled.contains(11) && settled.contains(13));
        assert!(!settled.contains(14));
    }
}
