//! Limits that contain untrusted components: the engine's for every
//! instance ([`Limits`]), and a flow node's own over them ([`NodeLimits`]).

use std::time::Duration;

/// Limits applied to every instance of a component.
///
/// ```
/// use std::time::Duration;
/// use torvyn_engine::{EngineConfig, Limits};
///
/// // Every instance of every component: through the builder.
/// let config = EngineConfig::builder()
///     .call_deadline(Some(Duration::from_millis(100)))
///     .max_memory_bytes(16 << 20)
///     .build()?;
/// assert_eq!(config.limits().max_memory_bytes, 16 << 20);
///
/// // One component's own: start from the defaults (or its current limits)
/// // and set fields; see `CompiledComponent::with_limits`.
/// let mut limits = Limits::default();
/// limits.recycle_after_elements = Some(10_000);
/// assert_eq!(limits.call_deadline, Some(Duration::from_secs(5)));
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Fuel given to each call (refilled before every call); `None` = unmetered.
    pub fuel_per_call: Option<u64>,
    /// Wall-clock time a call may run; `None` = no deadline.
    pub call_deadline: Option<Duration>,
    /// Largest linear memory an instance may grow to, in bytes.
    pub max_memory_bytes: u64,
    /// Largest table an instance may grow to, in elements.
    pub max_table_elements: usize,
    /// Bytes of host buffers an instance's guest may hold at once.
    pub buffer_budget_bytes: u64,
    /// Core instances one component instance may create (its modules, shims
    /// and adapters).
    pub max_core_instances: usize,
    /// Linear memories one instance may have, over all its core modules.
    pub max_memories: usize,
    /// Tables one instance may have, over all its core modules.
    pub max_tables: usize,
    /// Component-model handles (resources the guest owns or borrows) live
    /// at once in one instance.
    pub max_handles: usize,
    /// Bytes the guest may pass to the host in one transfer: the strings and
    /// lists of one host-function call, or the result of one export call.
    /// wasmtime refuses larger transfers before the host allocates them.
    pub max_transfer_bytes: usize,
    /// Bytes of state a stage's `save` may return (`torvyn:state`): more is
    /// an error naming this limit. (The state is lifted once, within
    /// `max_transfer_bytes`, and checked before anything keeps it.)
    pub max_state_bytes: usize,
    /// Replace the instance by a fresh one after this many elements (calls
    /// of `process`, `pull`, `push`, `evaluate`, `route`, `ingest`), between
    /// two of them: made and `init`ed with the config the old one got, its
    /// state carried with `torvyn:state` when the component exports it,
    /// the old one torn down. For guests that keep memory they should not
    /// (a toolchain's leak); `None`: never.
    pub recycle_after_elements: Option<u64>,
    /// Replace the instance the same way once its linear memory reaches
    /// this share of `max_memory_bytes` (1 to 100), before it is refused
    /// memory; `None`: never.
    pub recycle_at_memory_percent: Option<u8>,
}

impl Limits {
    /// What is wrong with `fuel_per_call`, if anything (checked by
    /// [`EngineConfigBuilder::build`] and
    /// [`CompiledComponent::with_limits`](crate::CompiledComponent::with_limits)).
    pub(crate) fn problem(&self) -> Option<&'static str> {
        if self.fuel_per_call == Some(0) {
            return Some("fuel_per_call must be positive (use None to disable metering)");
        }
        if self.recycle_after_elements == Some(0) {
            return Some("recycle_after_elements must be positive (use None not to recycle)");
        }
        if self
            .recycle_at_memory_percent
            .is_some_and(|percent| !(1..=100).contains(&percent))
        {
            return Some("recycle_at_memory_percent must be 1 to 100");
        }
        None
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel_per_call: None,
            call_deadline: Some(Duration::from_secs(5)),
            max_memory_bytes: 64 << 20,
            max_table_elements: 10_000,
            buffer_budget_bytes: 64 << 20,
            max_core_instances: 100,
            max_memories: 16,
            max_tables: 32,
            max_handles: 10_000,
            max_transfer_bytes: 64 << 20,
            max_state_bytes: 16 << 20,
            recycle_after_elements: None,
            recycle_at_memory_percent: None,
        }
    }
}

/// One instance's own limits, each over the engine's [`Limits`] when set:
/// what a flow node asks for its component (a flow file's `fuel_budget` and
/// `max_memory`), applied by
/// [`WasmEngine::with_node_limits`](crate::WasmEngine::with_node_limits).
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// # // A processor that drops every element, written in WAT against the
/// # // contract's canonical ABI and made a component with the contract's WIT.
/// # const DROP: &str = r#"(module
/// #   (import "torvyn:streaming/types@0.1.0" "[resource-drop]buffer" (func $drop_buffer (param i32)))
/// #   (import "torvyn:streaming/types@0.1.0" "[resource-drop]flow-context" (func $drop_context (param i32)))
/// #   (memory (export "memory") 1)
/// #   (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
/// #   (func (export "torvyn:streaming/processor@0.1.0#process")
/// #     (param i64 i64 i32 i32) (param $payload i32) (param $context i32) (result i32)
/// #     (call $drop_buffer (local.get $payload))
/// #     (call $drop_context (local.get $context))
/// #     (i32.store8 (i32.const 64) (i32.const 0))  ;; ok(
/// #     (i32.store8 (i32.const 72) (i32.const 1))  ;;    drop)
/// #     (i32.const 64)))"#;
/// # let bytes = torvyn_fixtures::build("torvyn:streaming/transform@0.1.0", DROP).unwrap();
/// use torvyn_engine::NodeLimits;
///
/// let component = engine.compile("drop", &bytes)?;
/// let mut node = NodeLimits::default();
/// assert!(!node.is_set());
/// node.max_memory_bytes = Some(1 << 20);
/// let small = engine.with_node_limits(&component, &node)?;
/// assert_eq!(small.limits().max_memory_bytes, 1 << 20);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeLimits {
    /// Fuel for each call of this node (the flow file's `fuel_budget`).
    pub fuel_per_call: Option<u64>,
    /// Largest linear memory of this node's instance, in bytes (the flow
    /// file's `max_memory`).
    pub max_memory_bytes: Option<u64>,
    /// [`Limits::recycle_after_elements`] for this node (the flow file's
    /// `recycle_after_elements`).
    pub recycle_after_elements: Option<u64>,
    /// [`Limits::recycle_at_memory_percent`] for this node (the flow file's
    /// `recycle_at_memory_percent`).
    pub recycle_at_memory_percent: Option<u8>,
}

impl NodeLimits {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.fuel_per_call.is_some()
            || self.max_memory_bytes.is_some()
            || self.recycle_after_elements.is_some()
            || self.recycle_at_memory_percent.is_some()
    }
}
