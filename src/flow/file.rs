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
//! Every key of the runtime's file is read; each is honoured or accepted
//! for a stated reason (the README's "Project files" table):
//!
//! - `[[component]]`: `path` (a `.wasm`, `bundled:NAME`, or the component's
//!   project directory, resolved by [`super::project`]), `build_command`
//!   (run by `torvyn run --build`; a `.wasm` it names is the output),
//!   `config` (the default `init` config of nodes using it), `language`
//!   (informative).
//! - nodes: `component` (a declared name, or a `file://` / path reference),
//!   `interface`, `config`, `fuel_budget` and `max_memory` (that node's
//!   limits), `priority` (1–10, checked; the driver forwards each element
//!   depth-first, so there is no queue of ready nodes to order by it).
//! - flows and edges: `default_queue_depth`, edge `queue_depth`,
//!   `backpressure` (`default_queue_depth`, and `backpressure_policy`, of
//!   which only `block-producer` exists here: this engine never drops an
//!   element, so a dropping policy is refused, not ignored),
//!   `scheduling_policy` (checked, same reason as `priority`).
//! - `[runtime]`: `worker_threads` (0: one per core),
//!   `default_fuel_per_invocation`, `max_memory_per_component`,
//!   `compilation_cache_dir` (the engine's settings), `scheduling`,
//!   `backpressure`.
//! - `[build]`: `target`, `release` and `extra_args` make the default
//!   build command of a project directory without a `build_command` (what
//!   `torvyn run --build` runs, and what an error about an unbuilt
//!   directory tells to run).
//! - `[torvyn]`, `[test]` (the runtime's `torvyn test`; this tool has no
//!   test command), `[security]`, `[observability]`, `[registry]`,
//!   descriptions: accepted, not used.
//!
//! A key that is none of these is an error naming it and its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

// Kept where it stood before it moved to project.rs, which reads it.
pub use super::project::BuildSettings;
use super::spec::{role_of, EdgeSpec, FlowSpec, NodeSpec, PortRef, DEFAULT_QUEUE_DEPTH};
use crate::config::{EngineConfigBuilder, NodeLimits};
use crate::connect::ConnectorSpec;
use crate::error::{Error, Result};

/// A parsed flow file: its components and flows.
#[derive(Debug, Clone)]
pub struct FlowFile {
    /// Where it was read from (component paths are relative to its folder).
    pub path: PathBuf,
    /// Component name → where its bytes are: a `.wasm` file or a project
    /// directory (resolved against the file's folder; see
    /// [`super::project::resolve`]), or a `bundled:NAME` kept as written
    /// (the `torvyn` tool's bundled components).
    pub components: BTreeMap<String, String>,
    /// Component name → its `build_command`, for those that have one.
    pub build_commands: BTreeMap<String, String>,
    /// The flows, by name.
    pub flows: BTreeMap<String, FlowSpec>,
    /// `[runtime]`: the engine's and the async runtime's settings.
    pub runtime: RuntimeSettings,
    /// `[build]`: how project directories are built and where their
    /// component is looked for.
    pub build: BuildSettings,
}

/// The `[runtime]` settings this engine honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// Tokio worker threads (`worker_threads`; 0 or absent: one per core).
    pub worker_threads: Option<usize>,
    /// Fuel per call of every component (`default_fuel_per_invocation`);
    /// absent: unmetered.
    pub fuel_per_call: Option<u64>,
    /// Largest linear memory per instance (`max_memory_per_component`).
    pub max_memory_bytes: Option<u64>,
    /// The compiled-code cache (`compilation_cache_dir`, relative to the file).
    pub cache_dir: Option<PathBuf>,
    /// Whether any node has its own `fuel_budget` (the engine must then
    /// compile fuel metering in).
    pub node_fuel: bool,
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
    build: Option<RawBuild>,
    #[serde(default)]
    test: Option<toml::Table>,
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
    #[serde(default)]
    build_command: Option<String>,
    #[serde(default)]
    config: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    #[serde(default)]
    release: Option<bool>,
    #[serde(default)]
    extra_args: Vec<String>,
    #[serde(default)]
    target: Option<String>,
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
    scheduling_policy: Option<Spanned<String>>,
    #[serde(default)]
    backpressure: Option<RawBackpressure>,
    #[serde(default)]
    nodes: BTreeMap<String, RawNode>,
    #[serde(default)]
    edges: Vec<RawEdge>,
}

/// A node's table, every value with its place in the file: a component
/// node has a fixed set of keys, a connector node (`connector = KIND`) any
/// settings its kind knows (checked when the flow is opened).
type RawNode = BTreeMap<String, Spanned<toml::Value>>;

/// The keys of a component node.
const COMPONENT_NODE_KEYS: &[&str] = &[
    "component",
    "interface",
    "config",
    "description",
    "connector",
    "fuel_budget",
    "max_memory",
    "priority",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    from: RawPort,
    to: RawPort,
    #[serde(default)]
    queue_depth: Option<usize>,
    #[serde(default)]
    backpressure: Option<RawBackpressure>,
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
#[serde(deny_unknown_fields)]
struct RawRuntime {
    #[serde(default)]
    worker_threads: Option<usize>,
    #[serde(default)]
    default_fuel_per_invocation: Option<Spanned<u64>>,
    #[serde(default)]
    max_memory_per_component: Option<Spanned<toml::Value>>,
    #[serde(default)]
    compilation_cache_dir: Option<String>,
    #[serde(default)]
    scheduling: Option<RawScheduling>,
    #[serde(default)]
    backpressure: Option<RawBackpressure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduling {
    #[serde(default)]
    policy: Option<Spanned<String>>,
    #[serde(default)]
    default_priority: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackpressure {
    #[serde(default)]
    default_queue_depth: Option<usize>,
    #[serde(default)]
    backpressure_policy: Option<Spanned<String>>,
}

/// The scheduling policies of the runtime's file.
const SCHEDULING_POLICIES: &[&str] = &["round-robin", "weighted-fair", "priority"];

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
        let _accepted = (
            &raw.torvyn,
            &raw.test,
            &raw.security,
            &raw.observability,
            &raw.registry,
        );
        let base = path.parent().unwrap_or(Path::new("."));
        let mut components = BTreeMap::new();
        let mut build_commands = BTreeMap::new();
        let mut component_configs = BTreeMap::new();
        for component in raw.component {
            let location = location_of(base, &component.path);
            if components
                .insert(component.name.clone(), location)
                .is_some()
            {
                return Err(file_error(format!(
                    "component `{}` is declared twice",
                    component.name
                )));
            }
            if let Some(command) = component.build_command {
                build_commands.insert(component.name.clone(), command);
            }
            if let Some(config) = component.config {
                component_configs.insert(component.name, config);
            }
        }
        let runtime_raw = raw.runtime.as_ref();
        let runtime_backpressure = runtime_raw.and_then(|r| r.backpressure.as_ref());
        if let Some(backpressure) = runtime_backpressure {
            check_backpressure(backpressure, text, "[runtime.backpressure]").map_err(file_error)?;
        }
        if let Some(scheduling) = runtime_raw.and_then(|r| r.scheduling.as_ref()) {
            if let Some(policy) = &scheduling.policy {
                check_scheduling(policy, text).map_err(file_error)?;
            }
            if let Some(priority) = &scheduling.default_priority {
                check_priority(*priority.get_ref(), line_of(text, priority.span().start)).map_err(
                    |e| file_error(format!("[runtime.scheduling] default_priority {e}")),
                )?;
            }
        }
        let runtime_depth = runtime_backpressure.and_then(|b| b.default_queue_depth);
        let mut node_fuel = false;
        let mut flows = BTreeMap::new();
        for (name, flow) in raw.flow {
            let flow_error = |detail: String| Error::Flow {
                flow: name.clone(),
                detail: format!("{}: {detail}", path.display()),
            };
            if let Some(policy) = &flow.scheduling_policy {
                check_scheduling(policy, text).map_err(&flow_error)?;
            }
            if let Some(backpressure) = &flow.backpressure {
                check_backpressure(backpressure, text, "backpressure").map_err(&flow_error)?;
            }
            let queue_depth = flow
                .default_queue_depth
                .or(flow
                    .backpressure
                    .as_ref()
                    .and_then(|b| b.default_queue_depth))
                .or(runtime_depth)
                .unwrap_or(DEFAULT_QUEUE_DEPTH);
            if queue_depth == 0 {
                return Err(flow_error("default_queue_depth must be at least 1".into()));
            }
            let mut nodes = Vec::new();
            for (node, raw) in flow.nodes {
                let mut spec =
                    node_of(&node, raw, text, base, &mut components).map_err(&flow_error)?;
                let default = component_configs.get(&spec.node.component);
                if let (Some(default), false) = (default, spec.config_given) {
                    spec.node.config = default.clone();
                }
                node_fuel |= spec.node.limits.fuel_per_call.is_some();
                nodes.push(spec.node);
            }
            let mut edges = Vec::new();
            for edge in flow.edges {
                let mut spec = EdgeSpec {
                    from: PortRef {
                        node: edge.from.node,
                        port: edge.from.port,
                    },
                    to: PortRef {
                        node: edge.to.node,
                        port: edge.to.port,
                    },
                    queue_depth: edge.queue_depth,
                };
                if let Some(backpressure) = &edge.backpressure {
                    let place = format!("edge {spec}: backpressure");
                    check_backpressure(backpressure, text, &place).map_err(&flow_error)?;
                    spec.queue_depth = spec.queue_depth.or(backpressure.default_queue_depth);
                }
                edges.push(spec);
            }
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
        let runtime = match raw.runtime {
            None => RuntimeSettings {
                node_fuel,
                ..RuntimeSettings::default()
            },
            Some(runtime) => RuntimeSettings {
                worker_threads: runtime.worker_threads.filter(|&threads| threads > 0),
                fuel_per_call: match runtime.default_fuel_per_invocation {
                    Some(fuel) if *fuel.get_ref() == 0 => {
                        return Err(file_error(format!(
                            "[runtime] default_fuel_per_invocation (line {}) must be positive",
                            line_of(text, fuel.span().start)
                        )))
                    }
                    fuel => fuel.map(Spanned::into_inner),
                },
                max_memory_bytes: runtime
                    .max_memory_per_component
                    .as_ref()
                    .map(|value| memory_size(value, text))
                    .transpose()
                    .map_err(|e| file_error(format!("[runtime] max_memory_per_component {e}")))?,
                cache_dir: runtime.compilation_cache_dir.map(|dir| base.join(dir)),
                node_fuel,
            },
        };
        let build = match raw.build {
            None => BuildSettings::default(),
            Some(build) => BuildSettings {
                target: build
                    .target
                    .unwrap_or_else(|| BuildSettings::default().target),
                release: build.release.unwrap_or(true),
                extra_args: build.extra_args,
            },
        };
        Ok(FlowFile {
            path: path.to_path_buf(),
            components,
            build_commands,
            flows,
            runtime,
            build,
        })
    }

    /// `builder` with the file's `[runtime]` engine settings: fuel per
    /// call, memory per instance, the compilation cache, and per-component
    /// fuel when a node has its own `fuel_budget`.
    pub fn engine_config(&self, mut builder: EngineConfigBuilder) -> EngineConfigBuilder {
        let runtime = &self.runtime;
        if let Some(fuel) = runtime.fuel_per_call {
            builder = builder.fuel_per_call(Some(fuel));
        }
        if let Some(bytes) = runtime.max_memory_bytes {
            builder = builder.max_memory_bytes(bytes);
        }
        if let Some(dir) = &runtime.cache_dir {
            builder = builder.cache_dir(dir);
        }
        if runtime.node_fuel {
            builder = builder.component_fuel(true);
        }
        builder
    }

    /// Where component `name`'s bytes are: its location, resolved as
    /// [`super::project::resolve`] does with its `build_command` and the
    /// `[build]` settings; `None` when the file does not declare it.
    pub fn resolve_component(
        &self,
        name: &str,
    ) -> Option<std::result::Result<super::project::Resolved, String>> {
        let location = self.components.get(name)?;
        let command = self.build_commands.get(name).map(String::as_str);
        Some(super::project::resolve(location, command, &self.build))
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

/// A component's location: `bundled:NAME` as written, anything else
/// (a `file://` URI or a path) resolved against the flow file's folder.
fn location_of(base: &Path, path: &str) -> String {
    match path.strip_prefix("bundled:") {
        Some(_) => path.to_string(),
        None => base
            .join(path.trim_start_matches("file://"))
            .display()
            .to_string(),
    }
}

/// A node as read, with whether its table gave a `config` (else its
/// component's `config` is the default).
struct ParsedNode {
    node: NodeSpec,
    config_given: bool,
}

/// `backpressure_policy`: this engine's queues block the producer; a
/// policy that drops elements is refused rather than ignored.
fn check_backpressure(
    backpressure: &RawBackpressure,
    text: &str,
    place: &str,
) -> std::result::Result<(), String> {
    if backpressure.default_queue_depth == Some(0) {
        return Err(format!("{place}: default_queue_depth must be at least 1"));
    }
    match &backpressure.backpressure_policy {
        Some(policy) if policy.get_ref() != "block-producer" => Err(format!(
            "{place}: backpressure_policy `{}` (line {}): this engine never drops an element \
             or fails a full queue; its queues block the producer (`block-producer`)",
            policy.get_ref(),
            line_of(text, policy.span().start)
        )),
        _ => Ok(()),
    }
}

/// A scheduling policy of the runtime's file: checked, then accepted (the
/// driver forwards each element depth-first, so nothing waits to be
/// scheduled by it).
fn check_scheduling(policy: &Spanned<String>, text: &str) -> std::result::Result<(), String> {
    if SCHEDULING_POLICIES.contains(&policy.get_ref().as_str()) {
        return Ok(());
    }
    Err(format!(
        "scheduling policy `{}` (line {}) is none of {}",
        policy.get_ref(),
        line_of(text, policy.span().start),
        SCHEDULING_POLICIES.join(", ")
    ))
}

fn check_priority(priority: i64, line: usize) -> std::result::Result<(), String> {
    if (1..=10).contains(&priority) {
        return Ok(());
    }
    Err(format!(
        "(line {line}) is {priority}: a priority is 1 (lowest) to 10 (highest)"
    ))
}

/// A memory size: bytes as an integer, or text with a unit (`16MiB`,
/// `512KiB`, `1GiB`, `4096B`; `K`, `M`, `G` too).
fn memory_size(value: &Spanned<toml::Value>, text: &str) -> std::result::Result<u64, String> {
    let line = line_of(text, value.span().start);
    let wrong = |why: String| format!("(line {line}): {why}");
    match value.get_ref() {
        toml::Value::Integer(bytes) if *bytes > 0 => Ok(*bytes as u64),
        toml::Value::String(size) => {
            let size = size.trim();
            let digits = size
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(size.len());
            let number: u64 = size[..digits]
                .parse()
                .map_err(|_| wrong(format!("`{size}` is no size (write e.g. \"16MiB\")")))?;
            let unit: u64 = match size[digits..].trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "k" | "kib" => 1 << 10,
                "m" | "mib" => 1 << 20,
                "g" | "gib" => 1 << 30,
                other => {
                    return Err(wrong(format!(
                        "unknown unit `{other}` in `{size}` (B, KiB, MiB or GiB)"
                    )))
                }
            };
            match number.checked_mul(unit) {
                Some(bytes) if bytes > 0 => Ok(bytes),
                _ => Err(wrong(format!("`{size}` is not a size above zero"))),
            }
        }
        other => Err(wrong(format!(
            "must be a size (\"16MiB\") or bytes, not {}",
            other.type_str()
        ))),
    }
}

/// One node of a flow file: a component in a role, or a connector. A
/// `component` that is a `file://` URI or a path (it names a `.wasm` or has
/// a `/`) declares that component under its own text.
fn node_of(
    name: &str,
    mut raw: RawNode,
    text: &str,
    base: &Path,
    components: &mut BTreeMap<String, String>,
) -> std::result::Result<ParsedNode, String> {
    let line = |value: &Spanned<toml::Value>| line_of(text, value.span().start);
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
        for key in ["component", "config", "fuel_budget", "max_memory"] {
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
        return Ok(ParsedNode {
            node: NodeSpec::connector(name, role, spec),
            config_given: false,
        });
    }
    let component = string("component")?.ok_or_else(|| {
        format!("node `{name}`: missing field `component` (or `connector` for a connector node)")
    })?;
    let config = string("config")?;
    let mut limits = NodeLimits::default();
    if let Some(value) = raw.remove("fuel_budget") {
        limits.fuel_per_call = Some(match value.get_ref() {
            toml::Value::Integer(fuel) if *fuel > 0 => *fuel as u64,
            other => {
                return Err(format!(
                "node `{name}`: `fuel_budget` (line {}) must be a positive integer, not {other}",
                line(&value)
            ))
            }
        });
    }
    if let Some(value) = raw.remove("max_memory") {
        limits.max_memory_bytes = Some(
            memory_size(&value, text).map_err(|e| format!("node `{name}`: `max_memory` {e}"))?,
        );
    }
    if let Some(value) = raw.remove("priority") {
        let toml::Value::Integer(priority) = value.get_ref() else {
            return Err(format!(
                "node `{name}`: `priority` (line {}) must be an integer 1 to 10",
                line(&value)
            ));
        };
        check_priority(*priority, line(&value))
            .map_err(|e| format!("node `{name}`: `priority` {e}"))?;
    }
    if let Some(reference) = component.strip_prefix("oci://") {
        return Err(format!(
            "node `{name}`: component `oci://{reference}`: registry references are not fetched \
             here; declare a [[component]] with the file's path"
        ));
    }
    let is_reference =
        component.starts_with("file://") || component.ends_with(".wasm") || component.contains('/');
    if is_reference {
        components
            .entry(component.clone())
            .or_insert_with(|| location_of(base, &component));
    } else if !components.contains_key(&component) {
        return Err(format!(
            "node `{name}` names component `{component}`, which no [[component]] declares"
        ));
    }
    let mut node = NodeSpec::component(name, &component, role, config.as_deref().unwrap_or(""));
    node.limits = limits;
    Ok(ParsedNode {
        node,
        config_given: config.is_some(),
    })
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
