//! Where a served flow keeps its stages' state between runs
//! ([`ServeOptions::state`](super::ServeOptions::state)).
//!
//! A stage whose component exports `torvyn:state` (`save`/`restore`) has
//! its state saved into the store when the service is told to stop, and
//! restored into its new instance (after `init`) when the flow starts
//! again. The inputs a saved state has absorbed are acknowledged once the
//! store has it, and only then: they are neither lost nor counted twice. At
//! the end of a stream (sources ended, idle, limit) the stages flush their
//! state downstream as before and the stored state is removed: it has been
//! emitted.
//!
//! The stores are connectors' ([`crate::connect::state`]): [`DirStore`] (a
//! file per stage, for one machine) and, with the `nats` feature, a
//! JetStream key-value bucket (`connect::nats::KvStateStore`), for workers
//! that may come back on another machine.

pub use crate::connect::state::{DirStore, StateStore};

/// Which stored state belongs to which stage of which flow.
///
/// ```
/// use std::sync::Arc;
/// use torvyn_engine::flow::{DirStore, ServeOptions, StateOptions};
/// use torvyn_engine::WasmtimeInstance;
///
/// let store = DirStore::open(std::env::temp_dir().join("torvyn-doc-state"))?;
/// let mut options: ServeOptions<WasmtimeInstance> = ServeOptions::default();
/// options.state = Some(StateOptions::new(Arc::new(store), "orders-partition-0"));
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct StateOptions {
    /// Where states go.
    pub store: std::sync::Arc<dyn StateStore>,
    /// Keys are `SCOPE.NODE`; two services keeping different state (two
    /// partitions, two workers of one stream) need different scopes.
    /// Empty: the flow's name.
    pub scope: String,
}

impl StateOptions {
    /// States in `store`, under keys `SCOPE.NODE` (an empty `scope`: the
    /// flow's name).
    pub fn new(store: std::sync::Arc<dyn StateStore>, scope: impl Into<String>) -> StateOptions {
        StateOptions {
            store,
            scope: scope.into(),
        }
    }
}

impl std::fmt::Debug for StateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateOptions")
            .field("store", &self.store.describe())
            .field("scope", &self.scope)
            .finish()
    }
}

/// The key of `node`'s state in `scope`: only characters every store takes
/// (a NATS key's `[-/_=.A-Za-z0-9]`, less `/` for file names); any other
/// becomes `_`.
pub(crate) fn state_key(scope: &str, node: &str) -> String {
    format!("{scope}.{node}")
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '=' | '.' => c,
            _ => '_',
        })
        .collect()
}
