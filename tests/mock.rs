//! The mock backend runs the same pipeline code as the real engine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use torvyn_engine::mock::{MockComponent, MockEngine};
use torvyn_engine::{
    Backpressure, ComponentInvoker, Element, Error, Interface, Pipeline, ProcessOutcome, WasmEngine,
};

#[test]
fn a_pipeline_of_mocks_runs_and_logs_calls() {
    let mut next = 0u64;
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let engine = MockEngine::new()
        .with(MockComponent::new("source").on_pull(move || {
            next += 1;
            Ok((next <= 3).then(|| Element::new(0, "", format!("m{next}"))))
        }))
        .with(MockComponent::new("double").on_process(|e| {
            let doubled = [&e.payload[..], &e.payload[..]].concat();
            Ok(ProcessOutcome::Emit(Element::new(0, "", doubled)))
        }))
        .with(
            MockComponent::new("sink")
                .on_init(|_| Ok(()))
                .on_push(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(Backpressure::Ready)
                }),
        );
    let stage = |name| {
        engine
            .instantiate(&engine.compile(name, b"").unwrap())
            .unwrap()
    };
    let mut pipeline =
        Pipeline::new(stage("source"), vec![stage("double")], stage("sink")).unwrap();
    pipeline.init("{}").unwrap();
    let mut payloads = Vec::new();
    let report = pipeline.run(|e| payloads.push(e.payload.clone())).unwrap();
    assert_eq!(report.delivered, 3);
    assert_eq!(payloads, ["m1m1", "m2m2", "m3m3"]);
    assert_eq!(received.load(Ordering::SeqCst), 3);
    let (source, _, sink) = pipeline.stages();
    assert_eq!(source.calls(), ["pull", "pull", "pull", "pull"]);
    assert_eq!(sink.calls(), ["init", "push", "push", "push", "complete"]);
    assert!(sink.has(Interface::Lifecycle) && !source.has(Interface::Lifecycle));
}

#[test]
fn unknown_mocks_and_missing_handlers_are_errors() {
    let engine = MockEngine::new()
        .with(MockComponent::new("only-process").on_process(|_| Ok(ProcessOutcome::Drop)));
    assert!(matches!(
        engine.compile("nope", b""),
        Err(Error::Compile { .. })
    ));
    let mut instance = engine
        .instantiate(&engine.compile("only-process", b"").unwrap())
        .unwrap();
    assert!(matches!(instance.pull(), Err(Error::NotExported { .. })));
    assert_eq!(
        instance.process(&Element::default()).unwrap(),
        ProcessOutcome::Drop
    );
}

#[test]
fn filters_routers_and_aggregators_can_be_mocked() {
    let mut held = Vec::new();
    let engine = MockEngine::new().with(
        MockComponent::new("all")
            .on_evaluate(|e| Ok(e.meta.sequence % 2 == 0))
            .on_route(|e| Ok(vec![format!("port-{}", e.meta.sequence)]))
            .on_ingest(move |e| {
                held.push(e.clone());
                Ok(None)
            })
            .on_flush(|| Ok(vec![Element::new(9, "", "flushed")])),
    );
    let mut all = engine
        .instantiate(&engine.compile("all", b"").unwrap())
        .unwrap();
    assert!(all.evaluate(&Element::new(2, "", "x")).unwrap());
    assert_eq!(all.route(&Element::new(3, "", "x")).unwrap(), ["port-3"]);
    assert_eq!(all.ingest(&Element::new(4, "", "x")).unwrap(), None);
    assert_eq!(all.flush().unwrap(), [Element::new(9, "", "flushed")]);
    assert!(
        all.has(Interface::Filter) && all.has(Interface::Router) && all.has(Interface::Aggregator)
    );
    assert_eq!(all.calls(), ["evaluate", "route", "ingest", "flush"]);
}
