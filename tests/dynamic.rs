//! The dynamic `Val` path: components whose worlds the typed bindings do
//! not know run through the same invoker, with the same results.

mod common;

use torvyn_engine::{
    CallPath, ComponentInvoker, Element, Error, GuestError, Interface, Pipeline, ProcessOutcome,
    WasmEngine, WasmtimeEngine, WasmtimeInstance,
};
use torvyn_fixtures::foreign;

fn instance(engine: &WasmtimeEngine, name: &str, bytes: &[u8]) -> WasmtimeInstance {
    engine
        .instantiate(&common::compile(engine, name, bytes))
        .unwrap()
}

fn run_pipeline(engine: &WasmtimeEngine, processor: &[u8], count: u64) -> Vec<Element> {
    let mut pipeline = Pipeline::new(
        instance(engine, "source", &torvyn_fixtures::counting_source()),
        vec![instance(engine, "processor", processor)],
        instance(engine, "sink", &torvyn_fixtures::recording_sink()),
    )
    .unwrap();
    pipeline.init(&count.to_string()).unwrap();
    let mut delivered = Vec::new();
    pipeline
        .run(|element| {
            let mut element = element.clone();
            element.meta.timestamp_ns = 0; // wall-clock: differs between runs
            delivered.push(element)
        })
        .unwrap();
    let (_, mut processors, _) = pipeline.stages();
    common::assert_nothing_held(&mut *processors[0]);
    delivered
}

#[test]
fn another_package_and_major_version_runs_like_its_typed_twin() {
    let engine = common::engine();
    let foreign_bytes = foreign::uppercase_processor_in("acme:etl@2.0.0");
    let component = common::compile(&engine, "acme-upper", &foreign_bytes);
    match component.path_for(Interface::Processor) {
        Some(CallPath::Dynamic(why)) => {
            assert!(why.contains("not the contract's package"), "{why}")
        }
        other => panic!("expected the dynamic path, got {other:?}"),
    }
    assert!(component
        .imports()
        .contains(&"acme:etl/types@2.0.0".to_string()));

    let typed = run_pipeline(&engine, &torvyn_fixtures::uppercase_processor(), 1000);
    let dynamic = run_pipeline(&engine, &foreign_bytes, 1000);
    assert_eq!(typed.len(), 1000);
    assert_eq!(dynamic, typed);
    assert_eq!(dynamic[999].payload, "ELEMENT 999".as_bytes());
}

#[test]
fn another_minor_version_of_the_contract_takes_the_dynamic_path() {
    let engine = common::engine();
    let bytes = torvyn_fixtures::uppercase_processor_at("0.2.0");
    let component = common::compile(&engine, "upper-0.2", &bytes);
    assert!(
        matches!(component.path_for(Interface::Processor), Some(CallPath::Dynamic(why)) if why.contains("0.2.0"))
    );
    let mut upper = engine.instantiate(&component).unwrap();
    assert!(upper.has(Interface::Processor));
    for i in 0..100u64 {
        let out = upper
            .process(&Element::new(i, "text/x", format!("abc{i}")))
            .unwrap();
        assert_eq!(
            out,
            ProcessOutcome::Emit(Element::new(i, "text/x", format!("ABC{i}")))
        );
    }
    assert_eq!(upper.guest_resources(), 0);
    // Every payload was read into the guest once and written back once.
    let payload_bytes: u64 = (0..100u64).map(|i| format!("abc{i}").len() as u64).sum();
    assert_eq!(upper.host().copies().into_guest, payload_bytes);
    assert_eq!(upper.host().copies().out_of_guest, payload_bytes);
}

#[test]
fn an_extra_optional_field_is_passed_as_none() {
    let engine = common::engine();
    let mut processor = instance(&engine, "extra", &foreign::extra_optional_field());
    // The fixture traps if it receives anything but `none`.
    for i in 0..10 {
        assert_eq!(
            processor.process(&Element::new(i, "", "x")).unwrap(),
            ProcessOutcome::Drop
        );
    }
}

#[test]
fn a_required_field_the_host_cannot_fill_is_refused_at_compile_time() {
    let engine = common::engine();
    match engine.compile("tenant", &foreign::extra_required_field()) {
        Err(Error::ContractMismatch { component, detail }) => {
            assert_eq!(component, "tenant");
            assert!(detail.contains("acme:tenant/processor@1.0.0"), "{detail}");
            assert!(detail.contains("process.input.tenant"), "{detail}");
            assert!(detail.contains("required field `tenant`"), "{detail}");
        }
        other => panic!("expected a contract mismatch, got {other:?}"),
    }
}

#[test]
fn an_unknown_result_case_is_refused_at_compile_time() {
    let engine = common::engine();
    match engine.compile("retry", &foreign::unknown_result_case()) {
        Err(Error::ContractMismatch { detail, .. }) => {
            assert!(detail.contains("process.result.ok.retry"), "{detail}");
            assert!(
                detail.contains("only the cases `emit` and `drop`"),
                "{detail}"
            );
        }
        other => panic!("expected a contract mismatch, got {other:?}"),
    }
}

#[test]
fn an_unknown_error_case_is_reported_as_internal_with_its_name() {
    let engine = common::engine();
    let mut processor = instance(&engine, "quota", &foreign::unknown_error_case());
    match processor.process(&Element::new(0, "", "x")) {
        Err(Error::Guest {
            error: GuestError::Internal(message),
            ..
        }) => {
            assert_eq!(message, "quota-exceeded: over quota");
        }
        other => panic!("expected an internal guest error, got {other:?}"),
    }
    assert!(processor.poisoned().is_none());
}

#[test]
fn a_trap_on_the_dynamic_path_poisons_like_on_the_typed_path() {
    let engine = WasmtimeEngine::new(
        torvyn_engine::EngineConfig::builder()
            .max_memory_bytes(1 << 20)
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut upper = instance(
        &engine,
        "acme-upper",
        &foreign::uppercase_processor_in("acme:etl"),
    );
    upper.process(&Element::new(0, "", "fits")).unwrap();
    // Reading a 2 MiB payload into a 1 MiB memory: the guest's allocator gives up.
    let error = upper
        .process(&Element::new(1, "", vec![b'x'; 2 << 20]))
        .unwrap_err();
    match &error {
        Error::MemoryLimit { site, .. } => {
            assert_eq!(site.component, "acme-upper");
            assert_eq!(site.function, "process");
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    assert!(matches!(
        upper.process(&Element::new(2, "", "x")),
        Err(Error::Poisoned { .. })
    ));
    // A call by name that cannot even be made does not count as a fault.
    let mut fresh = instance(
        &engine,
        "acme-upper",
        &foreign::uppercase_processor_in("acme:etl"),
    );
    assert!(matches!(
        fresh.invoke("acme:etl/processor#process()"),
        Err(Error::BadCall { .. })
    ));
    assert!(fresh.poisoned().is_none());
}

#[test]
fn any_export_can_be_called_by_name_with_wave() {
    let engine = common::engine();
    let mut empty = instance(&engine, "empty", &torvyn_fixtures::empty_component());
    assert_eq!(empty.invoke("probe#noop()").unwrap(), "");
    assert_eq!(empty.invoke("noop()").unwrap(), "");
    let component = empty.component().clone();
    assert!(matches!(
        component.exports()[0].path,
        CallPath::ByNameOnly(_)
    ));

    let mut calc = instance(&engine, "calc", &torvyn_fixtures::calculator());
    assert_eq!(calc.invoke("add(40, 2)").unwrap(), "42");
    assert_eq!(calc.invoke("calc#add(1, 2)").unwrap(), "3");
    assert_eq!(calc.invoke("shout(\"hi there\")").unwrap(), "\"HI THERE\"");
    for (call, expected) in [
        ("nope()", "no exported function `nope`"),
        ("add(1)", "missing required param"),
        ("add(\"a\", 2)", "invalid value type at 2..5"),
        ("add 1 2", "expected `name(arguments)`"),
    ] {
        match calc.invoke(call) {
            Err(Error::BadCall {
                call: c, detail, ..
            }) => {
                assert_eq!(c, call);
                assert!(detail.contains(expected), "{call}: {detail}");
            }
            other => panic!("{call}: expected BadCall, got {other:?}"),
        }
    }
    assert!(calc.poisoned().is_none());
}

#[test]
fn a_call_by_name_returning_handles_releases_them_with_a_clear_error() {
    let engine = common::engine();
    let mut source = instance(&engine, "source", &torvyn_fixtures::counting_source());
    source.invoke("init(\"5\")").unwrap();
    match source.invoke("pull()") {
        Err(Error::BadCall { detail, .. }) => {
            assert!(detail.contains("resource handles"), "{detail}")
        }
        other => panic!("expected BadCall, got {other:?}"),
    }
    // The buffer the guest handed over was freed, and the instance still works.
    common::assert_nothing_held(&mut source);
    assert!(source.pull().unwrap().is_some());
}

/// A fixture of a role: component name, builder, role.
type RoleFixture = (&'static str, fn() -> Vec<u8>, Interface);

/// The same flow twice, from components of the contract at 0.1.0 (typed
/// path) and at 0.2.0 (dynamic path): source → filter → router, whose
/// ports lead to an aggregator and two sinks, the aggregator to a third.
/// Every role's every function runs: init, pull, notify-backpressure (the
/// sinks pause), evaluate, route, ingest, flush, push, complete, teardown.
fn every_role(
    version: Option<&str>,
) -> (
    Vec<(String, String)>,
    Vec<String>,
    torvyn_engine::FlowReport,
) {
    use std::collections::BTreeMap;
    use torvyn_engine::{Flow, FlowSpec};

    let engine = common::engine();
    let build = |make: fn() -> Vec<u8>| match version {
        Some(version) => torvyn_fixtures::at_contract_version(version, make),
        None => make(),
    };
    let fixtures: [RoleFixture; 5] = [
        (
            "source",
            torvyn_fixtures::counting_source,
            Interface::Source,
        ),
        ("filter", torvyn_fixtures::modulo_filter, Interface::Filter),
        ("router", torvyn_fixtures::parity_router, Interface::Router),
        (
            "aggregator",
            torvyn_fixtures::concat_aggregator,
            Interface::Aggregator,
        ),
        ("sink", torvyn_fixtures::recording_sink, Interface::Sink),
    ];
    let mut components = BTreeMap::new();
    for (name, make, role) in fixtures {
        let component = common::compile(&engine, name, &build(make));
        let path = component.path_for(role).unwrap().clone();
        match version {
            Some(_) => assert!(matches!(path, CallPath::Dynamic(_)), "{name}: {path}"),
            None => assert_eq!(path, CallPath::Typed, "{name}"),
        }
        let lifecycle = component.path_for(Interface::Lifecycle).unwrap().clone();
        assert_eq!(
            matches!(lifecycle, CallPath::Dynamic(_)),
            version.is_some(),
            "{name}"
        );
        components.insert(name.to_string(), component);
    }
    let (node, edge) = (common::flow_node, common::flow_edge);
    let spec = FlowSpec::new(
        "every-role",
        vec![
            node("numbers", "source", Interface::Source, "40"),
            node("not-thirds", "filter", Interface::Filter, "3"),
            node("split", "router", Interface::Router, ""),
            node("pairs", "aggregator", Interface::Aggregator, "2"),
            node("evens", "sink", Interface::Sink, "3"),
            node("odds", "sink", Interface::Sink, "4"),
            node("audit", "sink", Interface::Sink, "1000"),
        ],
        vec![
            edge("numbers", "output", "not-thirds"),
            edge("not-thirds", "output", "split"),
            edge("split", "even", "pairs"),
            edge("pairs", "output", "evens"),
            edge("split", "odd", "odds"),
            edge("split", "audit", "audit"),
        ],
    );
    let mut flow = Flow::instantiate(&engine, spec, &components).unwrap();
    let mut delivered = Vec::new();
    let report = flow
        .run(|sink, element| {
            delivered.push((
                sink.to_string(),
                String::from_utf8(element.payload.to_vec()).unwrap(),
            ))
        })
        .unwrap();
    let mut queries = Vec::new();
    for name in ["numbers", "evens", "odds", "audit"] {
        let instance = flow.instance(name).unwrap();
        common::assert_nothing_held(instance);
        for query in instance.host().capability_queries() {
            queries.push(format!("{name}: {query}"));
        }
    }
    (delivered, queries, report)
}

#[test]
fn every_role_runs_on_the_dynamic_path_as_on_the_typed_one() {
    let (typed, typed_queries, typed_report) = every_role(None);
    let (dynamic, dynamic_queries, dynamic_report) = every_role(Some("0.2.0"));
    assert_eq!(dynamic, typed);
    assert_eq!(dynamic_queries, typed_queries);
    let counts = |report: &torvyn_engine::FlowReport| -> Vec<(String, u64, u64, u64, u64)> {
        report
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    n.elements_in,
                    n.elements_out,
                    n.dropped,
                    n.pauses,
                )
            })
            .collect()
    };
    assert_eq!(counts(&dynamic_report), counts(&typed_report));
    // And both did what the flow says, not only the same thing: elements
    // 0..39; `not-thirds` drops the 14 multiples of 3; `split` sees the 26
    // left numbered 0..25 (the runtime renumbers each stage's input): even
    // numbers to `evens` through `pairs` (joined 2 by 2, the odd one
    // flushed at the end), odd ones to `odds`, every 5th to `audit` too.
    let expected: Vec<(String, String)> = [
        ("audit", "element 1"),
        ("odds", "element 2"),
        ("evens", "element 1element 4"),
        ("odds", "element 5"),
        ("odds", "element 8"),
        ("audit", "element 8"),
        ("evens", "element 7element 10"),
        ("odds", "element 11"),
        ("odds", "element 14"),
        ("evens", "element 13element 16"),
        ("audit", "element 16"),
        ("odds", "element 17"),
        ("odds", "element 20"),
        ("evens", "element 19element 22"),
        ("odds", "element 23"),
        ("audit", "element 23"),
        ("odds", "element 26"),
        ("evens", "element 25element 28"),
        ("odds", "element 29"),
        ("audit", "element 31"),
        ("odds", "element 32"),
        ("evens", "element 31element 34"),
        ("odds", "element 35"),
        ("odds", "element 38"),
        ("audit", "element 38"),
        ("evens", "element 37"),
    ]
    .into_iter()
    .map(|(sink, payload)| (sink.to_string(), payload.to_string()))
    .collect();
    assert_eq!(dynamic, expected);
    let rows: Vec<(String, u64, u64, u64, u64)> = [
        ("numbers", 40, 40, 0, 0),
        ("not-thirds", 40, 26, 14, 0),
        ("split", 26, 32, 0, 0),
        ("audit", 6, 6, 0, 0),
        ("odds", 13, 13, 0, 3),
        ("pairs", 13, 7, 0, 0),
        ("evens", 7, 7, 0, 2),
    ]
    .into_iter()
    .map(|(name, a, b, c, d)| (name.to_string(), a, b, c, d))
    .collect();
    assert_eq!(counts(&dynamic_report), rows);
    // The sinks' pauses reached the source, and every stage ended.
    let mut queries = ["numbers: fixture:pause", "numbers: fixture:ready"].repeat(3);
    queries.extend([
        "numbers: fixture:pause",
        "numbers: fixture:teardown",
        "evens: fixture:complete",
        "evens: fixture:teardown",
        "odds: fixture:complete",
        "odds: fixture:teardown",
        "audit: fixture:complete",
        "audit: fixture:teardown",
    ]);
    assert_eq!(dynamic_queries, queries);
}
