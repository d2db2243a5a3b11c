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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    component: String,
    interface: String,
    #[serde(default)]
    config: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

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
                let role = role_of(&raw.interface).ok_or_else(|| {
                    flow_error(format!(
                        "node `{node}`: interface `{}` is no stage role (torvyn:streaming/source, \
                         torvyn:streaming/processor, torvyn:streaming/sink, torvyn:filtering/filter, \
                         torvyn:filtering/router, torvyn:aggregation/aggregator)",
                        raw.interface
                    ))
                })?;
                if !components.contains_key(&raw.component) {
                    return Err(flow_error(format!(
                        "node `{node}` names component `{}`, which no [[component]] declares",
                        raw.component
                    )));
                }
                nodes.push(NodeSpec {
                    name: node,
                    component: raw.component,
                    role,
                    config: raw.config.unwrap_or_default(),
                });
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
