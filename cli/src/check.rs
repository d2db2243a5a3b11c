//! `torvyn check FLOW.toml`: everything `torvyn run` would refuse, found
//! without running a stage (no `init`, no call): the file, every
//! component's location, its compilation, the export of every node's role
//! (and whether it is called typed or dynamic), imports nobody serves,
//! every connector's settings, and the graph.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use torvyn_engine::connect::Connectors;
use torvyn_engine::flow::file::FlowFile;
use torvyn_engine::{
    CallPath, CompiledComponent, EngineConfig, ImportProvider, WasmEngine, WasmtimeEngine,
};

use crate::error::CliError;
use crate::load;
use crate::output::{to_line, CheckDocument, CheckedNodeDocument, Format, ProblemDocument, SCHEMA};

/// What `check` found: the problems, each with its place, and the nodes.
struct Findings {
    problems: Vec<ProblemDocument>,
    nodes: Vec<CheckedNodeDocument>,
}

impl Findings {
    fn problem(&mut self, place: impl Into<String>, problem: impl Into<String>) {
        self.problems.push(ProblemDocument {
            place: place.into(),
            problem: problem.into(),
        });
    }
}

/// `torvyn check`: prints each problem with its place (or one JSON
/// document); fails (exit 1) when there is any.
pub fn check(
    file: &Path,
    flow: Option<&str>,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let findings = findings(file, flow);
    let count = findings.problems.len();
    match format {
        Format::Json => {
            let document = CheckDocument {
                kind: "check",
                schema: SCHEMA,
                file: file.display().to_string(),
                ok: count == 0,
                problems: findings.problems,
                nodes: findings.nodes,
            };
            writeln!(out, "{}", to_line(&document))?;
        }
        Format::Text => {
            for problem in &findings.problems {
                writeln!(
                    out,
                    "{}: {}: {}",
                    file.display(),
                    problem.place,
                    problem.problem
                )?;
            }
            for node in &findings.nodes {
                writeln!(
                    out,
                    "flow {:<12} node {:<16} {:<10} {:<8} {}",
                    node.flow,
                    node.node,
                    node.role,
                    node.path.unwrap_or("-"),
                    node.file.as_deref().unwrap_or(&node.component),
                )?;
            }
            if count == 0 {
                writeln!(out, "ok: {} nodes checked", findings.nodes.len())?;
            }
        }
    }
    match count {
        0 => Ok(()),
        n => Err(CliError::Checked(n)),
    }
}

fn findings(path: &Path, only: Option<&str>) -> Findings {
    let mut found = Findings {
        problems: Vec::new(),
        nodes: Vec::new(),
    };
    // The file as a whole (syntax, keys, every flow's graph): the first
    // mistake stops the reading, as it would stop `run`.
    let file = match FlowFile::read(path) {
        Ok(file) => file,
        Err(error) => {
            found.problem("file", error.to_string());
            return found;
        }
    };
    let flows: Vec<_> = match only {
        Some(name) => match file.flow(Some(name)) {
            Ok(flow) => vec![flow.clone()],
            Err(error) => {
                found.problem("file", error.to_string());
                return found;
            }
        },
        None => file.flows.values().cloned().collect(),
    };
    let engine = match file
        .engine_config(EngineConfig::builder())
        .build()
        .and_then(WasmtimeEngine::new)
    {
        Ok(engine) => engine,
        Err(error) => {
            found.problem("[runtime]", error.to_string());
            return found;
        }
    };
    // Each component once: where it is, then whether it compiles.
    let mut compiled: BTreeMap<String, Option<(String, CompiledComponent)>> = BTreeMap::new();
    let connectors = Connectors::builtin();
    for flow in &flows {
        for node in &flow.nodes {
            let place = format!("flow `{}`, node `{}`", flow.name, node.name);
            if let Some(connector) = &node.connector {
                if let Err(error) = connectors.check(&node.name, node.role, connector) {
                    found.problem(&place, error.to_string());
                }
                found.nodes.push(CheckedNodeDocument {
                    flow: flow.name.clone(),
                    node: node.name.clone(),
                    role: node.role.role(),
                    component: node.component.clone(),
                    file: None,
                    path: Some("connector"),
                });
                continue;
            }
            let component = compiled
                .entry(node.component.clone())
                .or_insert_with(|| load(&file, &node.component, &engine, &mut found))
                .clone();
            let mut checked = CheckedNodeDocument {
                flow: flow.name.clone(),
                node: node.name.clone(),
                role: node.role.role(),
                component: node.component.clone(),
                file: None,
                path: None,
            };
            if let Some((location, component)) = component {
                checked.file = Some(location);
                let export = component
                    .exports()
                    .iter()
                    .find(|export| export.interface == Some(node.role));
                match export.map(|export| &export.path) {
                    Some(CallPath::Typed) => checked.path = Some("typed"),
                    Some(CallPath::Dynamic(_)) => checked.path = Some("dynamic"),
                    Some(CallPath::ByNameOnly(why)) => found.problem(
                        &place,
                        format!(
                            "component `{}` exports {} but it cannot be called as one: {why}",
                            node.component,
                            node.role.wit_name()
                        ),
                    ),
                    // A path a newer engine added: callable, by its own name.
                    Some(_) => checked.path = Some("other"),
                    None => found.problem(
                        &place,
                        format!(
                            "component `{}` does not export {} (the node's interface)",
                            node.component,
                            node.role.wit_name()
                        ),
                    ),
                }
                if let Err(error) = engine.with_node_limits(&component, &node.limits) {
                    found.problem(&place, format!("its limits: {error}"));
                }
            }
            found.nodes.push(checked);
        }
    }
    found
}

/// Finds, reads and compiles component `name`; its problems are recorded
/// under `component NAME`.
fn load(
    file: &FlowFile,
    name: &str,
    engine: &WasmtimeEngine,
    found: &mut Findings,
) -> Option<(String, CompiledComponent)> {
    let place = format!("component `{name}`");
    let resolved = match file.resolve_component(name)? {
        Ok(resolved) => resolved,
        Err(torvyn_engine::Error::Unresolved { detail, .. }) => {
            found.problem(&place, detail);
            return None;
        }
        Err(other) => {
            found.problem(&place, other.to_string());
            return None;
        }
    };
    let bytes = match load::load(&resolved.file) {
        Ok((_, bytes)) => bytes,
        Err(error) => {
            let cause = std::error::Error::source(&error)
                .map(|cause| format!(": {cause}"))
                .unwrap_or_default();
            found.problem(&place, format!("{error}{cause}"));
            return None;
        }
    };
    let component = match load::compile_bytes(engine, name, &resolved.file, &bytes) {
        Ok(component) => component,
        Err(error) => {
            found.problem(&place, error.to_string());
            return None;
        }
    };
    for (import, provider) in component.import_providers() {
        if provider == ImportProvider::Missing {
            found.problem(
                &place,
                format!("imports `{import}`, which no host interface serves"),
            );
        }
    }
    Some((resolved.file, component))
}
