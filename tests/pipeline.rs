//! Real components end to end on the typed bindings: a source → processor →
//! sink pipeline, lifecycle, backpressure, and the host's bookkeeping.

mod common;

use torvyn_engine::{
    Backpressure, ComponentInvoker, Element, Error, GuestError, Interface, Pipeline,
    ProcessOutcome, WasmEngine, WasmtimeInstance,
};

fn stage(engine: &torvyn_engine::WasmtimeEngine, name: &str, bytes: &[u8]) -> WasmtimeInstance {
    let component = common::compile(engine, name, bytes);
    engine.instantiate(&component).unwrap()
}

/// counting-source → `processor` → recording-sink.
fn three_stages(
    engine: &torvyn_engine::WasmtimeEngine,
    name: &str,
    processor: &[u8],
) -> Pipeline<WasmtimeInstance> {
    Pipeline::new(
        stage(
            engine,
            "counting-source",
            &torvyn_fixtures::counting_source(),
        ),
        vec![stage(engine, name, processor)],
        stage(engine, "recording-sink", &torvyn_fixtures::recording_sink()),
    )
    .unwrap()
}

fn queries(instance: &mut WasmtimeInstance) -> Vec<String> {
    instance.host().capability_queries().to_vec()
}

#[test]
fn three_stage_pipeline_moves_ten_thousand_elements_in_order() {
    let engine = common::engine();
    let mut pipeline = three_stages(
        &engine,
        "uppercase",
        &torvyn_fixtures::uppercase_processor(),
    );
    // The source reads "count", the sink its pause interval: each its first number.
    pipeline.init("10000").unwrap();
    let (source, _, sink) = pipeline.stages();
    assert!(source.has(Interface::Source) && sink.has(Interface::Sink));

    let mut seen = 0u64;
    let report = pipeline
        .run(|element| {
            assert_eq!(element.meta.sequence, seen, "sequence out of order");
            assert_eq!(element.payload, format!("ELEMENT {seen}").as_bytes());
            assert_eq!(element.meta.content_type, "text/plain");
            seen += 1;
        })
        .unwrap();
    assert_eq!(seen, 10_000);
    assert_eq!(report.pulled, 10_000);
    assert_eq!(report.delivered, 10_000);
    assert_eq!(report.dropped, 0);
    let expected_bytes: u64 = (0..10_000u64)
        .map(|i| format!("ELEMENT {i}").len() as u64)
        .sum();
    assert_eq!(report.bytes_delivered, expected_bytes);

    pipeline.teardown().unwrap();
    let (source, mut processors, sink) = pipeline.stages();
    // Nothing the guests received or produced is left in any table or budget.
    for stage in [&mut *source, &mut *processors[0], &mut *sink] {
        common::assert_nothing_held(stage);
    }
    assert!(queries(source).contains(&"fixture:teardown".to_string()));
    let sink_queries = queries(sink);
    assert_eq!(
        sink_queries,
        ["fixture:complete", "fixture:teardown"],
        "complete, then teardown, reached the sink"
    );
}

#[test]
fn backpressure_from_the_sink_reaches_caller_and_source() {
    let engine = common::engine();
    let mut pipeline = Pipeline::new(
        stage(
            &engine,
            "counting-source",
            &torvyn_fixtures::counting_source(),
        ),
        vec![],
        stage(
            &engine,
            "recording-sink",
            &torvyn_fixtures::recording_sink(),
        ),
    )
    .unwrap();
    // Count 10 for the source, pause every 3 for the sink: pause at 3, 6
    // and 9, ready at 4, 7 and 10 — each change reaches the source once.
    {
        let (source, _, sink) = pipeline.stages();
        source.init("10").unwrap();
        sink.init("3").unwrap();
    }
    let report = pipeline.run(|_| {}).unwrap();
    assert_eq!(report.delivered, 10);
    assert_eq!(report.pauses, 3);
    let (source, _, _) = pipeline.stages();
    let pause_ready = ["fixture:pause", "fixture:ready"];
    assert_eq!(queries(source), pause_ready.repeat(3));

    // Driven by hand: the sink pauses every 2nd element; ready/pause alternate at the source.
    let mut sink_direct = stage(&engine, "sink", &torvyn_fixtures::recording_sink());
    sink_direct.init("2").unwrap();
    let signals: Vec<_> = (0..4)
        .map(|i| sink_direct.push(&Element::new(i, "", "x")).unwrap())
        .collect();
    use Backpressure::{Pause, Ready};
    assert_eq!(signals, [Ready, Pause, Ready, Pause]);
    source.notify_backpressure(Pause).unwrap();
    assert_eq!(
        queries(source).last().map(String::as_str),
        Some("fixture:pause")
    );
}

#[test]
fn init_config_reaches_the_guest() {
    let engine = common::engine();
    let mut source = stage(&engine, "source", &torvyn_fixtures::counting_source());
    source.init(r#"{"count": 7}"#).unwrap();
    let mut pulled = Vec::new();
    while let Some(element) = source.pull().unwrap() {
        pulled.push(element);
    }
    assert_eq!(pulled.len(), 7);
    assert_eq!(pulled[6].payload, "element 6".as_bytes());
    assert_eq!(pulled[6].meta.sequence, 6);
    // Exhausted sources stay exhausted.
    assert_eq!(source.pull().unwrap(), None);
}

#[test]
fn a_dropping_processor_drops_and_shares_the_rest() {
    let engine = common::engine();
    let mut dropper = stage(&engine, "dropper", &torvyn_fixtures::dropping_processor());
    dropper.init("3").unwrap();
    let outcomes: Vec<_> = (0..6u64)
        .map(|i| {
            dropper
                .process(&Element::new(i, "text/plain", format!("e{i}")))
                .unwrap()
        })
        .collect();
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            ProcessOutcome::Drop => assert_eq!(i % 3, 0),
            ProcessOutcome::Emit(e) => {
                assert_ne!(i % 3, 0);
                assert_eq!(e.payload, format!("e{i}").as_bytes());
                assert_eq!(e.meta.content_type, "text/plain");
            }
        }
    }
    // Cloned then frozen without a write: the payloads were shared, never copied.
    assert_eq!(
        dropper.host().copies(),
        torvyn_engine::host::CopyStats::default()
    );
    assert_eq!(dropper.guest_resources(), 0);
}

#[test]
fn copies_into_and_out_of_the_guest_are_counted() {
    let engine = common::engine();
    let mut upper = stage(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let payload = vec![b'a'; 1024];
    for i in 0..10 {
        let out = upper
            .process(&Element::new(i, "", payload.clone()))
            .unwrap();
        let ProcessOutcome::Emit(out) = out else {
            panic!("uppercase emits")
        };
        assert_eq!(out.payload, vec![b'A'; 1024]);
    }
    let copies = upper.host().copies();
    assert_eq!(copies.into_guest, 10 * 1024);
    assert_eq!(copies.out_of_guest, 10 * 1024);
    common::assert_nothing_held(&mut upper);
}

#[test]
fn filter_router_and_aggregator_work_on_the_typed_path() {
    let engine = common::engine();
    let mut filter = stage(&engine, "filter", &torvyn_fixtures::modulo_filter());
    filter.init("3").unwrap();
    let kept: Vec<bool> = (0..6)
        .map(|i| filter.evaluate(&Element::new(i, "", "x")).unwrap())
        .collect();
    assert_eq!(kept, [false, true, true, false, true, true]);

    let mut router = stage(&engine, "router", &torvyn_fixtures::parity_router());
    assert_eq!(
        router.route(&Element::new(0, "", "x")).unwrap(),
        ["even", "audit"]
    );
    assert_eq!(router.route(&Element::new(3, "", "x")).unwrap(), ["odd"]);
    assert_eq!(
        router.route(&Element::new(5, "", "x")).unwrap(),
        ["odd", "audit"]
    );
    match router.route(&Element::new(1, "", "")) {
        Err(Error::Guest {
            error: GuestError::InvalidInput(m),
            site,
        }) => {
            assert_eq!(m, "empty payload");
            assert_eq!(site.component, "router");
            assert_eq!(site.function, "route");
        }
        other => panic!("expected invalid-input, got {other:?}"),
    }
    // A guest-reported error does not poison the instance.
    assert_eq!(router.route(&Element::new(2, "", "x")).unwrap(), ["even"]);

    let mut aggregator = stage(&engine, "aggregator", &torvyn_fixtures::concat_aggregator());
    aggregator.init("4").unwrap();
    let mut outputs = Vec::new();
    for i in 0..10u64 {
        if let Some(out) = aggregator
            .ingest(&Element::new(i, "", format!("{i},")))
            .unwrap()
        {
            outputs.push(out);
        }
        // The open aggregate is a mutable buffer the guest holds between calls.
        let open = if (i + 1) % 4 == 0 { 0 } else { 1 };
        assert_eq!(aggregator.guest_resources(), open, "after element {i}");
    }
    outputs.extend(aggregator.flush().unwrap());
    let payloads: Vec<_> = outputs
        .iter()
        .map(|e| String::from_utf8(e.payload.to_vec()).unwrap())
        .collect();
    assert_eq!(payloads, ["0,1,2,3,", "4,5,6,7,", "8,9,"]);
    assert_eq!(outputs[1].meta.sequence, 4);
    assert_eq!(outputs[0].meta.content_type, "application/octet-stream");
    assert!(aggregator.flush().unwrap().is_empty());
    common::assert_nothing_held(&mut aggregator);
}

#[test]
fn guest_errors_name_component_and_function() {
    let engine = common::engine();
    let mut sink = stage(&engine, "strict-sink", &torvyn_fixtures::recording_sink());
    sink.init("100").unwrap();
    sink.push(&Element::new(0, "", "a")).unwrap();
    let err = sink.push(&Element::new(5, "", "b")).unwrap_err();
    assert!(
        matches!(&err, Error::Guest { error: GuestError::InvalidInput(m), .. } if m == "sequence out of order"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "component `strict-sink`, function `push`: guest reported invalid input: sequence out of order"
    );
}

#[test]
fn calling_an_interface_the_component_lacks_is_a_clear_error() {
    let engine = common::engine();
    let mut upper = stage(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    assert!(!upper.has(Interface::Source));
    match upper.pull() {
        Err(Error::NotExported {
            component,
            interface,
        }) => {
            assert_eq!(component, "upper");
            assert_eq!(interface, "torvyn:streaming/source");
        }
        other => panic!("expected NotExported, got {other:?}"),
    }
    // That mistake is the caller's: the instance still works.
    assert!(matches!(
        upper.process(&Element::new(0, "", "a")),
        Ok(ProcessOutcome::Emit(_))
    ));
}

/// A pipeline is a linear flow: every stage numbers its own input, so the
/// sink sees no gap where a processor dropped; a run reports only itself;
/// a stage without its role is refused by node and component.
#[test]
fn a_pipeline_numbers_each_stage_input_and_reports_each_run() {
    let engine = common::engine();
    let mut pipeline = three_stages(&engine, "dropper", &torvyn_fixtures::dropping_processor());
    {
        let (source, mut processors, sink) = pipeline.stages();
        source.init("9").unwrap();
        processors[0].init("3").unwrap(); // drops sequences 0, 3 and 6
        sink.init("100").unwrap();
    }
    let mut seen = Vec::new();
    let report = pipeline
        .run(|element| {
            seen.push((
                element.meta.sequence,
                String::from_utf8_lossy(&element.payload).into_owned(),
            ))
        })
        .unwrap();
    let expected: Vec<(u64, String)> = [1, 2, 4, 5, 7, 8]
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u64, format!("element {n}")))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!((report.pulled, report.dropped, report.delivered), (9, 3, 6));
    let bytes: u64 = expected.iter().map(|(_, p)| p.len() as u64).sum();
    assert_eq!(report.bytes_delivered, bytes);
    // The source is exhausted: a second run moves nothing and says so.
    let again = pipeline.run(|_| panic!("nothing is left")).unwrap();
    assert_eq!((again.pulled, again.dropped, again.delivered), (0, 0, 0));
    // Per node, the flow's own report counts both runs.
    let flow = pipeline.flow().report(std::time::Duration::ZERO);
    let ins: Vec<u64> = flow.nodes.iter().map(|n| n.elements_in).collect();
    assert_eq!(ins, [9, 9, 6]);

    let refused = Pipeline::new(
        stage(
            &engine,
            "recording-sink",
            &torvyn_fixtures::recording_sink(),
        ),
        vec![],
        stage(
            &engine,
            "recording-sink",
            &torvyn_fixtures::recording_sink(),
        ),
    )
    .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "flow `linear`: node `source`: component `recording-sink` does not export \
         `torvyn:streaming/source`"
    );
}
