//! The bare pipeline `torvyn bench --streams` measures the engine against:
//! a hand-written async-nats consume → uppercase → publish loop with the
//! engine's batch and ack rules and no Wasm, one batch at a time or with
//! batches in flight; and the stream helpers both pipelines use.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures_util::StreamExt;

pub(crate) const BATCH: usize = 100;

pub(crate) type BenchResult<T> = Result<T, String>;

fn err(what: &str) -> impl Fn(async_nats::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

pub(crate) async fn context(url: &str) -> BenchResult<jetstream::Context> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    Ok(jetstream::new(client))
}

pub(crate) async fn stream(js: &jetstream::Context, name: &str, subject: &str) -> BenchResult<()> {
    replicated_stream(js, name, subject, 1).await
}

/// A stream kept by `replicas` servers of a cluster; asked again (for up
/// to 30 s) while a new cluster elects its leaders.
pub(crate) async fn replicated_stream(
    js: &jetstream::Context,
    name: &str,
    subject: &str,
    replicas: usize,
) -> BenchResult<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let created = js
            .get_or_create_stream(jetstream::stream::Config {
                name: name.into(),
                subjects: vec![subject.into()],
                num_replicas: replicas,
                ..Default::default()
            })
            .await;
        match created {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(format!("stream {name}: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Fills `subject` with `count` payloads of `size` bytes (lowercase text).
pub(crate) async fn fill(
    js: &jetstream::Context,
    subject: &str,
    count: usize,
    size: usize,
) -> BenchResult<()> {
    let payload: bytes::Bytes = "abcdefghijklmnopqrstuvwxyz"
        .bytes()
        .cycle()
        .take(size)
        .collect::<Vec<u8>>()
        .into();
    for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for _ in chunk {
            acks.push(
                js.publish(subject.to_string(), payload.clone())
                    .await
                    .map_err(|e| format!("publish: {e}"))?,
            );
        }
        for ack in acks {
            ack.await.map_err(|e| format!("publish ack: {e}"))?;
        }
    }
    Ok(())
}

async fn durable(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> BenchResult<jetstream::consumer::Consumer<pull::Config>> {
    js.get_stream(stream)
        .await
        .map_err(|e| format!("stream {stream}: {e}"))?
        .get_or_create_consumer(
            name,
            pull::Config {
                durable_name: Some(name.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {name}: {e}"))
}

/// How the bare pipeline receives its publish acks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AckPath {
    /// async-nats' `send_publish`: a request per message, each answer a
    /// future of its own (a response slot, and a timer when awaited) —
    /// what the engine's sink uses.
    Futures,
    /// Plain publishes whose reply subject is `INBOX.n` of one
    /// subscription per worker: a batch's acks are read off it in order,
    /// under one timer for the batch.
    Inbox,
}

/// A batch's outputs' publish acks, as [`AckPath`] receives them.
enum BareAcks {
    Futures(Vec<jetstream::context::PublishAckFuture>),
    /// This many answers due on the worker's ack subscription.
    Inbox(usize),
}

/// One batch of the bare pipeline: its inputs and their outputs' publish acks.
struct BareBatch {
    inputs: Vec<jetstream::Message>,
    acks: BareAcks,
}

/// Awaits a bare batch's publish acks, then acks its inputs and flushes.
async fn settle_bare(
    client: &async_nats::Client,
    inbox: &mut Option<async_nats::Subscriber>,
    batch: BareBatch,
) -> BenchResult<()> {
    match batch.acks {
        BareAcks::Futures(acks) => {
            for ack in acks {
                ack.await.map_err(|e| format!("publish ack: {e}"))?;
            }
        }
        BareAcks::Inbox(due) => {
            let answers = inbox.as_mut().ok_or("no ack subscription")?;
            let read = async {
                for _ in 0..due {
                    let answer = answers.next().await.ok_or("ack subscription ended")?;
                    // A stored message's ack is JSON without an `error`;
                    // "no responders" comes as a status.
                    if answer.status.is_some() || answer.payload.starts_with(b"{\"error\"") {
                        return Err(format!("publish ack: {answer:?}"));
                    }
                }
                Ok(())
            };
            tokio::time::timeout(Duration::from_secs(10), read)
                .await
                .map_err(|_| "publish acks timed out".to_string())??;
        }
    }
    for message in &batch.inputs {
        message.ack_with(AckKind::Ack).await.map_err(err("ack"))?;
    }
    client.flush().await.map_err(|e| format!("flush: {e}"))
}

/// The bare pipeline: consume → uppercase in Rust → publish with an id →
/// await the publish acks → ack the inputs, with up to `in_flight`
/// batches whose publish acks are outstanding (1: one batch at a time, the
/// sequential loop; 2: the next batch is fetched and published while the
/// server answers the last, as the engine does by default). Stops after
/// `limit` inputs, or runs until the task is aborted.
pub(crate) async fn bare_worker(
    url: String,
    stream: String,
    consumer: String,
    out: String,
    limit: usize,
    in_flight: usize,
    path: AckPath,
) -> BenchResult<()> {
    let js = context(&url).await?;
    let client = js.client();
    let consumer = durable(&js, &stream, &consumer).await?;
    let prefix = client.new_inbox();
    let mut inbox = match path {
        AckPath::Futures => None,
        AckPath::Inbox => Some(
            client
                .subscribe(format!("{prefix}.*"))
                .await
                .map_err(|e| format!("ack subscription: {e}"))?,
        ),
    };
    let mut published = 0u64;
    let mut taken = 0;
    let mut outstanding = std::collections::VecDeque::new();
    while taken < limit {
        let want = BATCH.min(limit - taken);
        let mut messages = Vec::new();
        for wait in [false, true] {
            if wait {
                // Nothing there: settle what is out before waiting.
                while let Some(batch) = outstanding.pop_front() {
                    settle_bare(&client, &mut inbox, batch).await?;
                }
            }
            let batch = if wait {
                consumer
                    .batch()
                    .max_messages(1)
                    .expires(Duration::from_millis(500))
                    .messages()
                    .await
            } else {
                consumer.fetch().max_messages(want).messages().await
            };
            let mut batch = batch.map_err(|e| format!("fetch: {e}"))?;
            while let Some(message) = batch.next().await {
                messages.push(message.map_err(|e| format!("fetch: {e}"))?);
            }
            if !messages.is_empty() {
                break;
            }
        }
        let mut acks = Vec::with_capacity(messages.len());
        for message in &messages {
            let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
            let upper = message.payload.to_ascii_uppercase();
            let id = format!("{stream}:{sequence}:output:0");
            if path == AckPath::Inbox {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", id.as_str());
                client
                    .publish_with_reply_and_headers(
                        out.clone(),
                        format!("{prefix}.{published}"),
                        headers,
                        upper.into(),
                    )
                    .await
                    .map_err(|e| format!("publish: {e}"))?;
                published += 1;
                continue;
            }
            let publish = jetstream::message::PublishMessage::build()
                .payload(upper.into())
                .message_id(id);
            acks.push(
                js.send_publish(out.clone(), publish)
                    .await
                    .map_err(|e| format!("publish: {e}"))?,
            );
        }
        taken += messages.len();
        let acks = match path {
            AckPath::Futures => BareAcks::Futures(acks),
            AckPath::Inbox => BareAcks::Inbox(messages.len()),
        };
        outstanding.push_back(BareBatch {
            inputs: messages,
            acks,
        });
        while outstanding.len() >= in_flight.max(1) {
            let batch = outstanding.pop_front().expect("one is out");
            settle_bare(&client, &mut inbox, batch).await?;
        }
    }
    while let Some(batch) = outstanding.pop_front() {
        settle_bare(&client, &mut inbox, batch).await?;
    }
    Ok(())
}
