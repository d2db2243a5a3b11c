//! Hostile guests, by attack class: each tries one way past the engine's
//! limits and must end with its own error, the instance poisoned where the
//! call failed, nothing held, siblings unaffected and the engine's totals
//! back to zero.

#[path = "../common/mod.rs"]
mod common;

mod cache;
mod handles;
mod memory;
mod spin;
mod strings;
mod wasi;
mod work;

use std::fmt::Debug;

use torvyn_engine::{
    ComponentInvoker, Element, EngineConfig, EngineConfigBuilder, Error, ProcessOutcome,
    WasmEngine, WasmtimeEngine, WasmtimeInstance,
};

/// Counts the heap bytes each thread holds, so a test can see what a call
/// made the host keep (per thread: other tests run on other threads).
#[global_allocator]
static ALLOCATOR: common::alloc::CountingAllocator = common::alloc::CountingAllocator;

pub fn engine_with(config: EngineConfigBuilder) -> WasmtimeEngine {
    WasmtimeEngine::new(config.build().unwrap()).unwrap()
}

pub fn instance(engine: &WasmtimeEngine, name: &str, bytes: &[u8]) -> WasmtimeInstance {
    engine
        .instantiate(&common::compile(engine, name, bytes))
        .unwrap()
}

pub fn element(sequence: u64) -> Element {
    Element::new(sequence, "text/plain", format!("payload {sequence}"))
}

/// Runs `call` on a fresh instance of `bytes` and checks that the failure
/// is contained: the call fails; an error that poisons leaves the instance
/// refusing calls with that error as the cause; the guest holds no
/// resources and no budget; a healthy instance on the same engine still
/// works; the engine's totals return to zero. Returns the error.
pub fn contained<T: Debug>(
    engine: &WasmtimeEngine,
    name: &str,
    bytes: &[u8],
    call: impl FnOnce(&mut WasmtimeInstance) -> torvyn_engine::Result<T>,
) -> Error {
    let mut healthy = instance(engine, "healthy", &torvyn_fixtures::uppercase_processor());
    let mut guest = instance(engine, name, bytes);
    let error = match call(&mut guest) {
        Ok(value) => panic!("{name}: expected a failure, got {value:?}"),
        Err(error) => error,
    };
    if error.poisons_instance() {
        assert!(
            guest.poisoned().is_some(),
            "{name}: not poisoned by {error}"
        );
        match guest.process(&element(1)) {
            Err(Error::Poisoned { site, cause }) => {
                assert_eq!(site.component, name);
                assert_eq!(cause, error.to_string());
            }
            other => panic!("{name}: a poisoned instance must refuse calls, got {other:?}"),
        }
    }
    assert_eq!(guest.host().budget_in_use(), 0, "{name}: budget held");
    assert_eq!(guest.guest_resources(), 0, "{name}: resources held");
    let out = healthy.process(&element(7)).unwrap();
    assert_eq!(
        out,
        ProcessOutcome::Emit(Element::new(7, "text/plain", "PAYLOAD 7"))
    );
    drop((guest, healthy));
    assert_eq!(engine.totals().live_instances(), 0, "{name}: instances");
    assert_eq!(
        engine.totals().guest_buffer_bytes(),
        0,
        "{name}: buffer bytes"
    );
    error
}

/// `contained` for a failing `process` call.
pub fn contained_process(engine: &WasmtimeEngine, name: &str, bytes: &[u8]) -> Error {
    contained(engine, name, bytes, |guest| guest.process(&element(0)))
}

/// The trap message of `error`, which must be a trap in `function`.
pub fn trap_in<'e>(error: &'e Error, function: &str) -> &'e str {
    match error {
        Error::Trap { site, trap, .. } => {
            assert_eq!(site.function, function, "{error}");
            trap
        }
        other => panic!("expected a trap in {function}, got {other:?}"),
    }
}

/// The detail of `error`, which must be a memory limit.
pub fn memory_limit(error: &Error) -> &str {
    match error {
        Error::MemoryLimit { detail, .. } => detail,
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
}

/// An engine with 2 s deadlines, no fuel, default limits otherwise.
pub fn default_engine() -> WasmtimeEngine {
    engine_with(EngineConfig::builder())
}
