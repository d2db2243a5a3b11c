//! Messages a source sets aside for good: those that failed
//! `max_deliver` times, and those without the key or event time its
//! settings name (no retry could give them one). Each goes to the
//! `dead_letter` subject with the reason (else is only logged), then is
//! terminated.

use async_nats::jetstream::{self, AckKind};

use super::connection::{nats_error, ERROR_HEADER, ORIGIN_HEADER};
use super::source::NatsSource;
use crate::error::Result;

impl NatsSource {
    /// Stores message `handle` aside with `error`, then stops its
    /// redelivery.
    pub(super) async fn dead_letter(&mut self, handle: u64, error: &str) -> Result<()> {
        let Some(held) = self.held.get(&handle) else {
            return Ok(());
        };
        let text: String = error
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(1024)
            .collect();
        if let Some(subject) = &self.dead_letter {
            let publish = jetstream::message::PublishMessage::build()
                .payload(held.payload.clone())
                .header(ERROR_HEADER, text.as_str())
                .header(ORIGIN_HEADER, held.origin.as_str())
                .message_id(format!("{}:dead", held.origin));
            let ack = self
                .js
                .send_publish(subject.clone(), publish)
                .await
                .map_err(|e| {
                    nats_error(
                        &self.node,
                        format!("cannot dead-letter to `{subject}` on {}", self.url),
                        e,
                    )
                })?;
            ack.await.map_err(|e| {
                nats_error(
                    &self.node,
                    format!("cannot dead-letter to `{subject}` on {}", self.url),
                    e,
                )
            })?;
        }
        tracing::error!(node = %self.node, origin = %held.origin, error = %text,
            deliveries = held.delivered, "message dead-lettered");
        self.settle(&[handle], AckKind::Term).await;
        self.stats.dead_lettered += 1;
        Ok(())
    }

    /// Sets aside every message received without its key or event time.
    pub(super) async fn set_aside_unstamped(&mut self) -> Result<()> {
        for (handle, why) in std::mem::take(&mut self.unstamped) {
            let error = format!("no key or event time: {why}");
            self.dead_letter(handle, &error).await?;
        }
        Ok(())
    }
}
