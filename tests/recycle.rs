//! Recycling (issue 33): an instance replaced by a fresh one of its
//! component between two elements, before what its guest keeps kills it —
//! after `recycle_after_elements` element calls, or once its memory reaches
//! `recycle_at_memory_percent` of its limit — with its state carried over
//! when the component exports `torvyn:state`.

use torvyn_engine::{
    ComponentInvoker, Element, EngineConfig, Limits, ProcessOutcome, WasmEngine, WasmtimeEngine,
};
use torvyn_fixtures::hostile;

fn element(sequence: u64) -> Element {
    Element::new(sequence, "text/plain", "x")
}

/// A 4 MiB memory limit, and a guest that grows its memory by 1 MiB every
/// call (keeping it, as a leaking toolchain does).
fn grower(limits: impl FnOnce(&mut Limits)) -> (WasmtimeEngine, torvyn_engine::CompiledComponent) {
    let engine = WasmtimeEngine::new(
        EngineConfig::builder()
            .max_memory_bytes(4 << 20)
            .build()
            .unwrap(),
    )
    .unwrap();
    let component = engine
        .compile("grower", &hostile::many_memories(1, 16))
        .unwrap();
    let mut own = component.limits().clone();
    limits(&mut own);
    let component = component.with_limits(own).unwrap();
    (engine, component)
}

#[test]
fn a_guest_that_keeps_memory_runs_on_when_recycled_after_elements() {
    // Not recycled: the call that would take it past 4 MiB fails.
    let (engine, plain) = grower(|_| {});
    let mut instance = engine.instantiate(&plain).unwrap();
    let failed = (0..10).position(|i| instance.process(&element(i)).is_err());
    assert!(matches!(failed, Some(2..=4)), "failed at {failed:?}");

    // Recycled after every 2 elements: 100 calls, each one served.
    let (engine, recycled) = grower(|limits| limits.recycle_after_elements = Some(2));
    let mut instance = engine.instantiate(&recycled).unwrap();
    for i in 0..100 {
        assert_eq!(instance.process(&element(i)).unwrap(), ProcessOutcome::Drop);
    }
    // Replaced before its 3rd, 5th, ... 99th element.
    assert_eq!(instance.recycled(), 49);
    assert!(instance.memory_bytes() <= 3 << 20);
    // The replaced instances are gone: one lives.
    assert_eq!(engine.totals().live_instances(), 1);
}

#[test]
fn a_guest_near_its_memory_limit_is_recycled_before_it_is_refused() {
    let (engine, component) = grower(|limits| limits.recycle_at_memory_percent = Some(50));
    let mut instance = engine.instantiate(&component).unwrap();
    for i in 0..50 {
        assert_eq!(instance.process(&element(i)).unwrap(), ProcessOutcome::Drop);
    }
    assert!(instance.recycled() > 0);
    assert!(instance.memory_bytes() < 4 << 20);
}

/// A counting aggregator recycled every 3 elements keeps its count: each
/// fresh instance takes the old one's `save` in its `restore`.
#[test]
fn a_stateful_stage_keeps_its_state_across_recycling() {
    let engine = WasmtimeEngine::new(EngineConfig::builder().build().unwrap()).unwrap();
    let counter = engine
        .compile("counter", &torvyn_fixtures::counting_aggregator(0))
        .unwrap();
    let mut limits = counter.limits().clone();
    limits.recycle_after_elements = Some(3);
    let counter = counter.with_limits(limits).unwrap();
    let mut instance = engine.instantiate(&counter).unwrap();
    for i in 0..20 {
        assert_eq!(instance.ingest(&element(i)).unwrap(), None);
    }
    assert_eq!(instance.recycled(), 6);
    let flushed = instance.flush().unwrap();
    assert_eq!(flushed.len(), 1);
    assert_eq!(&flushed[0].payload[..], b"20");
}

#[test]
fn recycling_limits_are_checked() {
    let (_, component) = grower(|_| {});
    for (after, percent) in [(Some(0), None), (None, Some(0)), (None, Some(101))] {
        let mut limits = component.limits().clone();
        limits.recycle_after_elements = after;
        limits.recycle_at_memory_percent = percent;
        assert!(
            component.with_limits(limits).is_err(),
            "{after:?} {percent:?} accepted"
        );
    }
}
