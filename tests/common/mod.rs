//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod alloc;

use torvyn_engine::flow::{EdgeSpec, NodeSpec};
use torvyn_engine::{CompiledComponent, EngineConfig, Interface, WasmEngine, WasmtimeEngine};

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

/// Asserts that the guest of `instance` holds no host resources and no
/// buffer budget: everything it received or produced was released.
pub fn assert_nothing_held(instance: &mut torvyn_engine::WasmtimeInstance) {
    let name = torvyn_engine::ComponentInvoker::name(instance).to_string();
    assert_eq!(instance.guest_resources(), 0, "{name}: resources held");
    assert_eq!(instance.host().budget_in_use(), 0, "{name}: budget held");
}

/// A multi-thread tokio runtime with `workers` worker threads.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// A flow node running `component` in `role` with `config`.
pub fn flow_node(name: &str, component: &str, role: Interface, config: &str) -> NodeSpec {
    NodeSpec::component(name, component, role, config)
}

/// A flow edge from `from`'s `port` to `to`'s input.
pub fn flow_edge(from: &str, port: &str, to: &str) -> EdgeSpec {
    EdgeSpec::new(from, port, to, "input")
}
