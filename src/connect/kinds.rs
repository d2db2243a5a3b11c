//! Connector kinds: the factories that open connectors from their
//! settings, built in or registered by an embedder.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::interfaces::Interface;

use super::{ConnectorSpec, Settings, SinkConnector, SourceConnector};

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
