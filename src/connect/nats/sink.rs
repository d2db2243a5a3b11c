//! The JetStream sink: publishes with `Nats-Msg-Id` at each send, and
//! awaits the publish acks of a send at the flush through it. Sends in
//! flight wait in order; their acks come back meanwhile (the client's
//! connection task receives them), so a flush of an old send rarely waits.

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture};
use async_trait::async_trait;
use bytes::Bytes;

use crate::connect::{ConnectorStats, Settings, SinkConnector};
use crate::error::{Error, Result};
use crate::invoker::Element;

use super::connection::{answer_timeout, nats_error, Connection};
use super::consumer::stream_of;
use super::link::Link;
use super::version::ServerVersion;

/// An output waiting to be stored.
struct Outgoing {
    payload: Bytes,
    content_type: String,
    id: String,
}

/// The outputs of one send, with their publish acks while those are due.
struct Sent {
    number: u64,
    /// Not yet confirmed stored.
    outputs: Vec<Outgoing>,
    /// One per output while published and unanswered; empty when the
    /// outputs are to be published (again) at the next flush.
    acks: Vec<PublishAckFuture>,
    /// The link's mark when they were published: a reconnection since
    /// means the acks will never come.
    mark: u64,
    /// Why publishing stopped short, reported by the flush.
    failed: Option<Error>,
}

/// Publishes to a subject of a JetStream stream.
pub(crate) struct NatsSink {
    node: String,
    url: String,
    client: async_nats::Client,
    link: Link,
    js: jetstream::Context,
    subject: String,
    /// Accepted, not yet sent.
    accepted: Vec<Outgoing>,
    /// Sent, oldest first, not yet confirmed stored.
    sent: VecDeque<Sent>,
    sends: u64,
    stats: ConnectorStats,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("node", &self.node)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl NatsSink {
    pub(super) async fn open(
        settings: &Settings<'_>,
        Connection { client, url, link }: Connection,
    ) -> Result<NatsSink> {
        let mut js = jetstream::new(client.clone());
        // A publish ack that does not come within this fails the flush,
        // which is retried: the outputs are published again under the same
        // ids, and the server keeps one of each.
        js.set_timeout(answer_timeout(settings)?);
        let subject = settings.required("subject")?;
        if let Some(stream) = settings.get("stream") {
            stream_of(
                settings,
                (&js, ServerVersion::of(&client)),
                stream,
                subject,
                &url,
            )
            .await?;
        } else if settings.flag("create", false)? {
            return Err(settings.error("create", "needs `stream`: the stream to create"));
        }
        Ok(NatsSink {
            node: settings.node.to_string(),
            url,
            client,
            link,
            js,
            subject: subject.to_string(),
            accepted: Vec::new(),
            sent: VecDeque::new(),
            sends: 0,
            stats: ConnectorStats::default(),
        })
    }

    /// Publishes `outputs` (all of them, or up to the first failure: the
    /// rest are published again by the flush).
    async fn publish(&self, outputs: &[Outgoing]) -> (Vec<PublishAckFuture>, Option<Error>) {
        let mut acks = Vec::with_capacity(outputs.len());
        for out in outputs {
            let mut publish = jetstream::message::PublishMessage::build()
                .payload(out.payload.clone())
                .message_id(&out.id);
            // Bytes of unknown type (the default) need no header on the wire.
            if !out.content_type.is_empty() && out.content_type != "application/octet-stream" {
                publish = publish.header("Content-Type", out.content_type.as_str());
            }
            match self.js.send_publish(self.subject.clone(), publish).await {
                Ok(ack) => acks.push(ack),
                Err(error) => {
                    let detail = format!("cannot publish to `{}` on {}", self.subject, self.url);
                    return (acks, Some(nats_error(&self.node, detail, error)));
                }
            }
        }
        (acks, None)
    }

    /// Waits for the publish acks of the oldest send; what was not stored
    /// stays in it, to be published again.
    async fn confirm_oldest(&mut self) -> Result<()> {
        let Some(mut sent) = self.sent.pop_front() else {
            return Ok(());
        };
        if sent.acks.is_empty() && sent.failed.is_none() {
            // Unsent, or answered with errors before: publish them (again).
            // Those the server had are answered as duplicates: stored once.
            sent.mark = self.link.mark();
            (sent.acks, sent.failed) = self.publish(&sent.outputs).await;
        }
        let mut first_error = sent.failed.take();
        let mut stored = vec![false; sent.outputs.len()];
        // Each ack is bounded by the context's timeout; a reconnection ends
        // the wait for all of them at once.
        let acks = std::mem::take(&mut sent.acks);
        let all = futures_util::future::join_all(acks.into_iter().map(IntoFuture::into_future));
        match self.link.within(sent.mark, Duration::MAX, all).await {
            Ok(answered) => {
                for (index, ack) in answered.into_iter().enumerate() {
                    match ack {
                        Ok(ack) => {
                            stored[index] = true;
                            self.stats.stored += 1;
                            if ack.duplicate {
                                self.stats.duplicates += 1;
                            }
                        }
                        Err(error) => {
                            let detail =
                                format!("no publish ack from `{}` on {}", self.subject, self.url);
                            first_error.get_or_insert(nats_error(&self.node, detail, error));
                        }
                    }
                }
            }
            Err(lost) => {
                self.stats.lost_requests += 1;
                let detail = format!("publish acks from `{}` on {}", self.subject, self.url);
                first_error.get_or_insert(nats_error(&self.node, detail, lost));
            }
        }
        let Some(error) = first_error else {
            return Ok(());
        };
        let mut index = 0;
        sent.outputs.retain(|_| {
            index += 1;
            !stored[index - 1]
        });
        // Published again, first, by the next flush.
        self.sent.push_front(sent);
        Err(error)
    }
}

#[async_trait]
impl SinkConnector for NatsSink {
    fn accept(&mut self, element: &Element, id: &str) -> Result<()> {
        // Refused here, not at publish: an output the server can never take
        // fails its input (retried, then dead-lettered), instead of blocking
        // every flush after it.
        let limit = self.client.server_info().max_payload;
        if limit > 0 && element.payload.len() > limit {
            let detail = format!(
                "output of {} bytes is over the server's max_payload of {limit} bytes ({})",
                element.payload.len(),
                self.url
            );
            return Err(Error::connector(&self.node, "nats", detail, None));
        }
        self.accepted.push(Outgoing {
            payload: element.payload.clone(),
            content_type: element.meta.content_type.clone(),
            id: id.to_string(),
        });
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let send = self.send().await?;
        self.flush_through(send).await
    }

    async fn send(&mut self) -> Result<u64> {
        if self.accepted.is_empty() {
            return Ok(self.sends);
        }
        self.sends += 1;
        let outputs = std::mem::take(&mut self.accepted);
        // Publishes sent before a disconnection are lost with it: their acks
        // are not waited for once the connection is back.
        let mark = self.link.mark();
        let (acks, failed) = self.publish(&outputs).await;
        let acks = if failed.is_some() { Vec::new() } else { acks };
        self.sent.push_back(Sent {
            number: self.sends,
            outputs,
            acks,
            mark,
            failed,
        });
        Ok(self.sends)
    }

    async fn flush_through(&mut self, send: u64) -> Result<()> {
        while self.sent.front().is_some_and(|sent| sent.number <= send) {
            self.confirm_oldest().await?;
        }
        Ok(())
    }

    fn stats(&self) -> ConnectorStats {
        self.stats.clone()
    }
}
