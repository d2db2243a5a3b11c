//! The CLI's one error type: what a failed command prints and its exit code.

use crate::bundled;

/// A failed command: what the process prints and its exit code.
#[derive(Debug)]
#[non_exhaustive]
pub enum CliError {
    /// A component file could not be read (exit code 3).
    Load(LoadError),
    /// The engine or a component failed (exit code 1).
    Engine(torvyn_engine::Error),
    /// Writing the report failed (exit code 1).
    Output(std::io::Error),
    /// The async runtime could not run the flows (exit code 1).
    Runtime(String),
    /// A benchmark could not run (exit code 1): e.g. `--counts` without
    /// valgrind.
    Bench(String),
    /// The command line asks for something impossible (exit code 2).
    Usage(String),
    /// `torvyn check` found this many problems (exit code 1; each was
    /// printed with its place).
    Checked(usize),
    /// A component file was read but is no component the engine can
    /// compile (exit code 1): named by the path the user gave.
    Component {
        /// The path or `bundled:<name>` as given.
        file: String,
        /// The engine's error.
        error: torvyn_engine::Error,
    },
}

impl CliError {
    /// The process exit code: 1 engine or component failure, 3 unreadable input.
    /// (Usage errors exit with 2, from the argument parser.)
    pub fn exit_code(&self) -> i32 {
        match self {
            // Read, but no component: a component failure, as a compile error is.
            CliError::Load(LoadError::NotComponent { .. }) => 1,
            CliError::Load(_) => 3,
            CliError::Engine(_)
            | CliError::Checked(_)
            | CliError::Component { .. }
            | CliError::Output(_)
            | CliError::Runtime(_)
            | CliError::Bench(_) => 1,
            CliError::Usage(_) => 2,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Load(e) => e.fmt(f),
            CliError::Engine(e) => e.fmt(f),
            CliError::Component { file, error } => write!(f, "{file}: {error}"),
            CliError::Output(e) => write!(f, "cannot write output: {e}"),
            CliError::Runtime(e) | CliError::Usage(e) | CliError::Bench(e) => f.write_str(e),
            CliError::Checked(1) => f.write_str("1 problem found"),
            CliError::Checked(n) => write!(f, "{n} problems found"),
        }
    }
}

impl CliError {
    /// The engine's error behind this one, if any.
    pub fn engine_error(&self) -> Option<&torvyn_engine::Error> {
        match self {
            CliError::Engine(e) | CliError::Component { error: e, .. } => Some(e),
            _ => None,
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Load(e) => e.source(),
            CliError::Engine(e) | CliError::Component { error: e, .. } => {
                std::error::Error::source(e)
            }
            CliError::Output(e) => e.source(),
            CliError::Runtime(_)
            | CliError::Usage(_)
            | CliError::Bench(_)
            | CliError::Checked(_) => None,
        }
    }
}

impl From<torvyn_engine::Error> for CliError {
    fn from(e: torvyn_engine::Error) -> Self {
        CliError::Engine(e)
    }
}

impl From<LoadError> for CliError {
    fn from(e: LoadError) -> Self {
        CliError::Load(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e)
    }
}

/// A component argument that could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Read {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No bundled component has this name.
    UnknownBundled(String),
    /// The file is a core module that cannot be made a component.
    NotComponent {
        /// The path given.
        path: String,
        /// What it is instead.
        detail: String,
    },
    /// A component project directory with nothing built in it (or a build
    /// output that is not there): what to run.
    Project(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Read { path, .. } => write!(f, "cannot read {path}"),
            LoadError::NotComponent { path, detail } => write!(f, "{path}: {detail}"),
            LoadError::Project(detail) => f.write_str(detail),
            LoadError::UnknownBundled(name) => {
                let names = bundled::names();
                write!(
                    f,
                    "no bundled component `{name}` (bundled: {})",
                    names.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Read { source, .. } => Some(source),
            LoadError::UnknownBundled(_)
            | LoadError::NotComponent { .. }
            | LoadError::Project(_) => None,
        }
    }
}
