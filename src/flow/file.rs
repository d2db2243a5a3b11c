//! Flow files: TOML in the shape of the Torvyn runtime's project file
//! (`Torvyn.toml`).
//!
//! ```toml
//! [[component]]
//! name = "token-source"
//! path = "components/token-source.wasm"   # relative to this file, or bundled:NAME
//!
//! [flow.main]
//! default_queue_depth = 16                 # optional
//!
//! [flow.main.nodes.source]
//! component = "token-source"
//! interface = "torvyn:streaming/source"
//! config = "100"                           # optional, given to `init`
//!
//! [[flow.main.edges]]
//! from = { node = "source", port = "output" }
//! to = { node = "sink", port = "input" }
//! ```
//!
//! Keys that mean something here are honoured: component paths, nodes,
//! edges, configs, `default_queue_depth` (per flow, or under
//! `[runtime.backpressure]` for all) and `[runtime] worker_threads` (for
//! the tokio driver). The rest of the runtime's file (`[torvyn]`,
//! descriptions, `language`, `[security]`, `[observability]`,
//! `[registry]`, scheduling) is accepted and ignored. A key this engine
//! does not know in a table it reads is an error that names it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::spec::{role_of, EdgeSpec, FlowSpec, NodeSpec, PortRef, DEFAULT_QUEUE_DEPTH};
use crate::connect::ConnectorSpec;
use crate::error::{Error, Result};

/// A parsed flow file: its components and flows.
#[derive(Debug, Clone)]
pub struct FlowFile {
    /// Where it was read from (component paths are relative to its folder).
    pub path: PathBuf,
    /// Component name → where its bytes are: a `.wasm` path (resolved
    /// against the file's folder), or a `bundled:NAME` kept as written (the
    /// `torvyn` tool's bundled components).
    pub components: BTreeMap<String, String>,
    /// The flows, by name.
    pub flows: BTreeMap<String, FlowSpec>,
    /// `[runtime] worker_threads`, if given.
    pub worker_threads: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    torvyn: Option<toml::Table>,
    #[serde(default)]
    component: Vec<RawComponent>,
    #[serde(default)]
    flow: BTreeMap<String, RawFlow>,
    #[serde(default)]
    runtime: Option<RawRuntime>,
    #[serde(default)]
    security: Option<toml::Table>,
    #[serde(default)]
    observability: Option<toml::Table>,
    #[serde(default)]
    registry: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    name: String,
    path: String,
    #[serde(default)]
    #[allow(dead_code)]
    language: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    default_queue_depth: Option<usize>,
    #[serde(default)]
    nodes: BTreeMap<String, RawNode>,
    #[serde(default)]
    edges: Vec<RawEdge>,
}

/// A node's table, every value with its place in the file: a component
/// node has a fixed set of keys, a connector node (`connector = KIND`) any
/// settings its kind knows (checked when the flow is opened).
type RawNode = BTreeMap<String, toml::Spanned<toml::Value>>;

/// The keys of a component node.
const COMPONENT_NODE_KEYS: &[&str] = &[
    "component",
    "interface",
    "config",
    "description",
    "connector",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    from: RawPort,
    to: RawPort,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    node: String,
    #[serde(default = "default_port")]
    port: String,
}

fn default_port() -> String {
    "output".into()
}

#[derive(Deserialize)]
struct RawRuntime {
    #[serde(default)]
    worker_threads: Option<usize>,
    #[serde(default)]
    backpressure: Option<RawBackpressure>,
    // Other runtime settings (memory, scheduling) belong to the runtime.
    #[serde(flatten)]
    #[allow(dead_code)]
    rest: toml::Table,
}

#[derive(Deserialize)]
struct RawBackpressure {
    #[serde(default)]
    default_queue_depth: Option<usize>,
    #[serde(flatten)]
    #[allow(dead_code)]
    rest: toml::Table,
}

impl FlowFile {
    /// Reads and checks a flow file. Errors name the file, and for TOML
    /// mistakes the line, column and key.
    pub fn read(path: &Path) -> Result<FlowFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Flow {
            flow: path.display().to_string(),
            detail: format!("cannot read the flow file: {e}"),
        })?;
        FlowFile::parse(path, &text)
    }

    /// Parses flow-file text; `path` names it in errors and anchors the
    /// component paths.
    pub fn parse(path: &Path, text: &str) -> Result<FlowFile> {
        let file_error = |detail: String| Error::Flow {
            flow: path.display().to_string(),
            detail,
        };
        let raw: RawFile =
            toml::from_str(text).map_err(|e| file_error(e.to_string().trim_end().to_string()))?;
        let _ignored = (
            &raw.torvyn,
            &raw.security,
            &raw.observability,
            &raw.registry,
        );
        let base = path.parent().unwrap_or(Path::new("."));
        let mut components = BTreeMap::new();
        for component in raw.component {
            let location = match component.path.strip_prefix("bundled:") {
                Some(_) => component.path.clone(),
                None => base
                    .join(component.path.trim_start_matches("file://"))
                    .display()
                    .to_string(),
            };
            if components
                .insert(component.name.clone(), location)
                .is_some()
            {
                return Err(file_error(format!(
                    "component `{}` is declared twice",
                    component.name
                )));
            }
        }
        let runtime_depth = raw
            .runtime
            .as_ref()
            .and_then(|r| r.backpressure.as_ref())
            .and_then(|b| b.default_queue_depth);
        let mut flows = BTreeMap::new();
        for (name, flow) in raw.flow {
            let flow_error = |detail: String| Error::Flow {
                flow: name.clone(),
                detail: format!("{}: {detail}", path.display()),
            };
            let queue_depth = flow
                .default_queue_depth
                .or(runtime_depth)
                .unwrap_or(DEFAULT_QUEUE_DEPTH);
            if queue_depth == 0 {
                return Err(flow_error("default_queue_depth must be at least 1".into()));
            }
            let mut nodes = Vec::new();
            for (node, raw) in flow.nodes {
                nodes.push(node_of(&node, raw, text, base, &components).map_err(&flow_error)?);
            }
            let edges = flow
                .edges
                .into_iter()
                .map(|edge| EdgeSpec {
                    from: PortRef {
                        node: edge.from.node,
                        port: edge.from.port,
                    },
                    to: PortRef {
                        node: edge.to.node,
                        port: edge.to.port,
                    },
                })
                .collect();
            let spec = FlowSpec {
                name: name.clone(),
                nodes,
                edges,
                queue_depth,
            };
            spec.validate()?;
            flows.insert(name, spec);
        }
        if flows.is_empty() {
            return Err(file_error("no [flow.NAME] table: nothing to run".into()));
        }
        Ok(FlowFile {
            path: path.to_path_buf(),
            components,
            flows,
            worker_threads: raw.runtime.and_then(|r| r.worker_threads),
        })
    }

    /// Replaces `{name}` with `value` in every connector setting of every
    /// flow (`torvyn run --partition P` fills `{partition}`).
    pub fn substitute(&mut self, name: &str, value: &str) {
        for flow in self.flows.values_mut() {
            for node in &mut flow.nodes {
                if let Some(connector) = &mut node.connector {
                    connector.substitute(name, value);
                }
            }
        }
    }

    /// The flow named `name`, or the only one when `name` is `None`.
    pub fn flow(&self, name: Option<&str>) -> Result<&FlowSpec> {
        let error = |detail: String| Error::Flow {
            flow: self.path.display().to_string(),
            detail,
        };
        let names = || self.flows.keys().cloned().collect::<Vec<_>>().join(", ");
        match name {
            Some(name) => self
                .flows
                .get(name)
                .ok_or_else(|| error(format!("no flow `{name}` (flows: {})", names()))),
            None if self.flows.len() == 1 => Ok(self.flows.values().next().expect("one flow")),
            None => Err(error(format!(
                "the file has several flows ({}); choose one with --flow",
                names()
            ))),
        }
    }
}

/// The line of byte `offset` in `text` (1-based).
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// One node of a flow file: a component in a role, or a connector.
fn node_of(
    name: &str,
    mut raw: RawNode,
    text: &str,
    base: &Path,
    components: &BTreeMap<String, String>,
) -> std::result::Result<NodeSpec, String> {
    let line = |value: &toml::Spanned<toml::Value>| line_of(text, value.span().start);
    // A misspelt key is named before any missing one it explains.
    if !raw.contains_key("connector") {
        if let Some((key, value)) = raw
            .iter()
            .find(|(key, _)| !COMPONENT_NODE_KEYS.contains(&key.as_str()))
        {
            return Err(format!(
                "node `{name}`: unknown field `{key}` (line {}), expected one of {}",
                line(value),
                COMPONENT_NODE_KEYS
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let mut string = |key: &str| -> std::result::Result<Option<String>, String> {
        match raw.remove(key) {
            None => Ok(None),
            Some(value) => match value.get_ref() {
                toml::Value::String(text) => Ok(Some(text.clone())),
                other => Err(format!(
                    "node `{name}`: `{key}` (line {}) must be a string, not {}",
                    line(&value),
                    other.type_str()
                )),
            },
        }
    };
    let interface =
        string("interface")?.ok_or_else(|| format!("node `{name}`: missing field `interface`"))?;
    let role = role_of(&interface).ok_or_else(|| {
        format!(
            "node `{name}`: interface `{interface}` is no stage role (torvyn:streaming/source, \
             torvyn:streaming/processor, torvyn:streaming/sink, torvyn:filtering/filter, \
             torvyn:filtering/router, torvyn:aggregation/aggregator)"
        )
    })?;
    let _description = string("description")?;
    if let Some(kind) = string("connector")? {
        for key in ["component", "config"] {
            if let Some(value) = raw.get(key) {
                return Err(format!(
                    "node `{name}`: `{key}` (line {}) is for component nodes; this node is a \
                     `{kind}` connector",
                    line(value)
                ));
            }
        }
        let mut spec = ConnectorSpec::new::<String, String>(&kind, []);
        for (key, value) in raw {
            let text = match value.get_ref() {
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(x) => x.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "node `{name}`: setting `{key}` (line {}) must be a string, number or \
                         boolean, not {}",
                        line(&value),
                        other.type_str()
                    ))
                }
            };
            let text = expand_environment(&text).map_err(|detail| {
                format!(
                    "node `{name}`: setting `{key}` (line {}): {detail}",
                    line(&value)
                )
            })?;
            // Files a connector reads or writes are relative to the flow file.
            let text = if key == "path" || key.ends_with("_file") {
                base.join(&text).display().to_string()
            } else {
                text
            };
            spec.lines.insert(key.clone(), line(&value));
            spec.settings.insert(key, text);
        }
        return Ok(NodeSpec::connector(name, role, spec));
    }
    let component = string("component")?.ok_or_else(|| {
        format!("node `{name}`: missing field `component` (or `connector` for a connector node)")
    })?;
    let config = string("config")?.unwrap_or_default();
    if !components.contains_key(&component) {
        return Err(format!(
            "node `{name}` names component `{component}`, which no [[component]] declares"
        ));
    }
    Ok(NodeSpec::component(name, &component, role, &config))
}

/// Replaces `${NAME}` and `${NAME:-default}` in a connector setting with the
/// environment variable's value (so one flow file serves every machine:
/// `url = "${NATS_URL:-nats://127.0.0.1:4222}"`). A variable that is not set
/// and has no default is an error naming it.
fn expand_environment(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
        let (name, default) = match after[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&after[..end], None),
        };
        match (std::env::var(name), default) {
            (Ok(value), _) => out.push_str(&value),
            (Err(_), Some(default)) => out.push_str(default),
            (Err(_), None) => {
                return Err(format!(
                    "the environment variable `{name}` is not set (write `${{{name}:-DEFAULT}}` \
                     for a default)"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
