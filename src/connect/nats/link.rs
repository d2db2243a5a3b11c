//! The state of a connection to the server, as the connectors need it to
//! bound their waits: a request sent before the connection broke is lost
//! with the server that held it (a pull request, a publish whose ack never
//! comes), and waiting for its answer would wait forever.
//!
//! The client reconnects by itself and re-subscribes, but it does not send
//! again what the old server had already taken. [`Link`] counts the
//! disconnections the client reports, so a wait can tell whether its
//! request was sent before the latest one ([`Link::mark`] at sending,
//! [`Link::lost_since`] while waiting) and send it again as soon as the
//! connection is back. A request made while disconnected is buffered by the
//! client and reaches the new server: it is not counted as lost.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::Cause;

/// Whether the client is connected, and how often it was disconnected.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    disconnects: u64,
    connected: bool,
}

/// A connection's disconnections, as the client reports them.
#[derive(Debug, Clone)]
pub(super) struct Link {
    state: watch::Receiver<State>,
}

/// The side the client's event callback writes.
pub(super) struct LinkEvents(watch::Sender<State>);

impl LinkEvents {
    pub(super) fn observe(&self, event: &async_nats::Event) {
        match event {
            async_nats::Event::Connected => self.0.send_modify(|state| state.connected = true),
            async_nats::Event::Disconnected => self.0.send_modify(|state| {
                state.connected = false;
                state.disconnects += 1;
            }),
            _ => {}
        }
    }
}

/// A link and the side that feeds it.
pub(super) fn link() -> (Link, LinkEvents) {
    let (events, state) = watch::channel(State {
        disconnects: 0,
        connected: true,
    });
    (Link { state }, LinkEvents(events))
}

impl Link {
    /// The disconnections so far: taken when a request is sent.
    pub(super) fn mark(&self) -> u64 {
        self.state.borrow().disconnects
    }

    /// Resolves once the connection is back after a disconnection later than
    /// `mark`: what was sent before it is lost and may be sent again.
    /// Pending forever while that has not happened.
    pub(super) async fn lost_since(&self, mark: u64) {
        let mut state = self.state.clone();
        if state
            .wait_for(|state| state.connected && state.disconnects > mark)
            .await
            .is_err()
        {
            // The client is gone: nothing will ever answer; the caller's own
            // bound ends its wait.
            std::future::pending::<()>().await;
        }
    }
}

/// Why an answer did not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Lost {
    /// The connection broke after the request was sent, and is back.
    #[error("the connection to the server broke and is back")]
    Reconnected,
    /// No answer within the bound.
    #[error("no answer from the server within {0:?}")]
    TimedOut(Duration),
}

impl Link {
    /// `answer`, unless the connection breaks after `mark` and comes back,
    /// or `bound` passes, first.
    pub(super) async fn within<T>(
        &self,
        mark: u64,
        bound: Duration,
        answer: impl Future<Output = T>,
    ) -> Result<T, Lost> {
        tokio::select! {
            // The answer first: when it is there, neither the link nor the
            // timer is looked at (this runs for every message a pull
            // brings), and the timer is made only when polled.
            biased;
            answered = answer => Ok(answered),
            () = self.lost_since(mark) => Err(Lost::Reconnected),
            () = async { tokio::time::sleep(bound).await } => Err(Lost::TimedOut(bound)),
        }
    }

    /// `request()` until it answers `Ok`: sent again (after 100 ms) while it
    /// fails or its answer is lost ([`within`](Self::within) `bound` each
    /// time), for up to twice `bound` in all; then the last error.
    /// `retrying` hears each failure that is followed by another try. For
    /// requests that are harmless to repeat (a put of the same value, an
    /// ack of the same delivery).
    pub(super) async fn until_answered<T, E, F>(
        &self,
        bound: Duration,
        mut request: impl FnMut() -> F,
        mut retrying: impl FnMut(&Cause),
    ) -> Result<T, Cause>
    where
        E: Into<Cause>,
        F: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        loop {
            let error: Cause = match self.within(self.mark(), bound, request()).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(error)) => error.into(),
                Err(lost) => lost.into(),
            };
            if started.elapsed() >= bound * 2 {
                return Err(error);
            }
            retrying(&error);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
