//! A connector node as a flow names it ([`ConnectorSpec`]) and its
//! settings read with the node named in every error ([`Settings`]).

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// A connector node as a flow names it: its kind and settings.
///
/// ```
/// use torvyn_engine::connect::ConnectorSpec;
///
/// let mut spec = ConnectorSpec::new("nats", [("url", "nats://127.0.0.1:4222"), ("subject", "orders.{partition}")]);
/// spec.substitute("partition", "3"); // what `torvyn run --partition 3` does
/// assert_eq!(spec.settings["subject"], "orders.3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
///
/// ```
/// use torvyn_engine::connect::{ConnectorSpec, Settings};
///
/// let spec = ConnectorSpec::new("numbers", [("count", "ten")]);
/// let settings = Settings { node: "input", spec: &spec };
/// let error = settings.parse::<u64>("count", 10).unwrap_err();
/// assert!(error.to_string().contains("node `input`"));
/// assert_eq!(settings.get("missing"), None);
/// ```
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
