//! The JetStream source: a durable pull consumer, batches by fetch,
//! explicit acks, holds kept alive, failures retried or dead-lettered.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;

use crate::connect::{ConnectorStats, Failed, Fetched, Input, Settings, SourceConnector};
use crate::error::Result;
use crate::invoker::Element;

use super::{millis, nats_error, stream_of, ERROR_HEADER, ORIGIN_HEADER};

/// A message delivered and not yet settled.
struct Held {
    acker: jetstream::message::Acker,
    payload: Bytes,
    origin: String,
    delivered: i64,
    kept: Instant,
}

/// A durable pull consumer as a flow source.
pub struct NatsSource {
    node: String,
    url: String,
    client: async_nats::Client,
    js: jetstream::Context,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    stream: String,
    batch: usize,
    fetch_wait: Duration,
    ack_wait: Duration,
    max_deliver: i64,
    nak_delay: Duration,
    dead_letter: Option<String>,
    content_type: String,
    held: HashMap<u64, Held>,
    /// The pull request in flight. It lives here, not in `fetch`, so that a
    /// fetch the driver drops at shutdown leaves it to be finished (by the
    /// next fetch or by `stop`) instead of losing what it brings.
    pull: Option<Pull>,
    /// Received (and held), not yet returned by a fetch.
    taken: Vec<Input>,
    stats: ConnectorStats,
    info_read: Option<Instant>,
    outage_logged: bool,
}

/// One pull request of a [`NatsSource`].
enum Pull {
    /// Being sent; `true`: the server holds it up to `fetch_wait`.
    Opening(
        BoxFuture<'static, std::result::Result<pull::Batch, pull::BatchError>>,
        bool,
    ),
    /// Sent: its messages arrive until the server ends it.
    Open(Box<pull::Batch>),
}

impl NatsSource {
    pub(super) async fn open(
        settings: &Settings<'_>,
        (client, url): (async_nats::Client, String),
    ) -> Result<NatsSource> {
        let js = jetstream::new(client.clone());
        let stream_name = settings.required("stream")?;
        let subject = settings.required("subject")?;
        let consumer_name = settings.required("consumer")?;
        let stream = stream_of(settings, &js, stream_name, subject, &url).await?;
        let ack_wait = millis(settings, "ack_wait_ms", 30_000)?;
        let max_deliver: i64 = settings.parse("max_deliver", 5)?;
        if max_deliver < 1 {
            return Err(settings.error("max_deliver", "must be at least 1"));
        }
        let consumer = match stream.get_consumer::<pull::Config>(consumer_name).await {
            Ok(consumer) => {
                let config = &consumer.cached_info().config;
                if config.filter_subject != subject {
                    return Err(settings.error(
                        "subject",
                        format!(
                            "consumer `{consumer_name}` of stream `{stream_name}` filters `{}`, \
                             not `{subject}` (one consumer per subject: name another)",
                            config.filter_subject
                        ),
                    ));
                }
                consumer
            }
            Err(error) if !settings.flag("create", false)? => {
                return Err(nats_error(
                    settings.node,
                    format!(
                        "consumer `{consumer_name}` of stream `{stream_name}` not found on {url} \
                         (set `create = true` to create it)"
                    ),
                    error,
                ))
            }
            Err(_) => stream
                .create_consumer(pull::Config {
                    durable_name: Some(consumer_name.to_string()),
                    filter_subject: subject.to_string(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait,
                    max_deliver,
                    max_ack_pending: settings.parse("max_ack_pending", 1000)?,
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    nats_error(
                        settings.node,
                        format!(
                            "cannot create consumer `{consumer_name}` of stream `{stream_name}` \
                             on {url}"
                        ),
                        e,
                    )
                })?,
        };
        let info = consumer.cached_info();
        let dead_letter = settings.get("dead_letter").map(str::to_string);
        if let (Some(subject), true) = (&dead_letter, settings.flag("create", false)?) {
            // A dead letter nobody stores is lost: make sure a stream captures it.
            if js.stream_by_subject(subject.clone()).await.is_err() {
                let name = format!("{stream_name}_DEAD");
                js.get_or_create_stream(jetstream::stream::Config {
                    name: name.clone(),
                    subjects: vec![subject.clone()],
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    nats_error(
                        settings.node,
                        format!("cannot create dead-letter stream `{name}` on {url}"),
                        e,
                    )
                })?;
            }
        }
        Ok(NatsSource {
            node: settings.node.to_string(),
            url,
            client,
            js,
            stream: stream_name.to_string(),
            batch: settings.parse("batch", 100)?,
            fetch_wait: millis(settings, "fetch_wait_ms", 500)?,
            ack_wait: info.config.ack_wait,
            max_deliver: if info.config.max_deliver > 0 {
                info.config.max_deliver
            } else {
                max_deliver
            },
            nak_delay: millis(settings, "nak_delay_ms", 500)?,
            dead_letter,
            content_type: settings
                .get("content_type")
                .unwrap_or("application/octet-stream")
                .to_string(),
            consumer,
            held: HashMap::new(),
            pull: None,
            taken: Vec::new(),
            stats: ConnectorStats::default(),
            info_read: None,
            outage_logged: false,
        })
    }

    /// One pull request for up to `count` messages: `wait` asks the server
    /// to hold it until they arrive or `fetch_wait` passes; otherwise it
    /// answers at once with what it has.
    fn request(&mut self, count: usize, wait: bool) {
        let consumer = self.consumer.clone();
        let fetch_wait = self.fetch_wait;
        let opening: BoxFuture<'static, _> = Box::pin(async move {
            if wait {
                consumer
                    .batch()
                    .max_messages(count)
                    .expires(fetch_wait)
                    .messages()
                    .await
            } else {
                consumer.fetch().max_messages(count).messages().await
            }
        });
        self.pull = Some(Pull::Opening(opening, wait));
    }

    /// Everything the pull in flight brings, into `taken`, until the server
    /// ends it. Cancel safe: every await is on state kept in `self`. A
    /// broker away: nothing (logged once).
    async fn receive(&mut self) {
        while let Some(pull) = &mut self.pull {
            let (error, wait) = match pull {
                Pull::Opening(opening, wait) => match opening.as_mut().await {
                    Ok(batch) => {
                        *pull = Pull::Open(Box::new(batch));
                        continue;
                    }
                    Err(error) => (error.to_string(), *wait),
                },
                Pull::Open(batch) => match batch.next().await {
                    Some(Ok(message)) => {
                        self.take(message);
                        continue;
                    }
                    Some(Err(error)) => (error.to_string(), false),
                    None => {
                        self.pull = None;
                        continue;
                    }
                },
            };
            self.pull = None;
            self.outage("fetch", &error);
            if wait {
                tokio::time::sleep(self.fetch_wait).await;
            }
        }
    }

    /// A message received: held until settled, and taken for the next fetch.
    fn take(&mut self, message: jetstream::Message) {
        let (sequence, delivered) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(error) => {
                tracing::warn!(node = %self.node, %error, "message without JetStream metadata skipped");
                return;
            }
        };
        let (message, acker) = message.split();
        if delivered > 1 {
            self.stats.redeliveries += 1;
        }
        if let Some(held) = self.held.get_mut(&sequence) {
            // Still held here (an aggregator has it): the server gave up
            // waiting. Keep the newest delivery's acker, process it once.
            held.acker = acker;
            held.delivered = delivered;
            held.kept = Instant::now();
            return;
        }
        let content_type = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Content-Type"))
            .map(|value| value.as_str().to_string())
            .unwrap_or_else(|| self.content_type.clone());
        let origin = format!("{}:{sequence}", self.stream);
        self.held.insert(
            sequence,
            Held {
                acker,
                payload: message.payload.clone(),
                origin: origin.clone(),
                delivered,
                kept: Instant::now(),
            },
        );
        self.taken.push(Input {
            element: Element::new(0, content_type, message.payload),
            handle: sequence,
            origin,
        });
    }

    /// The server's count of pending and unacknowledged messages, read at
    /// most every 2 s (a request to the server).
    async fn refresh_info(&mut self) {
        if self
            .info_read
            .is_some_and(|read| read.elapsed() < Duration::from_secs(2))
        {
            return;
        }
        self.info_read = Some(Instant::now());
        if let Ok(info) = self.consumer.get_info().await {
            self.stats.pending = Some(info.num_pending);
            self.stats.ack_pending = Some(info.num_ack_pending as u64);
        }
    }

    fn outage(&mut self, what: &str, error: &dyn std::fmt::Display) {
        if !self.outage_logged {
            tracing::warn!(node = %self.node, url = %self.url, %error, "{what} failed; retrying");
            self.outage_logged = true;
        }
    }

    /// Acks are fire-and-forget publishes the client buffers: out to the
    /// socket before the batch counts as settled (and before a stopping
    /// process exits).
    async fn flush(&mut self) -> Result<()> {
        self.client.flush().await.map_err(|e| {
            nats_error(
                &self.node,
                format!("cannot send acknowledgements to {}", self.url),
                e,
            )
        })
    }

    async fn settle(&mut self, handle: u64, kind: AckKind) -> Result<()> {
        if let Some(held) = self.held.remove(&handle) {
            let label = match kind {
                AckKind::Ack => "ack",
                AckKind::Nak(_) => "nak",
                AckKind::Term => "terminate",
                _ => "settle",
            };
            held.acker.ack_with(kind).await.map_err(|e| {
                let detail = format!("cannot {label} message {} on {}", held.origin, self.url);
                nats_error(&self.node, detail, e)
            })?;
        }
        Ok(())
    }
}

#[async_trait]
impl SourceConnector for NatsSource {
    async fn fetch(&mut self, max: usize) -> Result<Fetched> {
        let max = max.min(self.batch).max(1);
        // A fetch dropped at a shutdown may have left a pull in flight and
        // messages taken: those come first.
        if self.pull.is_none() && self.taken.is_empty() {
            self.refresh_info().await;
            // What is there now, without waiting.
            self.request(max, false);
        }
        self.receive().await;
        if self.taken.is_empty() {
            // Nothing: wait (up to `fetch_wait`) for one message only; a
            // waiting request for a whole batch would hold a partial batch
            // until it expires.
            self.request(1, true);
            self.receive().await;
        }
        if self.taken.is_empty() {
            return Ok(Fetched::Idle);
        }
        self.outage_logged = false;
        let rest = self.taken.split_off(max.min(self.taken.len()));
        Ok(Fetched::Inputs(std::mem::replace(&mut self.taken, rest)))
    }

    async fn ack(&mut self, handles: &[u64]) -> Result<()> {
        for &handle in handles {
            self.settle(handle, AckKind::Ack).await?;
            self.stats.acked += 1;
        }
        self.flush().await
    }

    async fn fail(&mut self, handle: u64, error: &str) -> Result<Failed> {
        let Some(held) = self.held.get(&handle) else {
            return Ok(Failed::Retried);
        };
        if held.delivered < self.max_deliver {
            self.settle(handle, AckKind::Nak(Some(self.nak_delay)))
                .await?;
            return Ok(Failed::Retried);
        }
        // Tried often enough: store it aside with its error, then stop redelivery.
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
        self.settle(handle, AckKind::Term).await?;
        self.stats.dead_lettered += 1;
        Ok(Failed::DeadLettered)
    }

    async fn keep(&mut self, handles: &[u64]) -> Result<()> {
        // Well inside the ack wait: a third of it.
        let every = self.ack_wait / 3;
        for handle in handles {
            if let Some(held) = self.held.get_mut(handle) {
                if held.kept.elapsed() >= every {
                    held.kept = Instant::now();
                    if let Err(error) = held.acker.ack_with(AckKind::Progress).await {
                        tracing::warn!(node = %self.node, %error, "progress ack failed");
                    }
                }
            }
        }
        Ok(())
    }

    async fn release(&mut self, handles: &[u64]) -> Result<()> {
        // Redelivered after a pull this worker may still have open has
        // expired (one dropped at shutdown lives on at the server for up to
        // `fetch_wait`): else the server could hand them straight back to
        // it, and they would wait out the ack wait.
        let delay = self.fetch_wait + Duration::from_millis(100);
        for &handle in handles {
            self.settle(handle, AckKind::Nak(Some(delay))).await?;
        }
        self.flush().await
    }

    async fn stop(&mut self) -> Result<()> {
        // A pull a dropped fetch left open ends within `fetch_wait` (the
        // server answers it); what it brought, and what was taken and never
        // returned, goes back.
        let fetch_wait = self.fetch_wait;
        if self.pull.is_some()
            && tokio::time::timeout(fetch_wait + Duration::from_secs(1), self.receive())
                .await
                .is_err()
        {
            tracing::warn!(node = %self.node, "a pull request did not end in time at the stop");
        }
        let handles: Vec<u64> = self.taken.drain(..).map(|input| input.handle).collect();
        self.release(&handles).await
    }

    fn stats(&self) -> ConnectorStats {
        self.stats.clone()
    }
}
