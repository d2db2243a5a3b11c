//! Compile-time checks: the futures of the async API are `Send`, so flows
//! can be spawned on a multi-thread runtime. (If one captures a `!Send`
//! value, this file stops compiling.)

use torvyn_engine::mock::{MockEngine, MockInstance};
use torvyn_engine::{
    AsyncComponentInvoker, Backpressure, CompiledComponent, Element, Pipeline, WasmEngine,
    WasmtimeEngine, WasmtimeInstance,
};

fn require_send<T: Send>(_: &T) {}

#[allow(dead_code, unused_must_use)]
fn invoker_futures_are_send<I: AsyncComponentInvoker>(instance: &mut I, element: &Element) {
    require_send(&instance.init_async(""));
    require_send(&instance.teardown_async());
    require_send(&instance.process_async(element));
    require_send(&instance.pull_async());
    require_send(&instance.notify_backpressure_async(Backpressure::Ready));
    require_send(&instance.push_async(element));
    require_send(&instance.complete_async());
    require_send(&instance.evaluate_async(element));
    require_send(&instance.route_async(element));
    require_send(&instance.ingest_async(element));
    require_send(&instance.flush_async());
}

#[allow(dead_code)]
fn concrete_futures_are_send(
    engine: &WasmtimeEngine,
    component: &CompiledComponent,
    instance: &mut WasmtimeInstance,
    pipeline: &mut Pipeline<WasmtimeInstance>,
    mock: &mut MockInstance,
    element: &Element,
) {
    invoker_futures_are_send(instance, element);
    invoker_futures_are_send(mock, element);
    require_send(&engine.instantiate_async(component));
    require_send(
        &MockEngine::new().instantiate_async(&torvyn_engine::mock::MockComponent::new("m")),
    );
    require_send(&pipeline.run_async(|_| {}));
    require_send(&pipeline.init_async(""));
    require_send(&pipeline.teardown_async());
}

#[test]
fn the_async_api_is_send() {
    // The checks above are done by the compiler; this test names them.
    let _ = concrete_futures_are_send;
}
