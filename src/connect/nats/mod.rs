//! NATS JetStream connectors, on the official client (`async-nats`).
//!
//! **Source** (`connector = "nats"` on a source node): a durable pull
//! consumer on a stream, shared by every worker that names it; batches by
//! `fetch` (never the continuous `messages()`, which prefetches hundreds of
//! messages whose ack clocks start at once); explicit acks.
//! **Sink** (on a sink node): publishes to a subject of a stream and awaits
//! JetStream's publish ack for every message at each flush. Every message
//! carries `Nats-Msg-Id` = the id the flow gave it (derived from its input's
//! `STREAM:SEQUENCE` and its position), so the outputs of a redelivered input
//! are dropped by the server as duplicates within the stream's duplicate
//! window.
//!
//! | setting | role | meaning (default) |
//! |---|---|---|
//! | `url` | both | server URL, `nats://HOST:PORT` or `tls://…` (required) |
//! | `stream` | both | stream name (required for a source; for a sink only with `create`) |
//! | `subject` | both | source: the consumer's filter subject; sink: where to publish (required) |
//! | `consumer` | source | durable consumer name, shared by all workers (required) |
//! | `create` | both | create the stream and consumer when missing (`false`: missing is an error) |
//! | `stream_subjects` | both | subjects of a created stream, comma-separated (`subject`) |
//! | `retention` | both | of a created stream: `limits` or `workqueue` (`limits`) |
//! | `duplicate_window_ms` | both | of a created stream (120000) |
//! | `batch` | source | most messages per fetch (100) |
//! | `fetch_wait_ms` | source | how long a fetch waits for its first message (500) |
//! | `ack_wait_ms` | source | of a created consumer (30000) |
//! | `max_deliver` | source | deliveries before a failing message is dead-lettered (5) |
//! | `max_ack_pending` | source | of a created consumer (1000) |
//! | `nak_delay_ms` | source | redelivery delay after a failure (500) |
//! | `dead_letter` | source | subject for messages that failed `max_deliver` times (none: terminated and logged) |
//! | `content_type` | source | for messages without a `Content-Type` header (`application/octet-stream`) |
//! | `answer_timeout_ms` | both | how long the server may take to answer a request (a pull's first message after its wait, the next message of a pull, a publish ack, the acks' flush) before it counts as lost and is sent again (5000) |
//! | `token_env`, `token_file` | both | the auth token, from an environment variable or a file |
//! | `creds_file` | both | a `.creds` file (JWT + NKey seed) |
//!
//! No wait on the server is unbounded: a request sent before the connection
//! broke is sent again as soon as the client has reconnected (a restarted
//! server or a moved stream leader has forgotten it), and one that gets no
//! answer within `answer_timeout_ms` is sent again too (a pull) or fails
//! its flush, which is retried (a publish).
//!
//! Secrets never stand in the flow file: only the variable or file that
//! holds them. Errors and logs name the URL (with any `user:password@`
//! removed), never the token.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self};
use async_trait::async_trait;

use super::{Connector, ConnectorFactory, Settings};
use crate::error::{Cause, Error, Result};
use crate::interfaces::Interface;

mod consumer;
mod link;
mod pull;
mod sink;
mod source;
mod state;

use link::Link;

pub use sink::NatsSink;
pub use source::NatsSource;
pub use state::KvStateStore;

const SOURCE_KEYS: &[&str] = &[
    "url",
    "stream",
    "subject",
    "consumer",
    "create",
    "stream_subjects",
    "retention",
    "duplicate_window_ms",
    "batch",
    "fetch_wait_ms",
    "ack_wait_ms",
    "max_deliver",
    "max_ack_pending",
    "nak_delay_ms",
    "dead_letter",
    "content_type",
    "answer_timeout_ms",
    "token_env",
    "token_file",
    "creds_file",
];

/// Header that carries the error text of a dead-lettered message.
pub const ERROR_HEADER: &str = "Torvyn-Error";
/// Header that carries the origin (`STREAM:SEQUENCE`) of a dead-lettered message.
pub const ORIGIN_HEADER: &str = "Torvyn-Origin";

/// The `nats` connector kind. Nodes of one flow with the same URL and
/// credentials share one connection (one socket, one reader task: a
/// source's acks and a sink's publishes travel together).
#[derive(Default)]
pub(crate) struct NatsFactory {
    clients: tokio::sync::Mutex<HashMap<String, Connection>>,
}

/// A client, the URL to name in messages (no password), and its link.
#[derive(Clone)]
pub(crate) struct Connection {
    client: async_nats::Client,
    url: String,
    link: Link,
}

#[async_trait]
impl ConnectorFactory for NatsFactory {
    fn keys(&self) -> &'static [&'static str] {
        SOURCE_KEYS
    }

    fn roles(&self) -> &'static [Interface] {
        &[Interface::Source, Interface::Sink]
    }

    async fn open(&self, role: Interface, settings: &Settings<'_>) -> Result<Connector> {
        // The key names where the secret is, never the secret.
        let key = ["url", "token_env", "token_file", "creds_file"]
            .map(|k| settings.get(k).unwrap_or(""))
            .join("\n");
        let connected = {
            let mut clients = self.clients.lock().await;
            match clients.get(&key) {
                Some(client) => client.clone(),
                None => {
                    let client = connect(settings).await?;
                    clients.insert(key, client.clone());
                    client
                }
            }
        };
        if role == Interface::Source {
            let source = NatsSource::open(settings, connected).await?;
            Ok(Connector::Source(Box::new(source)))
        } else {
            let sink = NatsSink::open(settings, connected).await?;
            Ok(Connector::Sink(Box::new(sink)))
        }
    }
}

/// `url` without any `user:password@`, for messages.
pub fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        },
    }
}

/// An error of the `nats` node `node`, the client's error kept as its source.
fn nats_error(node: &str, detail: String, source: impl Into<Cause>) -> Error {
    Error::connector(node, "nats", detail, Some(source.into()))
}

/// Connects with the node's URL and credentials. An unreachable server is
/// an error within the connection timeout (5 s), not a retry loop; once
/// connected, the client reconnects by itself (its disconnections are
/// counted on the connection's [`Link`]).
async fn connect(settings: &Settings<'_>) -> Result<Connection> {
    let url = settings.required("url")?;
    let shown = redacted(url);
    let (link, events) = link::link();
    let events = std::sync::Arc::new(events);
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("torvyn {}", settings.node))
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .event_callback(move |event| {
            events.observe(&event);
            async {}
        });
    if let Some(var) = settings.get("token_env") {
        let token = std::env::var(var).map_err(|_| {
            settings.error(
                "token_env",
                format!("the environment variable `{var}` is not set"),
            )
        })?;
        options = options.token(token);
    }
    if let Some(path) = settings.get("token_file") {
        let token = std::fs::read_to_string(path)
            .map_err(|e| settings.error("token_file", format!("cannot read `{path}`: {e}")))?;
        options = options.token(token.trim().to_string());
    }
    if let Some(path) = settings.get("creds_file") {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| settings.error("creds_file", format!("cannot use `{path}`: {e}")))?;
    }
    if url.starts_with("tls://") {
        options = options.require_tls(true);
    }
    let client = options
        .connect(url)
        .await
        .map_err(|e| nats_error(settings.node, format!("cannot connect to {shown}"), e))?;
    Ok(Connection {
        client,
        url: shown,
        link,
    })
}

/// The node's `answer_timeout_ms`.
fn answer_timeout(settings: &Settings<'_>) -> Result<Duration> {
    let timeout = millis(settings, "answer_timeout_ms", 5_000)?;
    if timeout.is_zero() {
        return Err(settings.error("answer_timeout_ms", "must be at least 1"));
    }
    Ok(timeout)
}

fn millis(settings: &Settings<'_>, key: &str, default: u64) -> Result<Duration> {
    Ok(Duration::from_millis(settings.parse(key, default)?))
}

/// Finds the stream `name`, or creates it when the node says `create`.
async fn stream_of(
    settings: &Settings<'_>,
    js: &jetstream::Context,
    name: &str,
    subject: &str,
    url: &str,
) -> Result<jetstream::stream::Stream> {
    let found = js.get_stream(name).await;
    match found {
        Ok(stream) => Ok(stream),
        Err(error) if !settings.flag("create", false)? => Err(nats_error(
            settings.node,
            format!("stream `{name}` not found on {url} (set `create = true` to create it)"),
            error,
        )),
        Err(_) => {
            let subjects = match settings.get("stream_subjects") {
                Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
                None => vec![subject.to_string()],
            };
            let retention = match settings.get("retention").unwrap_or("limits") {
                "limits" => jetstream::stream::RetentionPolicy::Limits,
                "workqueue" => jetstream::stream::RetentionPolicy::WorkQueue,
                other => {
                    return Err(settings.error(
                        "retention",
                        format!("`{other}`: expected `limits` or `workqueue`"),
                    ))
                }
            };
            let config = jetstream::stream::Config {
                name: name.to_string(),
                subjects,
                retention,
                duplicate_window: millis(settings, "duplicate_window_ms", 120_000)?,
                ..Default::default()
            };
            js.get_or_create_stream(config).await.map_err(|e| {
                nats_error(
                    settings.node,
                    format!("cannot create stream `{name}` on {url}"),
                    e,
                )
            })
        }
    }
}
