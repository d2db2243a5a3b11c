//! A flow file's component projects: `torvyn run --build` runs their build
//! commands, and every component location (a `.wasm`, `bundled:NAME`, or a
//! project directory) is resolved to the file that is loaded.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use torvyn_engine::flow::file::FlowFile;
use torvyn_engine::FlowSpec;

use crate::error::CliError;
use crate::error::LoadError;

/// Runs the `build_command` of every declared component that has one, in
/// the component's directory (its `path` when that is a directory, else
/// the file's folder) through `sh -c`; its output goes to stderr. A failed
/// build names the component, the command and its exit status. (A Cargo
/// project without one is not built here: that needs the runtime's
/// toolchain, `cargo component`; the error about an unbuilt directory
/// names the command.)
pub fn build_all(file: &FlowFile, log: &mut dyn Write) -> Result<(), CliError> {
    for (name, command) in &file.build_commands {
        let Some(location) = file.components.get(name) else {
            continue;
        };
        let path = Path::new(location);
        let dir = match path.is_dir() {
            true => path,
            false => file.path.parent().unwrap_or(Path::new(".")),
        };
        let location = dir.display();
        let _ = writeln!(log, "building component `{name}` in {location}: {command}");
        let status = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir)
            .stdout(std::io::stderr())
            .status()
            .map_err(|e| {
                CliError::Runtime(format!(
                    "component `{name}`: cannot run its build `{command}` in {location}: {e}"
                ))
            })?;
        if !status.success() {
            return Err(CliError::Runtime(format!(
                "component `{name}`: its build `{command}` in {location} failed ({status})"
            )));
        }
    }
    Ok(())
}

/// The file each component of `spec` is loaded from (name → file), with a
/// note on `log` for every choice among several builds.
pub fn resolve_all(
    file: &FlowFile,
    spec: &FlowSpec,
    log: &mut dyn Write,
) -> Result<BTreeMap<String, String>, CliError> {
    let mut resolved = BTreeMap::new();
    for node in &spec.nodes {
        if resolved.contains_key(&node.component) {
            continue;
        }
        let Some(found) = file.resolve_component(&node.component) else {
            continue;
        };
        let found = found.map_err(|error| CliError::Load(LoadError::Project(error.to_string())))?;
        if let Some(note) = &found.note {
            let _ = writeln!(log, "note: component `{}`: {note}", node.component);
        }
        resolved.insert(node.component.clone(), found.file);
    }
    Ok(resolved)
}
