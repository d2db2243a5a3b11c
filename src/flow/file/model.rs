//! [`FlowFile`]: a flow file parsed and checked, and what it is asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::checks::{
    check_backpressure, check_priority, check_scheduling, line_of, location_of, memory_size,
};
use super::nodes::node_of;
use super::schema::RawFile;
use crate::config::EngineConfigBuilder;
use crate::error::{Error, Result};
use crate::flow::project::BuildSettings;
use crate::flow::spec::{EdgeSpec, FlowSpec, PortRef, DEFAULT_QUEUE_DEPTH};

/// A parsed flow file: its components and flows.
///
/// ```
/// use torvyn_engine::flow::file::FlowFile;
///
/// let text = r#"
/// [[component]]
/// name = "upper"
/// path = "upper.wasm"
///
/// [flow.main.nodes.in]
/// connector = "stdin"
/// interface = "torvyn:streaming/source"
///
/// [flow.main.nodes.upper]
/// component = "upper"
/// interface = "torvyn:streaming/processor"
/// fuel_budget = 1000000
///
/// [flow.main.nodes.out]
/// connector = "stdout"
/// interface = "torvyn:streaming/sink"
///
/// [[flow.main.edges]]
/// from = { node = "in", port = "output" }
/// to = { node = "upper", port = "input" }
///
/// [[flow.main.edges]]
/// from = { node = "upper", port = "output" }
/// to = { node = "out", port = "input" }
///
/// [runtime]
/// worker_threads = 2
/// "#;
/// let file = FlowFile::parse(std::path::Path::new("/srv/flows/Torvyn.toml"), text)?;
/// let main = file.flow(None)?; // the only flow
/// assert_eq!(main.nodes.len(), 3);
/// assert_eq!(file.components["upper"], "/srv/flows/upper.wasm");
/// // Mistakes are named with their line:
/// let error = FlowFile::parse(std::path::Path::new("x.toml"), "[flow.main.nodes.a]\ncomponnt = 1").unwrap_err();
/// assert!(error.to_string().contains("componnt"));
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlowFile {
    /// Where it was read from (component paths are relative to its folder).
    pub path: PathBuf,
    /// Component name → where its bytes are: a `.wasm` file or a project
    /// directory (resolved against the file's folder; see
    /// [`crate::flow::file::FlowFile::resolve_component`]), or a `bundled:NAME` kept as written
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
///
/// ```
/// use torvyn_engine::flow::file::FlowFile;
///
/// let text = r#"
/// [[component]]
/// name = "upper"
/// path = "upper.wasm"
///
/// [flow.main.nodes.in]
/// connector = "stdin"
/// interface = "torvyn:streaming/source"
///
/// [flow.main.nodes.upper]
/// component = "upper"
/// interface = "torvyn:streaming/processor"
/// fuel_budget = 1000000
///
/// [flow.main.nodes.out]
/// connector = "stdout"
/// interface = "torvyn:streaming/sink"
///
/// [[flow.main.edges]]
/// from = { node = "in", port = "output" }
/// to = { node = "upper", port = "input" }
///
/// [[flow.main.edges]]
/// from = { node = "upper", port = "output" }
/// to = { node = "out", port = "input" }
///
/// [runtime]
/// worker_threads = 2
/// "#;
/// let file = FlowFile::parse(std::path::Path::new("/srv/flows/Torvyn.toml"), text)?;
/// assert_eq!(file.runtime.worker_threads, Some(2));
/// assert!(file.runtime.node_fuel); // a node has its own fuel_budget
/// // The engine the file asks for (here: fuel metering compiled in):
/// let config = file.engine_config(torvyn_engine::EngineConfig::builder()).build()?;
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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

    /// Where component `name`'s bytes are: its location (a file is itself;
    /// a project directory is the file its `build_command` names, else the
    /// newest `.wasm` of its cargo target folder), with the `[build]`
    /// settings; `None` when the file does not declare it.
    pub fn resolve_component(&self, name: &str) -> Option<Result<crate::flow::project::Resolved>> {
        let location = self.components.get(name)?;
        let command = self.build_commands.get(name).map(String::as_str);
        Some(
            crate::flow::project::resolve(location, command, &self.build).map_err(|detail| {
                Error::Unresolved {
                    component: name.to_string(),
                    detail,
                }
            }),
        )
    }

    /// Replaces `{name}` with `value` in every connector setting of every
    /// flow (`torvyn run --partition P` fills `{partition}`).
    pub fn substitute(&mut self, name: &str, value: &str) {
        for flow in self.flows.values_mut() {
            flow.substitute(name, value);
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
