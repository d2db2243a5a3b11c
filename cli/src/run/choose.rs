//! Which flow `torvyn run` runs, with which engine and components.

use std::collections::BTreeMap;

use torvyn_engine::flow::file::FlowFile;
use torvyn_engine::flow::NodeSpec;
use torvyn_engine::{CompiledComponent, EngineConfig, FlowSpec, Interface, WasmtimeEngine};

use super::RunArgs;
use crate::commands::{engine_with, wasi_grants};
use crate::error::CliError;
use crate::load;

/// What `torvyn run` runs: the flow, where its components are, and the
/// file it came from (its `[runtime]` settings), if any.
pub(crate) struct Chosen {
    pub(crate) spec: FlowSpec,
    pub(crate) locations: BTreeMap<String, String>,
    pub(crate) file: Option<FlowFile>,
}

impl Chosen {
    pub(super) fn worker_threads(&self) -> Option<usize> {
        self.file.as_ref().and_then(|f| f.runtime.worker_threads)
    }
}

/// The flow to run and its components (name → location), from the file or
/// from the linear flags.
pub(crate) fn flow_of(args: &RunArgs) -> Result<Chosen, CliError> {
    if let Some(path) = &args.flow_file {
        if args.source.is_some() || args.sink.is_some() || !args.processors.is_empty() {
            return Err(CliError::Usage(
                "give either a flow file or --source/--processor/--sink, not both".into(),
            ));
        }
        if !args.configs.is_empty() {
            return Err(CliError::Usage(
                "--config is for the linear shortcut; a flow file gives each node its config"
                    .into(),
            ));
        }
        // With --partitions the flow stays as written: each partition's
        // runner fills `{partition}` in its own copy.
        let file = load::flow_file(path, args.partition.as_deref())?;
        if args.build {
            crate::project::build_all(&file, &mut std::io::stderr())?;
        }
        let (spec, locations) = load::flow_in(&file, args.flow.as_deref(), &mut std::io::stderr())?;
        let named = spec.nodes.iter().find_map(|node| {
            let connector = node.connector.as_ref()?;
            let (key, _) = connector
                .settings
                .iter()
                .find(|(_, value)| value.contains("{partition}"))?;
            Some((node.name.clone(), key.clone()))
        });
        match (args.partitions, named) {
            (Some(_), None) => {
                return Err(CliError::Usage(format!(
                    "--partitions: no connector setting of {} names {{partition}}: every \
                     partition would read the same input",
                    path.display()
                )))
            }
            (None, Some((node, key))) => {
                return Err(CliError::Usage(format!(
                    "node `{node}`: setting `{key}` names {{partition}}: give --partition"
                )))
            }
            _ => {}
        }
        return Ok(Chosen {
            spec,
            locations,
            file: Some(file),
        });
    }
    let (Some(source), Some(sink)) = (&args.source, &args.sink) else {
        return Err(CliError::Usage(
            "give a flow file, or at least --source and --sink".into(),
        ));
    };
    let stages: Vec<(String, &String, Interface)> =
        std::iter::once(("source".to_string(), source, Interface::Source))
            .chain(
                args.processors
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("processor-{}", i + 1), p, Interface::Processor)),
            )
            .chain(std::iter::once(("sink".to_string(), sink, Interface::Sink)))
            .collect();
    let config = |i: usize| -> Result<String, CliError> {
        match args.configs.len() {
            0 => Ok(String::new()),
            1 => Ok(args.configs[0].clone()),
            n if n == stages.len() => Ok(args.configs[i].clone()),
            n => Err(CliError::Usage(format!(
                "{n} --config values for {} stages: give one for all, or one per stage",
                stages.len()
            ))),
        }
    };
    let mut nodes = Vec::new();
    let mut components = BTreeMap::new();
    for (i, (name, location, role)) in stages.iter().enumerate() {
        components.insert(name.clone(), (*location).clone());
        nodes.push(NodeSpec::component(name, name, *role, &config(i)?));
    }
    let sink = nodes.pop().expect("the linear shortcut has a sink");
    let source = nodes.remove(0);
    let spec = FlowSpec::linear(source, nodes, sink);
    if args.build {
        return Err(CliError::Usage(
            "--build is for a flow file's component projects".into(),
        ));
    }
    Ok(Chosen {
        spec,
        locations: components,
        file: None,
    })
}

/// The engine, with the flow file's `[runtime]` settings and the command
/// line's WASI grants and limits (over the file's).
pub(crate) fn engine(args: &RunArgs, file: Option<&FlowFile>) -> Result<WasmtimeEngine, CliError> {
    let mut config = EngineConfig::builder().wasi_inherit_stdio(args.inherit_stdio);
    if let Some(file) = file {
        config = file.engine_config(config);
    }
    engine_with(&args.limits, wasi_grants(config, &args.env, &args.dirs)?)
}

/// Compiles each component the flow uses, named as the flow names it.
pub(crate) fn compile_all(
    engine: &WasmtimeEngine,
    spec: &FlowSpec,
    locations: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, CompiledComponent>, CliError> {
    let mut compiled = BTreeMap::new();
    for node in &spec.nodes {
        if compiled.contains_key(&node.component) {
            continue;
        }
        // A component the file does not declare is named by the flow's own error.
        let Some(location) = locations.get(&node.component) else {
            continue;
        };
        let (_, bytes) = load::load(location)?;
        compiled.insert(
            node.component.clone(),
            load::compile_bytes(engine, &node.component, location, &bytes)?,
        );
    }
    Ok(compiled)
}

/// Whether fuel is counted: engine-wide or a node's own `fuel_budget`
/// (else the report says "not metered", not 0).
pub(super) fn metered(engine: &WasmtimeEngine, spec: &FlowSpec) -> bool {
    engine.config().limits().fuel_per_call.is_some()
        || spec
            .nodes
            .iter()
            .any(|node| node.limits.fuel_per_call.is_some())
}
