//! Helpers shared by the integration tests.
#![allow(dead_code)]

use torvyn_engine::{CompiledComponent, EngineConfig, WasmEngine, WasmtimeEngine};

/// An engine with default limits.
pub fn engine() -> WasmtimeEngine {
    WasmtimeEngine::new(EngineConfig::builder().build().unwrap()).unwrap()
}

/// Compiles a fixture, failing the test with the engine's message.
pub fn compile(engine: &WasmtimeEngine, name: &str, bytes: &[u8]) -> CompiledComponent {
    engine
        .compile(name, bytes)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}
