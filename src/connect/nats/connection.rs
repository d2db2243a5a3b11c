//! A connection to a NATS server: made from a node's URL and credentials,
//! shared by the nodes that name the same, and the settings every node
//! reads the same way.

use std::time::Duration;

use super::link::{self, Link};
use crate::connect::Settings;
use crate::error::{Cause, Error, Result};

/// Header that carries the error text of a dead-lettered message.
pub const ERROR_HEADER: &str = "Torvyn-Error";
/// Header that carries the origin (`STREAM:SEQUENCE`) of a dead-lettered message.
pub const ORIGIN_HEADER: &str = "Torvyn-Origin";

/// A client, the URL to name in messages (no password), and its link.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(super) client: async_nats::Client,
    pub(super) url: String,
    pub(super) link: Link,
}

/// `url` without any `user:password@`, for messages.
pub(crate) fn redacted(url: &str) -> String {
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
pub(super) fn nats_error(node: &str, detail: String, source: impl Into<Cause>) -> Error {
    Error::connector(node, "nats", detail, Some(source.into()))
}

/// Connects with the node's URL and credentials. The first connection is
/// tried again (every 100 ms) for `connect_wait_ms` (5 s): a server that is
/// restarting as the worker starts is waited for; one still unreachable
/// after that is an error naming the URL, not a retry loop. Once
/// connected, the client reconnects by itself (its disconnections are
/// counted on the connection's [`Link`]).
pub(super) async fn connect(settings: &Settings<'_>) -> Result<Connection> {
    let url = settings.required("url")?;
    let shown = redacted(url);
    let wait = millis(settings, "connect_wait_ms", 5_000)?;
    let (link, events) = link::link();
    let events = std::sync::Arc::new(events);
    let deadline = tokio::time::Instant::now() + wait;
    let client = loop {
        let events = events.clone();
        let options = options(settings).await?.event_callback(move |event| {
            events.observe(&event);
            async {}
        });
        // Each attempt within what is left of the wait (an address that
        // swallows packets would otherwise take the client's own 5 s).
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let attempt =
            tokio::time::timeout(left.max(Duration::from_millis(100)), options.connect(url)).await;
        let error: Cause = match attempt {
            Ok(Ok(client)) => break client,
            // Credentials, TLS or the address itself: trying again
            // changes nothing.
            Ok(Err(error))
                if !matches!(
                    error.kind(),
                    async_nats::ConnectErrorKind::Io | async_nats::ConnectErrorKind::TimedOut
                ) =>
            {
                return Err(nats_error(
                    settings.node,
                    format!("cannot connect to {shown}"),
                    error,
                ));
            }
            Ok(Err(error)) => error.into(),
            Err(_) => format!("no answer within {} ms", wait.as_millis()).into(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(nats_error(
                settings.node,
                format!(
                    "cannot connect to {shown} (tried for {} ms, connect_wait_ms)",
                    wait.as_millis()
                ),
                error,
            ));
        }
        tracing::debug!(node = settings.node, url = %shown, %error, "connecting: trying again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Ok(Connection {
        client,
        url: shown,
        link,
    })
}

/// The client's options for the node: its name, credentials and TLS.
async fn options(settings: &Settings<'_>) -> Result<async_nats::ConnectOptions> {
    let url = settings.required("url")?;
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("torvyn {}", settings.node))
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None);
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
    Ok(options)
}

/// The node's `answer_timeout_ms`.
pub(super) fn answer_timeout(settings: &Settings<'_>) -> Result<Duration> {
    let timeout = millis(settings, "answer_timeout_ms", 5_000)?;
    if timeout.is_zero() {
        return Err(settings.error("answer_timeout_ms", "must be at least 1"));
    }
    Ok(timeout)
}

pub(super) fn millis(settings: &Settings<'_>, key: &str, default: u64) -> Result<Duration> {
    Ok(Duration::from_millis(settings.parse(key, default)?))
}
