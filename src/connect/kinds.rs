//! Connector kinds: the factories that open connectors from their
//! settings, built in or registered by an embedder.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::interfaces::Interface;

use super::{ConnectorSpec, Settings, SinkConnector, SourceConnector};

/// A connector node, opened.
///
/// ```
/// use torvyn_engine::connect::{Connector, ConnectorSpec, Connectors};
/// use torvyn_engine::Interface;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> torvyn_engine::Result<()> {
/// let spec = ConnectorSpec::new("stdout", Vec::<(&str, &str)>::new());
/// match Connectors::builtin().open("out", Interface::Sink, &spec).await? {
///     Connector::Sink(mut sink) => sink.flush().await?,
///     Connector::Source(_) => unreachable!("opened as a sink"),
/// }
/// # Ok(())
/// # }
/// ```
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
///
/// ```
/// use std::sync::Arc;
/// use torvyn_engine::connect::{
///     Connector, ConnectorFactory, ConnectorSpec, Connectors, Failed, Fetched, Input, Settings,
///     SinkConnector, SourceConnector,
/// };
/// use torvyn_engine::{async_trait, Element, Interface};
///
/// /// A source of `count` numbers held in memory (a broker would keep them).
/// struct Numbers {
///     next: u64,
///     count: u64,
/// }
///
/// #[async_trait]
/// impl SourceConnector for Numbers {
///     async fn fetch(&mut self, max: usize) -> torvyn_engine::Result<Fetched> {
///         if self.next == self.count {
///             return Ok(Fetched::Ended);
///         }
///         let mut inputs = Vec::new();
///         while self.next < self.count && inputs.len() < max {
///             let element = Element::new(0, "text/plain", self.next.to_string());
///             inputs.push(Input::new(element, self.next, format!("numbers:{}", self.next)));
///             self.next += 1;
///         }
///         Ok(Fetched::Inputs(inputs))
///     }
///     async fn ack(&mut self, _handles: &[u64]) -> torvyn_engine::Result<()> {
///         Ok(())
///     }
///     async fn fail(&mut self, _handle: u64, _error: &str) -> torvyn_engine::Result<Failed> {
///         Ok(Failed::DeadLettered)
///     }
///     async fn release(&mut self, _handles: &[u64]) -> torvyn_engine::Result<()> {
///         Ok(())
///     }
/// }
///
/// /// Makes `numbers` sources: `count` is its one setting.
/// struct NumbersFactory;
///
/// #[async_trait]
/// impl ConnectorFactory for NumbersFactory {
///     fn keys(&self) -> &'static [&'static str] {
///         &["count"]
///     }
///     fn roles(&self) -> &'static [Interface] {
///         &[Interface::Source]
///     }
///     async fn open(&self, _role: Interface, settings: &Settings<'_>) -> torvyn_engine::Result<Connector> {
///         let count = settings.parse("count", 10)?;
///         Ok(Connector::Source(Box::new(Numbers { next: 0, count })))
///     }
/// }
///
/// let mut connectors = Connectors::builtin();
/// connectors.register("numbers", Arc::new(NumbersFactory));
/// assert!(connectors.kinds().contains(&"numbers"));
/// // Unknown settings are refused by name before anything opens:
/// let spec = ConnectorSpec::new("numbers", [("cuont", "3")]);
/// let error = connectors.check("in", Interface::Source, &spec).unwrap_err();
/// assert!(error.to_string().contains("cuont"));
/// ```
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
///
/// ```
/// use torvyn_engine::connect::{ConnectorSpec, Connectors};
/// use torvyn_engine::Interface;
///
/// let connectors = Connectors::builtin();
/// assert!(connectors.kinds().contains(&"file"));
/// let spec = ConnectorSpec::new("file", [("path", "in.txt")]);
/// connectors.check("input", Interface::Source, &spec)?;
/// // A stdout source is not a thing, and the error says so, naming the node:
/// let error = connectors
///     .check("input", Interface::Source, &ConnectorSpec::new("stdout", Vec::<(&str, &str)>::new()))
///     .unwrap_err();
/// assert!(error.to_string().contains("input"));
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
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
        connectors.register("stdin", Arc::new(super::lines::StdinFactory));
        connectors.register("stdout", Arc::new(super::lines::StdoutFactory));
        connectors.register("file", Arc::new(super::lines::FileFactory));
        #[cfg(feature = "nats")]
        connectors.register("nats", Arc::new(super::nats::NatsFactory::default()));
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
