//! The JetStream source: a durable pull consumer, batches by fetch,
//! explicit acks, holds kept alive, failures retried or dead-lettered.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};

use super::consumer::{consumer_of, dead_letter_stream, stream_of};
use super::pull::{Answer, Held, Pull, PullState, Settled};
use crate::connect::{ConnectorStats, Failed, Fetched, Input, Settings, SourceConnector};
use crate::error::{Cause, Result};
use crate::invoker::Element;

use super::connection::{answer_timeout, millis, Connection};
use super::link::Link;
use super::order::{Delivery, InOrder};
use super::stamp::Stamp;
use super::version::ServerVersion;

/// A durable pull consumer as a flow source.
pub(crate) struct NatsSource {
    pub(super) node: String,
    pub(super) url: String,
    pub(super) client: async_nats::Client,
    pub(super) link: Link,
    pub(super) js: jetstream::Context,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    stream: String,
    batch: usize,
    fetch_wait: Duration,
    pub(super) answer_timeout: Duration,
    ack_wait: Duration,
    max_deliver: i64,
    nak_delay: Duration,
    pub(super) dead_letter: Option<String>,
    content_type: String,
    /// Where each message's key and event time come from.
    stamp: Stamp,
    /// Messages without what `stamp` needs, to set aside: (handle, why).
    pub(super) unstamped: Vec<(u64, String)>,
    pub(super) held: HashMap<u64, Held>,
    /// Acknowledged lately: a late delivery of one is dropped, acked again.
    pub(super) settled: Settled,
    pub(super) ack_again: Vec<async_nats::Subject>,
    /// The pull request in flight. It lives here, not in `fetch`, so that a
    /// fetch the driver drops at shutdown leaves it to be finished (by the
    /// next fetch or by `stop`) instead of losing what it brings.
    pull: Option<Pull>,
    /// Received (and held), not yet returned by a fetch.
    taken: Vec<Input>,
    pub(super) stats: ConnectorStats,
    info_read: Option<Instant>,
    outage_logged: bool,
    /// `ordered = true`: inputs taken in stream order across workers.
    order: Option<InOrder>,
}

impl std::fmt::Debug for NatsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSource")
            .field("node", &self.node)
            .field("url", &self.url)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl NatsSource {
    pub(super) async fn open(
        settings: &Settings<'_>,
        Connection { client, url, link }: Connection,
    ) -> Result<NatsSource> {
        let answer_timeout = answer_timeout(settings)?;
        let mut js = jetstream::new(client.clone());
        // Every request of this source (consumer info, a dead letter's
        // publish ack) gives up after this.
        js.set_timeout(answer_timeout);
        let stream_name = settings.required("stream")?;
        let subject = settings.required("subject")?;
        let consumer_name = settings.required("consumer")?;
        let version = ServerVersion::of(&client);
        let stream = stream_of(settings, (&js, version), stream_name, subject, &url).await?;
        let ack_wait = millis(settings, "ack_wait_ms", 30_000)?;
        let max_deliver: i64 = settings.parse("max_deliver", 5)?;
        if max_deliver < 1 {
            return Err(settings.error("max_deliver", "must be at least 1"));
        }
        let consumer = consumer_of(
            settings,
            (&stream, version),
            (stream_name, subject, consumer_name),
            (ack_wait, max_deliver),
            &url,
        )
        .await?;
        let info = consumer.cached_info();
        let order = settings.flag("ordered", false)?.then(|| {
            InOrder::open(
                info.delivered.consumer_sequence,
                info.num_ack_pending as u64,
                info.config.ack_wait,
            )
        });
        let batch: usize = settings.parse("batch", 100)?;
        let keep_settled = (4 * batch)
            .max(2 * info.config.max_ack_pending.max(0) as usize)
            .max(1_024);
        let dead_letter = settings.get("dead_letter").map(str::to_string);
        if let (Some(subject), true) = (&dead_letter, settings.flag("create", false)?) {
            dead_letter_stream(settings, &js, subject, stream_name, &url).await?;
        }
        Ok(NatsSource {
            node: settings.node.to_string(),
            url,
            client,
            link,
            js,
            stream: stream_name.to_string(),
            batch,
            fetch_wait: millis(settings, "fetch_wait_ms", 500)?,
            answer_timeout,
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
            stamp: Stamp::of(settings)?,
            unstamped: Vec::new(),
            consumer,
            held: HashMap::new(),
            settled: Settled::keeping(keep_settled),
            ack_again: Vec::new(),
            pull: None,
            taken: Vec::new(),
            stats: ConnectorStats::default(),
            info_read: None,
            outage_logged: false,
            order,
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
        self.pull = Some(Pull {
            state: PullState::Opening(opening),
            wait,
            mark: self.link.mark(),
            next_within: self.answer_timeout + if wait { fetch_wait } else { Duration::ZERO },
        });
    }

    /// Everything the pull in flight brings, into `taken`, until the server
    /// ends it. Cancel safe: every await is on state kept in `self`. A
    /// broker away: nothing (logged once). A pull whose answer does not
    /// come (sent before the connection broke, or silent past its bound)
    /// is given up: the messages the server may have sent for it are
    /// redelivered after the ack wait, and the next fetch sends a new one.
    async fn receive(&mut self) {
        while let Some(pull) = &mut self.pull {
            let next = async {
                match &mut pull.state {
                    PullState::Opening(opening) => match opening.as_mut().await {
                        Ok(batch) => Answer::Opened(batch),
                        Err(error) => Answer::Failed(error.to_string()),
                    },
                    PullState::Open(batch) => match batch.next().await {
                        Some(Ok(message)) => Answer::Message(message),
                        Some(Err(error)) => Answer::Failed(error.to_string()),
                        None => Answer::Ended,
                    },
                }
            };
            // Most of a batch is here already: taken without building the
            // bound's future (a select over the link and a timer) for each.
            let mut next = std::pin::pin!(next);
            let answered = match next.as_mut().now_or_never() {
                Some(answer) => Ok(answer),
                None => self.link.within(pull.mark, pull.next_within, next).await,
            };
            let (error, wait) = match answered {
                Ok(Answer::Opened(batch)) => {
                    pull.state = PullState::Open(Box::new(batch));
                    continue;
                }
                Ok(Answer::Message(message)) => {
                    // The rest of a batch comes at once: the wait is over.
                    pull.next_within = self.answer_timeout;
                    self.take(message);
                    continue;
                }
                Ok(Answer::Ended) => {
                    self.pull = None;
                    continue;
                }
                Ok(Answer::Failed(error)) => (error, pull.wait),
                Err(lost) => {
                    self.stats.lost_requests += 1;
                    if let Some(order) = &mut self.order {
                        // What it brought and this worker never saw comes
                        // again after the ack wait: nothing new before.
                        order.lost_pull();
                    }
                    tracing::warn!(node = %self.node, url = %self.url, cause = %lost,
                        "pull request lost; sending a new one");
                    self.pull = None;
                    continue;
                }
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
        let (sequence, delivered, stored_ns, number) = match message.info() {
            Ok(info) => {
                let stored = info
                    .published
                    .unix_timestamp_nanos()
                    .clamp(0, u64::MAX as i128);
                let number = info.consumer_sequence;
                (info.stream_sequence, info.delivered, stored as u64, number)
            }
            Err(error) => {
                tracing::warn!(node = %self.node, %error, "message without JetStream metadata skipped");
                return;
            }
        };
        let mut message = message.message;
        let Some(reply) = message.reply.take() else {
            tracing::warn!(node = %self.node, "message without a reply subject skipped");
            return;
        };
        if delivered > 1 {
            self.stats.redeliveries += 1;
        }
        let order = self.order.as_mut().map(|order| order.received(number));
        if delivered > 1 && self.settled.contains(sequence) {
            // Sent again before this source's ack landed, or after the
            // server lost it: not processed twice, acknowledged again.
            self.ack_again.push(reply);
            return;
        }
        if let Some(held) = self.held.get_mut(&sequence) {
            // Still held here (an aggregator has it): the server gave up
            // waiting. Keep the newest delivery's reply subject (its acks
            // go there), process it once.
            held.reply = reply;
            held.delivered = delivered;
            held.kept = Instant::now();
            return;
        }
        if order == Some(Delivery::SetAside) {
            // Not held, not acknowledged: it comes again, in its place.
            return;
        }
        let content_type = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Content-Type"))
            .map(|value| value.as_str().to_string())
            .unwrap_or_else(|| self.content_type.clone());
        let origin = format!("{}:{sequence}", self.stream);
        let stamped = self
            .stamp
            .of_message(&message.subject, message.headers.as_ref(), stored_ns);
        self.held.insert(
            sequence,
            Held {
                reply,
                payload: message.payload.clone(),
                origin: origin.clone(),
                delivered,
                kept: Instant::now(),
            },
        );
        let (key, event_ns) = match stamped {
            Ok(stamped) => stamped,
            Err(why) => return self.unstamped.push((sequence, why)),
        };
        let mut element = Element::new(0, content_type, message.payload);
        (element.meta.key, element.meta.timestamp_ns) = (key, event_ns);
        self.taken.push(Input {
            element,
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

    /// Sends `kind` for each of `handles` that is held, and flushes: acks
    /// are fire-and-forget publishes the client buffers, out to the socket
    /// before the batch counts as settled (and before a stopping process
    /// exits). What is sent is no longer held, sent or not.
    ///
    /// Bounded by `answer_timeout`, and never an error: a settlement the
    /// server does not get (it is away, or restarted under it) only means
    /// the message is delivered again after its ack wait, and whatever it
    /// produces again carries the same ids (stored once).
    pub(super) async fn settle(&mut self, handles: &[u64], kind: AckKind) {
        let settled: Vec<Held> = handles
            .iter()
            .filter_map(|handle| self.held.remove(handle))
            .collect();
        if matches!(kind, AckKind::Ack | AckKind::Term) {
            handles.iter().for_each(|handle| self.settled.add(*handle));
        }
        if settled.is_empty() {
            return;
        }
        let client = &self.client;
        let send = async {
            for held in &settled {
                client.publish(held.reply.clone(), kind.into()).await?;
            }
            client.flush().await.map_err(Cause::from)
        };
        let error: Cause = match self
            .link
            .within(self.link.mark(), self.answer_timeout, send)
            .await
        {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error,
            Err(lost) => lost.into(),
        };
        self.stats.lost_requests += 1;
        let what = match kind {
            AckKind::Ack => "acknowledgements",
            AckKind::Nak(_) => "negative acknowledgements",
            AckKind::Term => "terminations",
            _ => "settlements",
        };
        tracing::warn!(node = %self.node, url = %self.url, %error, messages = settled.len(),
            "{what} not sent; the server delivers them again after the ack wait");
    }
}

#[async_trait]
impl SourceConnector for NatsSource {
    async fn fetch(&mut self, max: usize) -> Result<Fetched> {
        if let (None, true, Some(order)) = (&self.pull, self.taken.is_empty(), &mut self.order) {
            if order.still_waiting(&self.consumer, self.fetch_wait).await {
                return Ok(Fetched::Idle);
            }
        }
        let max = max.min(self.batch).max(1);
        // A fetch dropped at a shutdown may have left a pull in flight and
        // messages taken: those come first.
        if self.pull.is_none() && self.taken.is_empty() {
            self.refresh_info().await;
            // What is there now, without waiting.
            self.request(max, false);
        }
        self.receive().await;
        if self.taken.is_empty() && self.order.as_ref().is_none_or(|o| o.waiting().is_none()) {
            // Nothing: wait (up to `fetch_wait`) for one message only; a
            // waiting request for a whole batch would hold a partial batch
            // until it expires.
            self.request(1, true);
            self.receive().await;
        }
        self.send_acks_again().await;
        // Those without a key or event time are set aside, never taken.
        self.set_aside_unstamped().await?;
        if self.taken.is_empty() {
            return Ok(Fetched::Idle);
        }
        self.outage_logged = false;
        let rest = self.taken.split_off(max.min(self.taken.len()));
        Ok(Fetched::Inputs(std::mem::replace(&mut self.taken, rest)))
    }

    async fn ack(&mut self, handles: &[u64]) -> Result<()> {
        self.stats.acked += handles.len() as u64;
        self.settle(handles, AckKind::Ack).await;
        Ok(())
    }

    async fn ack_confirmed(&mut self, handles: &[u64]) -> Result<()> {
        self.confirm_acks(handles).await
    }

    async fn fail(&mut self, handle: u64, error: &str) -> Result<Failed> {
        let Some(held) = self.held.get(&handle) else {
            return Ok(Failed::Retried);
        };
        if held.delivered < self.max_deliver {
            self.settle(&[handle], AckKind::Nak(Some(self.nak_delay)))
                .await;
            return Ok(Failed::Retried);
        }
        // Tried often enough: stored aside with its error, redelivery stopped.
        self.dead_letter(handle, error).await?;
        Ok(Failed::DeadLettered)
    }

    async fn keep(&mut self, handles: &[u64]) -> Result<()> {
        // Well inside the ack wait: a third of it.
        let every = self.ack_wait / 3;
        for handle in handles {
            if let Some(held) = self.held.get_mut(handle) {
                if held.kept.elapsed() >= every {
                    held.kept = Instant::now();
                    if let Err(error) = self
                        .client
                        .publish(held.reply.clone(), AckKind::Progress.into())
                        .await
                    {
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
        self.settle(handles, AckKind::Nak(Some(delay))).await;
        Ok(())
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
