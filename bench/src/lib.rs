//! torvyn-bench: the benchmark scenarios of torvyn-engine, shared by
//! `torvyn bench` (one run, ratios in one table) and the criterion benches
//! (`cargo bench -p torvyn-bench`). One constant names each row.
//!
//! Here: calls (`calls.rs`), the floor host (`floor.rs`) and the transition
//! table (`transitions.rs`), wasmtime settings (`settings.rs`),
//! the fair floor host (`fair_floor.rs`), counts under callgrind
//! (`counts.rs`), compute-bound guests (`compute.rs`), flows (`flows.rs`), live upgrade
//! (`swap.rs`), the NATS pipeline (`streams.rs`, its server in
//! `nats_server.rs`), measuring (`measure.rs`, `alloc_counter.rs`) and the
//! report (`report.rs`).
#![deny(missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use torvyn_engine::{EngineConfig, InstanceDensity, WasmEngine, WasmtimeEngine};
use wasmtime::component::{ComponentExportIndex, Instance};
use wasmtime::Store;

pub mod alloc_counter;
mod bare_nats;
mod calls;
mod compute;
pub mod counts;
mod fair_floor;
mod floor;
mod flows;
mod leases;
mod measure;
mod nats_cluster;
mod nats_server;
mod report;
mod settings;
pub mod streams;
mod swap;
mod transitions;
mod windows;

pub use calls::call_cases;
pub(crate) use calls::{element_by_hand, element_cases};
pub use floor::LOOP_REPETITIONS;
pub use flows::{async_flows_rate, pipeline_rate};
pub(crate) use measure::{all_cases, batch_size};
pub use measure::{density, measure_all, Measurement};
pub use report::{cpu_model, only, report};
pub use transitions::transition_cases;

/// One measured operation: `run` does it `ops` times.
pub struct Case {
    /// Row name.
    pub name: String,
    /// Operations one `run` does (a guest loop repeats its transition).
    pub ops: u32,
    /// Does the operation `ops` times.
    pub run: Box<dyn FnMut()>,
}

fn case(name: impl Into<String>, run: impl FnMut() + 'static) -> Case {
    looped(name, 1, run)
}

/// A case whose `run` does `ops` operations (ns/op divides by them).
fn looped(name: impl Into<String>, ops: u32, run: impl FnMut() + 'static) -> Case {
    Case {
        name: name.into(),
        ops,
        run: Box::new(run),
    }
}

fn default_engine() -> WasmtimeEngine {
    WasmtimeEngine::new(EngineConfig::builder().build().expect("default config")).expect("engine")
}

fn dense_engine() -> WasmtimeEngine {
    WasmtimeEngine::new(
        EngineConfig::builder()
            .density(InstanceDensity::Dense)
            .build()
            .expect("dense config"),
    )
    .expect("engine")
}

fn instance(engine: &WasmtimeEngine, name: &str, bytes: &[u8]) -> torvyn_engine::WasmtimeInstance {
    let component = engine
        .compile(name, bytes)
        .expect("bundled component compiles");
    engine
        .instantiate(&component)
        .expect("bundled component instantiates")
}

/// Polls a future that never waits (a sync component call made through
/// `call_async`) to completion.
#[inline(always)]
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
    }
}

/// A store of bare wasmtime for floors, set up as the engine sets up its
/// own: no deadline, and fuel (the engine meters fuel always, so any
/// component may get a limit: the floors pay for metering as every
/// instance does; only a settings variant turns metering off).
fn bare_store(engine: &wasmtime::Engine) -> Store<()> {
    bare_store_with(engine, ())
}

/// [`bare_store`] holding `data`.
fn bare_store_with<T: 'static>(engine: &wasmtime::Engine, data: T) -> Store<T> {
    let mut store = Store::new(engine, data);
    store.set_epoch_deadline(torvyn_engine::__private::NO_DEADLINE);
    if engine.get_consume_fuel() {
        store.set_fuel(u64::MAX).expect("fuel is metered");
    }
    store
}

/// The index of function `func` of exported interface `interface`.
fn export_index(
    instance: &Instance,
    store: &mut Store<()>,
    interface: &str,
    func: &str,
) -> ComponentExportIndex {
    let interface_index = instance
        .get_export_index(&mut *store, None, interface)
        .unwrap_or_else(|| panic!("no export `{interface}`"));
    instance
        .get_export_index(&mut *store, Some(&interface_index), func)
        .unwrap_or_else(|| panic!("no function `{interface}#{func}`"))
}

/// The names of the rows the report reads again (for ratios and the
/// other tables): one constant for the case and every lookup, so a
/// renamed row cannot leave a ratio reading nothing.
pub mod row {
    /// `empty component call (floor)`.
    pub const FLOOR: &str = "empty component call (floor)";
    /// `empty component call, call_async`.
    pub const CALL_ASYNC: &str = "empty component call, call_async";
    /// `typed process -> drop`.
    pub const TYPED_DROP: &str = "typed process -> drop";
    /// `async typed process -> drop`.
    pub const ASYNC_DROP: &str = "async typed process -> drop";
    /// `dense typed process -> drop`.
    pub const DENSE_DROP: &str = "dense typed process -> drop";
    /// `dynamic process -> drop`.
    pub const DYNAMIC_DROP: &str = "dynamic process -> drop";
    /// `naive flat-Val call -> drop`.
    pub const NAIVE_FLAT: &str = "naive flat-Val call -> drop";
    /// `typed flat call (same 4 scalars)`.
    pub const TYPED_FLAT: &str = "typed flat call (same 4 scalars)";
    /// `typed uppercase copy 1 KiB (read + write)`.
    pub const UPPERCASE: &str = "typed uppercase copy 1 KiB (read + write)";
    /// `dense typed uppercase copy 1 KiB`.
    pub const DENSE_UPPERCASE: &str = "dense typed uppercase copy 1 KiB";
    /// `dynamic uppercase copy 1 KiB`.
    pub const DYNAMIC_UPPERCASE: &str = "dynamic uppercase copy 1 KiB";
    /// The row of one 64 B element pulled, passed through and pushed by hand.
    pub const ELEMENT_BY_HAND: &str = "typed pull -> process -> push (64 B), by hand";
    /// The same through the async invoker (`call_async`).
    pub const ELEMENT_BY_HAND_ASYNC: &str = "async typed pull -> process -> push (64 B), by hand";
}
