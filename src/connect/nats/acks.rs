//! Acknowledgements a source returns from only once the server has them
//! (`SourceConnector::ack_confirmed`): for inputs nothing downstream could
//! recognise if they came again.

use std::sync::atomic::Ordering;

use async_nats::jetstream::AckKind;

use super::connection::nats_error;
use super::source::NatsSource;
use crate::error::{Cause, Result};

impl NatsSource {
    /// Acknowledges again the deliveries of inputs already acknowledged
    /// (see `Settled`): fire-and-forget (lost, they come once more).
    pub(super) async fn send_acks_again(&mut self) {
        for reply in std::mem::take(&mut self.ack_again) {
            let _ = self.client.publish(reply, AckKind::Ack.into()).await;
        }
    }

    /// Acknowledges `handles`, returning once the server has confirmed
    /// them all.
    pub(super) async fn confirm_acks(&mut self, handles: &[u64]) -> Result<()> {
        // The acks are sent in order on this connection, the last one as a
        // request: the server takes a connection's acks to a consumer in
        // the order they came, so its answer to the last confirms them all
        // (one round trip a batch, not one an input). Without an answer
        // (lost with a restarted server) they are all sent again: a late ack
        // of a delivery is still taken, and one already taken changes
        // nothing. A request, not async-nats' `double_ack`: that takes any
        // answer as the confirmation, the "no responders" status too, which
        // a server sends while it shuts down (JetStream is stopped before
        // the clients are disconnected): the ack was lost, not taken.
        let replies: Vec<async_nats::Subject> = handles
            .iter()
            .filter_map(|handle| Some(self.held.get(handle)?.reply.clone()))
            .collect();
        let Some((last, rest)) = replies.split_last() else {
            return Ok(());
        };
        let (client, node, url) = (&self.client, &self.node, &self.url);
        let retrying = |error: &Cause| {
            tracing::warn!(node = %node, url = %url, inputs = replies.len(), %error,
                "acknowledgements not confirmed; sending them again");
        };
        let send_all = || async move {
            // Acks written to a connection that then broke are lost, and
            // the last one, queued meanwhile, goes out on the next: its
            // answer confirms only what that connection carried. So the
            // answer counts only if no reconnection came in between.
            let connects = || client.statistics().connects.load(Ordering::Relaxed);
            let before = connects();
            for reply in rest {
                client
                    .publish(reply.clone(), AckKind::Ack.into())
                    .await
                    .map_err(Cause::from)?;
            }
            let answer = client
                .request(last.clone(), AckKind::Ack.into())
                .await
                .map_err(Cause::from)?;
            if connects() != before {
                return Err(Cause::from(
                    "the connection was made again while the acks were sent: some may be lost",
                ));
            }
            Ok(answer)
        };
        if let Err(error) = self
            .link
            .until_answered(self.answer_timeout, send_all, retrying)
            .await
        {
            let detail = format!(
                "the server did not confirm the acks of {} messages on {}",
                replies.len(),
                self.url
            );
            return Err(nats_error(&self.node, detail, error));
        }
        for handle in handles {
            if self.held.remove(handle).is_some() {
                self.stats.acked += 1;
                self.settled.add(*handle);
            }
        }
        Ok(())
    }
}
