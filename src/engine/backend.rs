//! [`WasmEngine`]: what a backend that compiles and instantiates
//! components does; the wasmtime engine and the mock implement it.

use std::future::Future;

use crate::config::NodeLimits;
use crate::error::{Error, Result};
use crate::invoker::AsyncComponentInvoker;

/// A backend that compiles and instantiates components.
///
/// [`WasmtimeEngine`](crate::WasmtimeEngine) is the real one; [`MockEngine`](crate::mock::MockEngine)
/// stands in for it in downstream tests.
///
/// ```
/// use torvyn_engine::mock::{MockComponent, MockEngine};
/// use torvyn_engine::{ComponentInvoker, Element, ProcessOutcome, WasmEngine};
///
/// /// Code written once for any backend: the real engine, or the mock in tests.
/// fn first_output<E: WasmEngine>(engine: &E, bytes: &[u8]) -> torvyn_engine::Result<ProcessOutcome> {
///     let component = engine.compile("stage", bytes)?;
///     let mut instance = engine.instantiate(&component)?;
///     instance.process(&Element::new(0, "text/plain", "hi"))
/// }
///
/// let mock = MockEngine::new().with(MockComponent::new("stage").on_process(|_| Ok(ProcessOutcome::Drop)));
/// assert_eq!(first_output(&mock, b"")?, ProcessOutcome::Drop);
/// # use torvyn_engine::{EngineConfig, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// let real = first_output(&engine, &torvyn_fixtures::uppercase_processor())?;
/// assert_eq!(real, ProcessOutcome::Emit(Element::new(0, "text/plain", "HI")));
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
pub trait WasmEngine {
    /// A compiled, ready-to-instantiate component (cheap to clone).
    type Component: Clone;
    /// A live instance, callable sync and async.
    type Instance: AsyncComponentInvoker;

    /// Compiles component bytes; `name` appears in every error about it.
    fn compile(&self, name: &str, bytes: &[u8]) -> Result<Self::Component>;
    /// Creates a fresh instance, on the calling thread.
    fn instantiate(&self, component: &Self::Component) -> Result<Self::Instance>;
    /// Creates a fresh instance as a future: start-up code runs on a fiber
    /// that yields like any async call.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the half-made instance; nothing else is
    /// affected.
    fn instantiate_async(
        &self,
        component: &Self::Component,
    ) -> impl Future<Output = Result<Self::Instance>> + Send;

    /// `component` with a flow node's own limits over its own (a flow
    /// file's node `fuel_budget` and `max_memory`); `component` as it is
    /// when the node sets none. A backend without per-component limits
    /// refuses any that is set.
    fn with_node_limits(
        &self,
        component: &Self::Component,
        limits: &NodeLimits,
    ) -> Result<Self::Component> {
        if !limits.is_set() {
            return Ok(component.clone());
        }
        Err(Error::Config(format!(
            "this engine has no per-component limits ({limits:?} asked)"
        )))
    }
}
