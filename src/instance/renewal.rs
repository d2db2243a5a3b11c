//! What recycling needs of an instance: how to make it again (the engine's
//! configuration and totals, the config of its `init`), and its counts.

use std::sync::Arc;

use crate::config::EngineConfig;
use crate::host::EngineTotals;

/// What an instance needs to be replaced by a fresh one of its component
/// (`Limits::recycle_after_elements`, `recycle_at_memory_percent`), and
/// what it counts of that.
pub(super) struct Renewal {
    pub(super) config: Arc<EngineConfig>,
    pub(super) totals: Arc<EngineTotals>,
    /// The config of the last successful `init`: a fresh instance gets it.
    pub(super) init_config: Option<String>,
    /// Element calls (`process`, `pull`, `push`, `evaluate`, `route`,
    /// `ingest`) this instance started.
    pub(super) elements: u64,
    /// Times the instance was replaced by a fresh one.
    pub(super) recycled: u64,
}

impl Renewal {
    pub(super) fn new(config: Arc<EngineConfig>, totals: Arc<EngineTotals>) -> Renewal {
        Renewal {
            config,
            totals,
            init_config: None,
            elements: 0,
            recycled: 0,
        }
    }
}
