//! Counters: bytes copied per instance, totals over an engine's instances.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes copied across the guest boundary by the host's buffer functions.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::{ComponentInvoker, Element};
///
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// let mut instance = engine.instantiate(&upper)?;
/// instance.process(&Element::new(0, "", "hello"))?;
/// let copies = instance.host().copies();
/// assert_eq!((copies.into_guest, copies.out_of_guest), (5, 5)); // read in, appended back
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyStats {
    /// Bytes copied from host buffers into guest memory (`read`, `read-all`).
    pub into_guest: u64,
    /// Bytes copied from guest memory into host buffers (`write`, `append`).
    pub out_of_guest: u64,
    /// Bytes copied host-to-host: a `clone-into-mutable` copy materialized
    /// by a write (a clone that is only frozen shares its source's bytes).
    pub host_to_host: u64,
}

/// Totals over every live instance of one engine: what a leak would show.
///
/// Buffer bytes change on nearly every host call, from every thread that
/// runs an instance: one shared counter would be a cache line all those
/// threads fight over. So each instance counts in one of several shards
/// (each on its own cache line), and reading the total sums them. An
/// instance publishes its charge when a contract function returns, its
/// outputs taken (not at every host call: an atomic add per `allocate` and
/// per `drop` was a quarter of what the host adds to them), so during a
/// call the totals show the charge as it was when the call began.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// let first = engine.instantiate(&upper)?;
/// let second = engine.instantiate(&upper)?;
/// assert_eq!(engine.totals().live_instances(), 2);
/// drop((first, second));
/// assert_eq!(engine.totals().live_instances(), 0);
/// assert_eq!(engine.totals().guest_buffer_bytes(), 0);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct EngineTotals {
    pub(super) instances: AtomicU64,
    buffer_bytes: [Shard; SHARDS],
    next_shard: AtomicU64,
}

const SHARDS: usize = 16;

/// A counter alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(AtomicU64);

impl EngineTotals {
    /// Instances alive (their stores not yet dropped).
    pub fn live_instances(&self) -> u64 {
        self.instances.load(Ordering::Relaxed)
    }

    /// Buffer-budget bytes charged to guests, over all live instances.
    pub fn guest_buffer_bytes(&self) -> u64 {
        // Each shard only ever holds what its own instances charged, so
        // every shard is a sum of non-negative charges.
        self.buffer_bytes
            .iter()
            .map(|shard| shard.0.load(Ordering::Relaxed))
            .sum()
    }

    /// The shard a new instance counts in (round robin).
    pub(super) fn assign_shard(&self) -> usize {
        self.next_shard.fetch_add(1, Ordering::Relaxed) as usize % SHARDS
    }

    pub(super) fn add(&self, shard: usize, bytes: u64) {
        self.buffer_bytes[shard]
            .0
            .fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn sub(&self, shard: usize, bytes: u64) {
        self.buffer_bytes[shard]
            .0
            .fetch_sub(bytes, Ordering::Relaxed);
    }
}
