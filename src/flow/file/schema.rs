//! The flow file as written: the serde schema its TOML is read into.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) torvyn: Option<toml::Table>,
    #[serde(default)]
    pub(super) component: Vec<RawComponent>,
    #[serde(default)]
    pub(super) flow: BTreeMap<String, RawFlow>,
    #[serde(default)]
    pub(super) runtime: Option<RawRuntime>,
    #[serde(default)]
    pub(super) build: Option<RawBuild>,
    #[serde(default)]
    pub(super) test: Option<toml::Table>,
    #[serde(default)]
    pub(super) security: Option<toml::Table>,
    #[serde(default)]
    pub(super) observability: Option<toml::Table>,
    #[serde(default)]
    pub(super) registry: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawComponent {
    pub(super) name: String,
    pub(super) path: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) language: Option<String>,
    #[serde(default)]
    pub(super) build_command: Option<String>,
    #[serde(default)]
    pub(super) config: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuild {
    #[serde(default)]
    pub(super) release: Option<bool>,
    #[serde(default)]
    pub(super) extra_args: Vec<String>,
    #[serde(default)]
    pub(super) target: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlow {
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) default_queue_depth: Option<usize>,
    #[serde(default)]
    pub(super) scheduling_policy: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) backpressure: Option<RawBackpressure>,
    #[serde(default)]
    pub(super) nodes: BTreeMap<String, RawNode>,
    #[serde(default)]
    pub(super) edges: Vec<RawEdge>,
}

/// A node's table, every value with its place in the file: a component
/// node has a fixed set of keys, a connector node (`connector = KIND`) any
/// settings its kind knows (checked when the flow is opened).
pub(super) type RawNode = BTreeMap<String, Spanned<toml::Value>>;

/// The keys of a component node.
pub(super) const COMPONENT_NODE_KEYS: &[&str] = &[
    "component",
    "interface",
    "config",
    "description",
    "connector",
    "fuel_budget",
    "max_memory",
    "recycle_after_elements",
    "recycle_at_memory_percent",
    "priority",
    "window",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEdge {
    pub(super) from: RawPort,
    pub(super) to: RawPort,
    #[serde(default)]
    pub(super) queue_depth: Option<usize>,
    #[serde(default)]
    pub(super) backpressure: Option<RawBackpressure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPort {
    pub(super) node: String,
    #[serde(default = "default_port")]
    pub(super) port: String,
}

pub(super) fn default_port() -> String {
    "output".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRuntime {
    #[serde(default)]
    pub(super) worker_threads: Option<usize>,
    #[serde(default)]
    pub(super) default_fuel_per_invocation: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) max_memory_per_component: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub(super) compilation_cache_dir: Option<String>,
    #[serde(default)]
    pub(super) scheduling: Option<RawScheduling>,
    #[serde(default)]
    pub(super) backpressure: Option<RawBackpressure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScheduling {
    #[serde(default)]
    pub(super) policy: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) default_priority: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackpressure {
    #[serde(default)]
    pub(super) default_queue_depth: Option<usize>,
    #[serde(default)]
    pub(super) backpressure_policy: Option<Spanned<String>>,
}

/// The scheduling policies of the runtime's file.
pub(super) const SCHEDULING_POLICIES: &[&str] = &["round-robin", "weighted-fair", "priority"];
