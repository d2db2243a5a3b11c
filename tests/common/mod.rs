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

/// Runs `future` to completion on this thread with no runtime at all: the
/// thread parks until the future's waker is called. A future that is never
/// woken (a wait nobody ends) fails the test after a minute, saying so,
/// instead of hanging it: it shows that whatever the future waits on wakes
/// it by itself.
pub fn block_on_parked<F: std::future::Future>(future: F) -> F::Output {
    block_on_parked_within(future, std::time::Duration::from_secs(60))
}

/// [`block_on_parked`] that fails the test once `limit` has passed.
pub fn block_on_parked_within<F: std::future::Future>(
    future: F,
    limit: std::time::Duration,
) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            !left.is_zero(),
            "the future was not done within {limit:?}: nothing woke it (or it never ends)"
        );
        std::thread::park_timeout(left);
    }
}
