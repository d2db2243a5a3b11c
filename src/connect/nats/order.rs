//! `ordered = true`: a NATS source whose inputs are taken in the stream's
//! order even when some of its consumer's deliveries went elsewhere — to a
//! worker that died, to a pull request lost with its connection, or to a
//! pull request an abandoned partition's connection sent late, when it
//! reconnected (a client queues what is sent while it is away and sends it
//! after, whoever still listens). Windows fold inputs in the order they
//! come, so a delivery taken past one that went elsewhere changes results.
//!
//! The consumer numbers its deliveries (redeliveries too); this source
//! expects the next one it receives to be the one after the last it knew
//! of. When a number is skipped, the skipped deliveries come again only
//! after their ack wait, so everything received from there on is **set
//! aside** (not acknowledged, forgotten: it comes again too) and nothing is
//! fetched until the ack wait has passed since the last delivery received.
//! Then the consumer's count of deliveries is read: if no one else got any
//! meanwhile, every delivery not acknowledged has come due and the server
//! sends them first, in stream order; else the wait starts again. At open,
//! deliveries not yet acknowledged (a worker gone) are waited for the same
//! way. It costs nothing while no number is skipped: the check is on the
//! numbers each message carries.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, Consumer};

/// Where an ordered source stands with its consumer's deliveries.
#[derive(Debug)]
pub(super) struct InOrder {
    /// The consumer's delivery count as last known: the next delivery to
    /// this source should be numbered one more.
    delivered: u64,
    /// While set: deliveries received are set aside, nothing is fetched
    /// before this instant, and the count is read again at it.
    hold_until: Option<Instant>,
    /// How long a delivery waits for its ack before it comes again.
    ack_wait: Duration,
}

/// What to do with a delivery received.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Delivery {
    Take,
    SetAside,
}

impl InOrder {
    /// At open: the consumer's delivery count and its deliveries not yet
    /// acknowledged (a worker gone took them: they come first).
    pub(super) fn open(delivered: u64, ack_pending: u64, ack_wait: Duration) -> InOrder {
        let mut order = InOrder {
            delivered,
            hold_until: None,
            ack_wait,
        };
        if ack_pending > 0 {
            order.hold();
        }
        order
    }

    /// Until when deliveries made up to now may still come again: their
    /// ack wait and a margin for the server's timer.
    fn hold(&mut self) {
        let until =
            Instant::now() + self.ack_wait + Duration::from_millis(500) + self.ack_wait / 10;
        self.hold_until = Some(self.hold_until.map_or(until, |held| held.max(until)));
    }

    /// A delivery numbered `number` received.
    pub(super) fn received(&mut self, number: u64) -> Delivery {
        let expected = self.delivered + 1;
        self.delivered = self.delivered.max(number);
        if self.hold_until.is_some() {
            self.hold();
            return Delivery::SetAside;
        }
        if number > expected {
            tracing::warn!(
                skipped = number - expected,
                "deliveries went elsewhere (a worker gone, a pull lost): the rest waits for them"
            );
            self.hold();
            return Delivery::SetAside;
        }
        Delivery::Take
    }

    /// A pull request was lost: what it brought comes again after the ack
    /// wait.
    pub(super) fn lost_pull(&mut self) {
        self.hold();
    }

    /// How long until the count is to be read again; `None` when fetching
    /// may go on.
    pub(super) fn waiting(&self) -> Option<Duration> {
        self.hold_until
            .map(|until| until.saturating_duration_since(Instant::now()))
    }

    /// The consumer's delivery count read when the wait was over: the same
    /// as this source's, and fetching goes on; else another delivery went
    /// elsewhere meanwhile, and the wait starts again from now.
    pub(super) fn counted(&mut self, delivered: u64) {
        let elsewhere = delivered != self.delivered;
        self.delivered = self.delivered.max(delivered);
        self.hold_until = None;
        if elsewhere {
            self.hold();
        }
    }

    /// Whether fetching must still wait for deliveries that went elsewhere
    /// to come again: sleeps up to `fetch_wait` of the wait, or reads
    /// `consumer`'s count when it is over.
    pub(super) async fn still_waiting(
        &mut self,
        consumer: &Consumer<pull::Config>,
        fetch_wait: Duration,
    ) -> bool {
        let Some(wait) = self.waiting() else {
            return false;
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait.min(fetch_wait)).await;
            return true;
        }
        match consumer.get_info().await {
            Ok(info) => self.counted(info.delivered.consumer_sequence),
            Err(_) => self.not_counted(fetch_wait),
        }
        self.waiting().is_some()
    }

    /// The count could not be read: asked again after `again`.
    pub(super) fn not_counted(&mut self, again: Duration) {
        self.hold_until = Some(Instant::now() + again);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_delivery_sets_the_rest_aside_until_the_count_agrees() {
        let mut order = InOrder::open(10, 0, Duration::from_millis(100));
        assert_eq!(order.waiting(), None);
        assert_eq!(order.received(11), Delivery::Take);
        assert_eq!(order.received(12), Delivery::Take);
        // 13 and 14 went elsewhere.
        assert_eq!(order.received(15), Delivery::SetAside);
        assert_eq!(order.received(16), Delivery::SetAside);
        assert!(order.waiting().is_some());
        // Someone else got one more meanwhile: wait again.
        order.counted(17);
        assert!(order.waiting().is_some());
        order.counted(17);
        assert_eq!(order.waiting(), None);
        assert_eq!(order.received(18), Delivery::Take);
    }

    #[test]
    fn deliveries_pending_at_open_are_waited_for() {
        let mut order = InOrder::open(40, 3, Duration::from_millis(100));
        assert!(order.waiting().is_some());
        assert_eq!(order.received(41), Delivery::SetAside);
        order.counted(41);
        assert_eq!(order.waiting(), None);
        assert_eq!(order.received(42), Delivery::Take);
    }
}
