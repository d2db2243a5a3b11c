//! The JetStream sink: publishes with `Nats-Msg-Id` and awaits every
//! publish ack at each flush.

use std::time::Duration;

use async_nats::jetstream::{self};
use async_trait::async_trait;
use bytes::Bytes;

use crate::connect::{ConnectorStats, Settings, SinkConnector};
use crate::error::{Error, Result};
use crate::invoker::Element;

use super::connection::{answer_timeout, nats_error, Connection};
use super::consumer::stream_of;
use super::link::Link;

/// An output waiting for its publish ack.
struct Outgoing {
    payload: Bytes,
    content_type: String,
    id: String,
}

/// Publishes to a subject of a JetStream stream.
pub(crate) struct NatsSink {
    node: String,
    url: String,
    client: async_nats::Client,
    link: Link,
    js: jetstream::Context,
    subject: String,
    pending: Vec<Outgoing>,
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
            stream_of(settings, &js, stream, subject, &url).await?;
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
            pending: Vec::new(),
            stats: ConnectorStats::default(),
        })
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
        self.pending.push(Outgoing {
            payload: element.payload.clone(),
            content_type: element.meta.content_type.clone(),
            id: id.to_string(),
        });
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut acks = Vec::with_capacity(self.pending.len());
        let mut first_error: Option<Error> = None;
        // Publishes sent before a disconnection are lost with it: their acks
        // are not waited for once the connection is back.
        let mark = self.link.mark();
        for (index, out) in self.pending.iter().enumerate() {
            let mut publish = jetstream::message::PublishMessage::build()
                .payload(out.payload.clone())
                .message_id(&out.id);
            // Bytes of unknown type (the default) need no header on the wire.
            if !out.content_type.is_empty() && out.content_type != "application/octet-stream" {
                publish = publish.header("Content-Type", out.content_type.as_str());
            }
            match self.js.send_publish(self.subject.clone(), publish).await {
                Ok(ack) => acks.push(async move { (index, ack.await) }),
                Err(error) => {
                    let detail = format!("cannot publish to `{}` on {}", self.subject, self.url);
                    first_error = Some(nats_error(&self.node, detail, error));
                    break;
                }
            }
        }
        let mut stored = vec![false; self.pending.len()];
        // Each ack is bounded by the context's timeout; a reconnection ends
        // the wait for all of them at once, and all are published again
        // (those the server had are answered as duplicates: stored once).
        let all = futures_util::future::join_all(acks);
        match self.link.within(mark, Duration::MAX, all).await {
            Ok(answered) => {
                for (index, ack) in answered {
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
        let mut index = 0;
        self.pending.retain(|_| {
            index += 1;
            !stored[index - 1]
        });
        first_error.map_or(Ok(()), Err)
    }

    fn stats(&self) -> ConnectorStats {
        self.stats.clone()
    }
}
