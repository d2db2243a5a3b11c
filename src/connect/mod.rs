//! Connectors: flow nodes that are not components but the world outside
//! the process — a broker's stream, a file, stdin and stdout.
//!
//! A connector is a source or a sink written on the host side. It runs on
//! the async driver ([`Flow::serve`](crate::Flow::serve)) beside the
//! component stages, and speaks in **batches**: a source hands over up to N
//! inputs per [`fetch`](SourceConnector::fetch); a sink takes outputs one by
//! one without I/O ([`accept`](SinkConnector::accept)) and stores them all
//! at [`flush`](SinkConnector::flush). The traits are object-safe (a flow
//! holds connectors of different kinds as `Box<dyn …>`), with one boxed
//! future per batch, never per element.
//!
//! Delivery: an input is [acknowledged](SourceConnector::ack) only after
//! every output derived from it was stored by every sink it reached (the
//! flush after its batch returned `Ok`), or it was dropped on the way.
//! Inputs an aggregator absorbed stay unacknowledged until the aggregate that
//! holds them is stored; [`keep`](SourceConnector::keep) is called for them
//! after each batch so that a broker does not hand them to someone else
//! meanwhile. Each output is named by an id derived from its input's
//! [`origin`](Input::origin) and its position among that input's outputs,
//! so a redelivered input that produces the same outputs produces the same
//! ids (a broker with de-duplication then stores them once).
//!
//! Built in: [`nats`] (JetStream, with the `nats` feature), and the line
//! connectors of [`lines`] (`stdin`, `stdout`, `file`). An embedder adds a
//! kind of their own with [`Connectors::register`].

pub mod lines;
#[cfg(feature = "nats")]
pub mod nats;
pub mod state;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::interfaces::Interface;
use crate::invoker::Element;

/// A connector node as a flow names it: its kind and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorSpec {
    /// The kind, e.g. `nats`, `stdin`, `file`.
    pub kind: String,
    /// Setting → value as text (numbers and booleans as written).
    pub settings: BTreeMap<String, String>,
    /// Setting → its line in the flow file, for errors (empty when the
    /// spec was built in code).
    pub lines: BTreeMap<String, usize>,
}

impl ConnectorSpec {
    /// A spec of `kind` with `settings`.
    pub fn new<K: Into<String>, V: Into<String>>(
        kind: &str,
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> ConnectorSpec {
        ConnectorSpec {
            kind: kind.to_string(),
            settings: settings
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            lines: BTreeMap::new(),
        }
    }

    /// Replaces `{name}` with `value` in every setting (e.g. `{partition}`
    /// from `torvyn run --partition`).
    pub fn substitute(&mut self, name: &str, value: &str) {
        let pattern = format!("{{{name}}}");
        for setting in self.settings.values_mut() {
            if setting.contains(&pattern) {
                *setting = setting.replace(&pattern, value);
            }
        }
    }
}

/// A connector node's settings, with the node named in every error.
#[derive(Debug, Clone)]
pub struct Settings<'a> {
    /// The node.
    pub node: &'a str,
    /// Its spec.
    pub spec: &'a ConnectorSpec,
}

impl<'a> Settings<'a> {
    /// An error about setting `key` (its line included when known).
    pub fn error(&self, key: &str, detail: impl std::fmt::Display) -> Error {
        let line = self
            .spec
            .lines
            .get(key)
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default();
        let detail = format!("setting `{key}`{line}: {detail}");
        Error::connector(self.node, &self.spec.kind, detail, None)
    }

    /// The text of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.spec.settings.get(key).map(String::as_str)
    }

    /// The text of `key`, which must be set.
    pub fn required(&self, key: &str) -> Result<&'a str> {
        self.get(key).ok_or_else(|| {
            let detail = format!("missing setting `{key}`");
            Error::connector(self.node, &self.spec.kind, detail, None)
        })
    }

    /// `key` parsed as a `T`, or `default` when not set.
    pub fn parse<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|e| self.error(key, format!("`{text}` is not valid here: {e}"))),
        }
    }

    /// A boolean setting (`true`/`false`).
    pub fn flag(&self, key: &str, default: bool) -> Result<bool> {
        self.parse(key, default)
    }
}

/// One input taken from a source connector.
#[derive(Debug, Clone)]
pub struct Input {
    /// The element the flow sees (its sequence and timestamp are the
    /// runtime's, set when it enters the flow).
    pub element: Element,
    /// The connector's handle for settling it ([`ack`](SourceConnector::ack),
    /// [`fail`](SourceConnector::fail), [`release`](SourceConnector::release)).
    pub handle: u64,
    /// Where the input lives, the same on every redelivery (a NATS input:
    /// `STREAM:SEQUENCE`). Its outputs' ids are derived from it.
    pub origin: String,
}

/// What one [`fetch`](SourceConnector::fetch) found.
#[derive(Debug)]
pub enum Fetched {
    /// New inputs (at least one).
    Inputs(Vec<Input>),
    /// Nothing arrived while it waited; more may come later.
    Idle,
    /// The source has ended (end of file); nothing more will come.
    Ended,
}

/// What became of an input whose processing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// It will be delivered again.
    Retried,
    /// It was tried often enough: set aside (a dead-letter subject) and
    /// never delivered again.
    DeadLettered,
}

/// Counters a connector keeps, for reports and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectorStats {
    /// Source: inputs the broker still has for this consumer (when known).
    pub pending: Option<u64>,
    /// Source: inputs delivered and not yet acknowledged (when known).
    pub ack_pending: Option<u64>,
    /// Source: inputs received that had been delivered before.
    pub redeliveries: u64,
    /// Source: inputs acknowledged.
    pub acked: u64,
    /// Source: inputs set aside after failing too often.
    pub dead_lettered: u64,
    /// Sink: outputs stored.
    pub stored: u64,
    /// Sink: outputs the broker already had (same id): not stored again.
    pub duplicates: u64,
    /// Requests the broker lost and that were sent again: a source's
    /// requests for input, a sink's publishes whose acks did not come
    /// (sent before the connection broke, or unanswered within the bound).
    pub lost_requests: u64,
}

/// A source of inputs from outside the flow.
///
/// # Cancel safety
///
/// The driver drops a pending [`fetch`](SourceConnector::fetch) when a
/// shutdown is asked for (a source waiting on stdin or an idle broker must
/// not hold it). A dropped fetch must lose nothing: what it had taken and
/// not returned is returned by the next fetch, or handed back by
/// [`stop`](SourceConnector::stop) (the built-in connectors keep requests
/// in flight and inputs taken in `self`, never in the fetch's future).
/// Every other call runs to its end.
#[async_trait]
pub trait SourceConnector: Send {
    /// Up to `max` inputs. Waits a short while (the connector's own fetch
    /// timeout) for the first, then returns [`Fetched::Idle`]. An outage of
    /// the broker is `Idle` too (with a warning logged): the driver keeps
    /// asking, and the connector reconnects.
    async fn fetch(&mut self, max: usize) -> Result<Fetched>;

    /// These inputs are done with for good: every output derived from them
    /// was stored, or they were dropped.
    async fn ack(&mut self, handles: &[u64]) -> Result<()>;

    /// As [`ack`](SourceConnector::ack), returning only once the broker
    /// has confirmed each acknowledgement: for inputs nothing downstream
    /// could recognise if they came again (a stored state absorbed them,
    /// and a redelivery would be counted twice). The default is `ack`.
    async fn ack_confirmed(&mut self, handles: &[u64]) -> Result<()> {
        self.ack(handles).await
    }

    /// Processing this input failed with `error`: deliver it again later,
    /// or set it aside when it was tried often enough.
    async fn fail(&mut self, handle: u64, error: &str) -> Result<Failed>;

    /// These inputs are still held (by an aggregator): keep them from being
    /// handed to another consumer. Called after every batch.
    async fn keep(&mut self, handles: &[u64]) -> Result<()> {
        let _ = handles;
        Ok(())
    }

    /// Hand these inputs back unprocessed (at shutdown): they will be
    /// delivered again, here or to another worker.
    async fn release(&mut self, handles: &[u64]) -> Result<()>;

    /// The run is over (after the last [`release`](SourceConnector::release)
    /// or [`ack`](SourceConnector::ack)): hand back whatever a dropped fetch
    /// had taken and no fetch returned, and end any request still open.
    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }

    /// Its counters.
    fn stats(&self) -> ConnectorStats {
        ConnectorStats::default()
    }
}

/// A sink that stores outputs outside the flow.
#[async_trait]
pub trait SinkConnector: Send {
    /// Takes one output, named `id` (stable across redeliveries of the
    /// input it came from). Nothing is promised stored before
    /// [`flush`](SinkConnector::flush) returns `Ok`.
    fn accept(&mut self, element: &Element, id: &str) -> Result<()>;

    /// Stores everything accepted since the last successful flush; `Ok`
    /// once all of it is durable. On `Err` what was not stored is kept and
    /// tried again by the next flush.
    async fn flush(&mut self) -> Result<()>;

    /// Its counters.
    fn stats(&self) -> ConnectorStats {
        ConnectorStats::default()
    }
}

/// A connector node, opened.
pub enum Connector {
    /// A source.
    Source(Box<dyn SourceConnector>),
    /// A sink.
    Sink(Box<dyn SinkConnector>),
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connector::Source(_) => "Connector::Source",
            Connector::Sink(_) => "Connector::Sink",
        })
    }
}

/// Makes connectors of one kind from their settings.
#[async_trait]
pub trait ConnectorFactory: Send + Sync {
    /// Every setting this kind knows (any other is an error naming it).
    fn keys(&self) -> &'static [&'static str];

    /// The roles it can play ([`Interface::Source`], [`Interface::Sink`]).
    fn roles(&self) -> &'static [Interface];

    /// Opens a node of this kind in `role` (connecting, creating what the
    /// settings ask to be created). Errors name the node and what failed.
    async fn open(&self, role: Interface, settings: &Settings<'_>) -> Result<Connector>;
}

/// The connector kinds a flow may use: the built-in ones and any an
/// embedder registers.
#[derive(Clone)]
pub struct Connectors {
    kinds: BTreeMap<String, Arc<dyn ConnectorFactory>>,
}

impl std::fmt::Debug for Connectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

impl Default for Connectors {
    fn default() -> Self {
        Connectors::builtin()
    }
}

impl Connectors {
    /// The built-in kinds: `stdin`, `stdout`, `file` and (with the `nats`
    /// feature) `nats`.
    pub fn builtin() -> Connectors {
        let mut connectors = Connectors {
            kinds: BTreeMap::new(),
        };
        connectors.register("stdin", Arc::new(lines::StdinFactory));
        connectors.register("stdout", Arc::new(lines::StdoutFactory));
        connectors.register("file", Arc::new(lines::FileFactory));
        #[cfg(feature = "nats")]
        connectors.register("nats", Arc::new(nats::NatsFactory::default()));
        connectors
    }

    /// Adds (or replaces) the kind `kind`.
    pub fn register(&mut self, kind: &str, factory: Arc<dyn ConnectorFactory>) {
        self.kinds.insert(kind.to_string(), factory);
    }

    /// The kind names, sorted.
    pub fn kinds(&self) -> Vec<&str> {
        self.kinds.keys().map(String::as_str).collect()
    }

    /// Checks a connector node without opening it: a known kind, able to
    /// play `role`, every setting known.
    pub fn check(&self, node: &str, role: Interface, spec: &ConnectorSpec) -> Result<()> {
        let factory = self.factory(node, spec)?;
        let error = |detail: String| Error::connector(node, &spec.kind, detail, None);
        if !factory.roles().contains(&role) {
            return Err(error(format!(
                "a `{}` connector cannot be a {} (it can be: {})",
                spec.kind,
                role.role(),
                factory
                    .roles()
                    .iter()
                    .map(|r| r.role())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let settings = Settings { node, spec };
        for key in spec.settings.keys() {
            if !factory.keys().contains(&key.as_str()) {
                return Err(settings.error(
                    key,
                    match factory.keys() {
                        [] => format!("unknown: a `{}` connector has no settings", spec.kind),
                        keys => format!(
                            "unknown for a `{}` connector (its settings: {})",
                            spec.kind,
                            keys.join(", ")
                        ),
                    },
                ));
            }
        }
        Ok(())
    }

    /// Checks and opens a connector node.
    pub async fn open(
        &self,
        node: &str,
        role: Interface,
        spec: &ConnectorSpec,
    ) -> Result<Connector> {
        self.check(node, role, spec)?;
        let factory = self.factory(node, spec)?;
        factory.open(role, &Settings { node, spec }).await
    }

    fn factory(&self, node: &str, spec: &ConnectorSpec) -> Result<&Arc<dyn ConnectorFactory>> {
        self.kinds.get(&spec.kind).ok_or_else(|| {
            let detail = format!(
                "no connector of this kind (known: {})",
                self.kinds().join(", ")
            );
            Error::connector(node, &spec.kind, detail, None)
        })
    }
}
