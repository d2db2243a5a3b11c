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
    // The client reads no credentials from the URL (and its own debug
    // events would print them): they are taken out and handed over apart.
    let (address, user_in_url) = credentials_out_of(url);
    // Each server of the list parsed here: the client reads a string as
    // one address, so `nats://a:4222,nats://b:4222` was "invalid port".
    let servers = address
        .split(',')
        .map(|server| {
            server.parse::<async_nats::ServerAddr>().map_err(|e| {
                settings.error(
                    "url",
                    format!("`{}` is not a server address: {e}", redacted(server)),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let credentials = Credentials::read(settings, user_in_url)?;
    let client = loop {
        let events = events.clone();
        let options = credentials.options(settings)?.event_callback(move |event| {
            events.observe(&event);
            async {}
        });
        // Each attempt within what is left of the wait (an address that
        // swallows packets would otherwise take the client's own 5 s).
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let attempt = tokio::time::timeout(
            left.max(Duration::from_millis(100)),
            options.connect(servers.as_slice()),
        )
        .await;
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

/// What a node's client presents — user and password, token, NKey seed,
/// `.creds`, TLS files — read once from its settings (variables and files),
/// so that the first connection's retries (every 100 ms) read nothing
/// again. No `Debug`: it holds secrets.
struct Credentials {
    user_and_password: Option<(String, String)>,
    token: Option<String>,
    nkey_seed: Option<String>,
    creds: Option<String>,
    require_tls: bool,
    root_certificates: Option<std::path::PathBuf>,
    client_certificate: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Credentials {
    /// The node's credentials; `user_in_url`: the `user:password` its URL
    /// carried (a `user` setting replaces it). A variable that is not set
    /// or a file that cannot be read is named now, not as a refused
    /// handshake later.
    fn read(settings: &Settings<'_>, user_in_url: Option<(String, String)>) -> Result<Credentials> {
        let mut user_and_password = user_in_url;
        if let Some(user) = settings.get("user") {
            let password = secret(settings, "password_env", "password_file")?.ok_or_else(|| {
                settings.error("user", "needs `password_env` or `password_file` beside it")
            })?;
            user_and_password = Some((user.to_string(), password));
        }
        let creds =
            match settings.get("creds_file") {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    settings.error("creds_file", format!("cannot use `{path}`: {e}"))
                })?),
                None => None,
            };
        let readable = |key: &str| -> Result<Option<std::path::PathBuf>> {
            let Some(path) = settings.get(key) else {
                return Ok(None);
            };
            std::fs::metadata(path)
                .map_err(|e| settings.error(key, format!("cannot read `{path}`: {e}")))?;
            Ok(Some(std::path::PathBuf::from(path)))
        };
        let root_certificates = readable("tls_ca_file")?;
        let client_certificate = match (readable("tls_cert_file")?, readable("tls_key_file")?) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(settings.error(
                    "tls_cert_file",
                    "a client certificate needs both `tls_cert_file` and `tls_key_file`",
                ))
            }
        };
        Ok(Credentials {
            user_and_password,
            token: secret(settings, "token_env", "token_file")?,
            nkey_seed: secret(settings, "nkey_seed_env", "nkey_seed_file")?,
            creds,
            // A private CA (else the system's roots) means TLS, as does a
            // `tls://` URL.
            require_tls: settings.required("url")?.starts_with("tls://")
                || root_certificates.is_some(),
            root_certificates,
            client_certificate,
        })
    }

    /// The client's options for one attempt (they are consumed by it).
    fn options(&self, settings: &Settings<'_>) -> Result<async_nats::ConnectOptions> {
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("torvyn {}", settings.node))
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None);
        if let Some((user, password)) = &self.user_and_password {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(seed) = &self.nkey_seed {
            options = options.nkey(seed.clone());
        }
        if let Some(creds) = &self.creds {
            options = options.credentials(creds).map_err(|e| {
                let path = settings.get("creds_file").unwrap_or_default();
                settings.error("creds_file", format!("cannot use `{path}`: {e}"))
            })?;
        }
        if let Some(ca) = &self.root_certificates {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.client_certificate {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.require_tls {
            options = options.require_tls(true);
        }
        Ok(options)
    }
}

/// A secret the node names by the environment variable holding it
/// (`env_key`) or the file holding it (`file_key`, trimmed).
fn secret(settings: &Settings<'_>, env_key: &str, file_key: &str) -> Result<Option<String>> {
    if let Some(var) = settings.get(env_key) {
        let value = std::env::var(var).map_err(|_| {
            settings.error(
                env_key,
                format!("the environment variable `{var}` is not set"),
            )
        })?;
        return Ok(Some(value));
    }
    if let Some(path) = settings.get(file_key) {
        let value = std::fs::read_to_string(path)
            .map_err(|e| settings.error(file_key, format!("cannot read `{path}`: {e}")))?;
        return Ok(Some(value.trim().to_string()));
    }
    Ok(None)
}

/// `url` without its `user:password@` (each server of a comma-separated
/// list), and that user and password, percent-decoded.
fn credentials_out_of(url: &str) -> (String, Option<(String, String)>) {
    let mut found = None;
    let servers: Vec<String> = url
        .split(',')
        .map(|server| {
            let server = server.trim();
            let (scheme, rest) = match server.split_once("://") {
                Some((scheme, rest)) => (format!("{scheme}://"), rest),
                None => (String::new(), server),
            };
            match rest.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                    found.get_or_insert((percent_decoded(user), percent_decoded(password)));
                    format!("{scheme}{host}")
                }
                None => server.to_string(),
            }
        })
        .collect();
    (servers.join(","), found)
}

/// `%XX` escapes decoded (a password with `@` or `:` is written so in a URL).
fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The node's `answer_timeout_ms`.
pub(super) fn answer_timeout(settings: &Settings<'_>) -> Result<Duration> {
    let timeout = millis(settings, "answer_timeout_ms", 5_000)?;
    if timeout.is_zero() {
        return Err(settings.error("answer_timeout_ms", "must be at least 1"));
    }
    Ok(timeout)
}

/// The `replicas` setting: how many servers of a cluster keep each stream
/// (and bucket) the node creates, 1 (the default) to 5. One server acks a
/// write before it reaches the disk, so on one server an acknowledged
/// message can be lost with a crash; three make the ack durable.
pub(super) fn replicas(settings: &Settings<'_>) -> Result<usize> {
    let replicas = settings.parse("replicas", 1usize)?;
    if !(1..=5).contains(&replicas) {
        return Err(settings.error("replicas", format!("{replicas}: expected 1 to 5")));
    }
    Ok(replicas)
}

/// JetStream's answer to a request made while a node opens, asked again
/// (every 250 ms) while the server does not answer in time or says
/// JetStream is temporarily unavailable — a stream electing its leader in a
/// cluster, a server restarting — for up to `open_wait_ms` (30 s); then
/// that last answer. Any other answer (found, not found, refused) is
/// returned at once.
pub(super) async fn patiently<T, E, F, Fut>(
    settings: &Settings<'_>,
    mut request: F,
) -> Result<std::result::Result<T, E>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
    E: std::fmt::Display,
{
    let wait = millis(settings, "open_wait_ms", 30_000)?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let answer = request().await;
        match &answer {
            Err(error) if unanswered(error) && tokio::time::Instant::now() < deadline => {
                tracing::debug!(node = settings.node, %error, "JetStream did not answer: asking again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            _ => return Ok(answer),
        }
    }
}

/// Whether a JetStream error says only that no answer came (yet).
fn unanswered(error: &dyn std::fmt::Display) -> bool {
    let text = error.to_string().to_lowercase();
    ["timed out", "temporarily unavailable", "no responders"]
        .iter()
        .any(|sign| text.contains(sign))
}

pub(super) fn millis(settings: &Settings<'_>, key: &str, default: u64) -> Result<Duration> {
    Ok(Duration::from_millis(settings.parse(key, default)?))
}
