//! The source's bookkeeping types: a message held until settled, and the
//! pull request in flight with the time its answer is due.

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
