//! [`Capabilities`]: an instance's granted capability names and the log
//! of what its guest asked (the state `capability-query` serves).

use std::collections::BTreeSet;

/// Capability queries kept per instance; later ones are answered, not kept.
const MAX_LOGGED_QUERIES: usize = 1024;

/// An instance's capabilities: the granted names and the queries made.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::ComponentInvoker;
///
/// // This source asks the host about capabilities to report its lifecycle.
/// let source = engine.compile("source", &torvyn_fixtures::counting_source())?;
/// let mut instance = engine.instantiate(&source)?;
/// instance.teardown()?;
/// assert_eq!(instance.host().capability_queries(), ["fixture:teardown"]);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Capabilities {
    granted: BTreeSet<String>,
    queries: Vec<String>,
}

impl Capabilities {
    pub(crate) fn new(granted: BTreeSet<String>) -> Capabilities {
        Capabilities {
            granted,
            queries: Vec::new(),
        }
    }

    /// The capability names the guest asked about, in order (the first
    /// 1024), whether granted or not.
    pub fn queries(&self) -> &[String] {
        &self.queries
    }

    /// Whether capability `name` is granted.
    pub(crate) fn granted(&self, name: &str) -> bool {
        self.granted.contains(name)
    }

    /// Logs a query: `kept` is the name cut to
    /// [`MAX_CAPABILITY_NAME_BYTES`], `cut_off` says whether it was cut.
    pub(crate) fn log(&mut self, kept: &str, cut_off: bool) {
        if self.queries.len() < MAX_LOGGED_QUERIES {
            self.queries.push(if cut_off {
                format!("{kept}…")
            } else {
                kept.to_string()
            });
        }
    }
}
