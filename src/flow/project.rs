//! A component as its author's project gives it: a `[[component]] path`
//! that is the component's project directory resolves to the `.wasm` its
//! build wrote (the runtime's example projects are laid out this way:
//! `components/NAME/Cargo.toml`, built into
//! `components/NAME/target/wasm32-wasip2/release/NAME.wasm`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The wasm32 targets a project's build may have written to.
const WASM_TARGETS: &[&str] = &["wasm32-wasip2", "wasm32-wasip1", "wasm32-unknown-unknown"];

/// A flow file's `[build]` settings: how its components' projects build.
///
/// ```
/// use torvyn_engine::flow::file::FlowFile;
///
/// # let a_flow = "[flow.main.nodes.in]\nconnector = \"stdin\"\ninterface = \"torvyn:streaming/source\"\n\
/// #     [flow.main.nodes.out]\nconnector = \"stdout\"\ninterface = \"torvyn:streaming/sink\"\n\
/// #     [[flow.main.edges]]\nfrom = { node = \"in\", port = \"output\" }\nto = { node = \"out\", port = \"input\" }\n";
/// let text = format!("[build]\nrelease = false\n{a_flow}");
/// let file = FlowFile::parse(std::path::Path::new("Torvyn.toml"), &text)?;
/// assert!(!file.build.release);
/// assert_eq!(file.build.target, "wasm32-wasip2"); // the default
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildSettings {
    /// The wasm32 target the default build command builds for (`target`;
    /// default `wasm32-wasip2`, the runtime's).
    pub target: String,
    /// Whether it builds for release (`release`; default true).
    pub release: bool,
    /// Added to the default build command (`extra_args`).
    pub extra_args: Vec<String>,
}

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings {
            target: "wasm32-wasip2".into(),
            release: true,
            extra_args: Vec::new(),
        }
    }
}

/// Where a component's bytes are, and how that was decided.
///
/// ```
/// use torvyn_engine::flow::file::FlowFile;
///
/// let dir = std::env::temp_dir();
/// # let a_flow = "[flow.main.nodes.in]\nconnector = \"stdin\"\ninterface = \"torvyn:streaming/source\"\n\
/// #     [flow.main.nodes.out]\nconnector = \"stdout\"\ninterface = \"torvyn:streaming/sink\"\n\
/// #     [[flow.main.edges]]\nfrom = { node = \"in\", port = \"output\" }\nto = { node = \"out\", port = \"input\" }\n";
/// let text = format!("[[component]]\nname = \"upper\"\npath = \"upper.wasm\"\n{a_flow}");
/// let file = FlowFile::parse(&dir.join("Torvyn.toml"), &text)?;
/// let resolved = file.resolve_component("upper").unwrap()?;
/// assert_eq!(resolved.file, dir.join("upper.wasm").display().to_string());
/// assert!(resolved.note.is_none()); // set when one of several builds was chosen
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resolved {
    /// The `.wasm` file (or the location as given, for `bundled:NAME`).
    pub file: String,
    /// Said when there was a choice: which file, among which.
    pub note: Option<String>,
}

/// Resolves a component's location: a file is itself; a project directory
/// is the file its `build_command` names (its last `.wasm` word), else the
/// newest `.wasm` in its cargo target folder (`target/TARGET/PROFILE/` for
/// every wasm32 target and both profiles; named after the package when
/// any is). An error names the directory and the command that builds it.
pub fn resolve(
    location: &str,
    build_command: Option<&str>,
    build: &BuildSettings,
) -> Result<Resolved, String> {
    let as_given = || Resolved {
        file: location.to_string(),
        note: None,
    };
    let path = Path::new(location);
    if location.starts_with("bundled:") || !path.is_dir() {
        // A file, or nothing there: reading it names the problem.
        return Ok(as_given());
    }
    if let Some(output) = build_command.and_then(named_output) {
        let file = path.join(output);
        if file.is_file() {
            return Ok(Resolved {
                file: file.display().to_string(),
                note: None,
            });
        }
        return Err(format!(
            "{location}: its build_command `{}` writes {}, which is not there: build it \
             (`torvyn run --build`, or the command in that directory)",
            build_command.unwrap_or_default(),
            file.display()
        ));
    }
    let package = package_name(path);
    let candidates = candidates(path, package.as_deref());
    let Some(newest) = candidates.first() else {
        let command = build_command
            .map(str::to_string)
            .unwrap_or_else(|| default_build_command(build));
        let why = if path.join("Cargo.toml").is_file() || build_command.is_some() {
            format!("build it with `{command}` there, or `torvyn run --build`")
        } else {
            "it has no Cargo.toml and its [[component]] no build_command: point `path` at \
             the .wasm file"
                .to_string()
        };
        return Err(format!(
            "{location} is a directory with no built component (no .wasm under \
             target/{{{}}}/{{release,debug}}/): {why}",
            WASM_TARGETS.join(",")
        ));
    };
    let note = (candidates.len() > 1).then(|| {
        format!(
            "{location}: chose {} (the newest of {}: {})",
            newest.display(),
            candidates.len(),
            candidates
                .iter()
                .skip(1)
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    Ok(Resolved {
        file: newest.display().to_string(),
        note,
    })
}

/// The command that builds a Rust component project, as the runtime's
/// `torvyn build` runs it, with the `[build]` settings.
pub fn default_build_command(build: &BuildSettings) -> String {
    let mut command = String::from("cargo component build");
    if build.release {
        command.push_str(" --release");
    }
    command.push_str(" --target ");
    command.push_str(&build.target);
    for arg in &build.extra_args {
        command.push(' ');
        command.push_str(arg);
    }
    command
}

/// The output a build command names: its last word ending in `.wasm`.
fn named_output(command: &str) -> Option<&str> {
    command
        .split_whitespace()
        .rev()
        .map(|word| word.trim_matches(|c| c == '"' || c == '\''))
        .find(|word| word.ends_with(".wasm"))
}

/// `[package] name` of the directory's Cargo.toml, as cargo names its
/// output (`-` becomes `_`).
fn package_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    let manifest: toml::Table = toml::from_str(&text).ok()?;
    let name = manifest.get("package")?.get("name")?.as_str()?;
    Some(name.replace('-', "_"))
}

/// The `.wasm` files a build may have written, best first: those named
/// after the package over any other, then the newest.
fn candidates(dir: &Path, package: Option<&str>) -> Vec<PathBuf> {
    let mut found: Vec<(bool, SystemTime, PathBuf)> = Vec::new();
    for target in WASM_TARGETS {
        for profile in ["release", "debug"] {
            let folder = dir.join("target").join(target).join(profile);
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let file = entry.path();
                if file.extension().and_then(|e| e.to_str()) != Some("wasm") {
                    continue;
                }
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                let named = package.is_some_and(|package| {
                    file.file_stem().and_then(|s| s.to_str()) == Some(package)
                });
                found.push((named, modified, file));
            }
        }
    }
    // A package's own output, when there is one, is what it builds: other
    // .wasm files beside it are then not candidates.
    if found.iter().any(|(named, _, _)| *named) {
        found.retain(|(named, _, _)| *named);
    }
    found.sort_by_key(|(_, modified, _)| std::cmp::Reverse(*modified));
    found.into_iter().map(|(_, _, file)| file).collect()
}
