//! Flows with every stage role, from code and from flow files, on the sync
//! and the async driver: filters, aggregators, routers fanning out, per-node
//! config, backpressure, failures, and invalid flows refused by name.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{engine, flow_edge as edge, flow_node as node};
use torvyn_engine::flow::file::FlowFile;
use torvyn_engine::flow::{EdgeSpec, NodeSpec};
use torvyn_engine::{
    CompiledComponent, Error, Flow, FlowSpec, Interface, WasmtimeEngine, WasmtimeInstance,
};

/// A fixture: its component name and the builder of its bytes.
type Fixture = (&'static str, fn() -> Vec<u8>);

/// Every fixture a flow here uses, compiled, by component name.
fn components(engine: &WasmtimeEngine) -> BTreeMap<String, CompiledComponent> {
    let fixtures: [Fixture; 7] = [
        ("source", torvyn_fixtures::counting_source),
        ("upper", torvyn_fixtures::uppercase_processor),
        ("filter", torvyn_fixtures::modulo_filter),
        ("aggregator", torvyn_fixtures::concat_aggregator),
        ("router", torvyn_fixtures::parity_router),
        ("sink", torvyn_fixtures::recording_sink),
        ("third-traps", torvyn_fixtures::faults::unreachable_on_third),
    ];
    fixtures
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), common::compile(engine, name, &bytes())))
        .collect()
}

fn spec(nodes: Vec<NodeSpec>, edges: Vec<EdgeSpec>) -> FlowSpec {
    FlowSpec::new("test", nodes, edges)
}

/// Source → filter → aggregator → sink, each node with its own config.
fn token_flow(count: u64) -> FlowSpec {
    spec(
        vec![
            node("tokens", "source", Interface::Source, &count.to_string()),
            node("filter", "filter", Interface::Filter, "3"),
            node("sentences", "aggregator", Interface::Aggregator, "4"),
            node("out", "sink", Interface::Sink, "2"),
        ],
        vec![
            edge("tokens", "output", "filter"),
            edge("filter", "output", "sentences"),
            edge("sentences", "output", "out"),
        ],
    )
}

/// What the token flow must deliver: every third element (by the filter's
/// input numbering) dropped, the rest concatenated four at a time, the
/// remainder flushed at the end.
fn expected_sentences(count: u64) -> Vec<String> {
    let kept: Vec<String> = (0..count)
        .filter(|n| n % 3 != 0)
        .map(|n| format!("element {n}"))
        .collect();
    kept.chunks(4).map(|chunk| chunk.concat()).collect()
}

fn run_collecting(
    flow: &mut Flow<WasmtimeInstance>,
) -> torvyn_engine::Result<Vec<(String, String)>> {
    let mut seen = Vec::new();
    flow.run(|sink, element| {
        seen.push((
            sink.to_string(),
            String::from_utf8(element.payload.to_vec()).unwrap(),
        ))
    })?;
    Ok(seen)
}

#[test]
fn filter_aggregator_and_per_node_config_on_the_sync_driver() {
    let engine = engine();
    let components = components(&engine);
    let mut flow = Flow::instantiate(&engine, token_flow(22), &components).unwrap();
    let seen = run_collecting(&mut flow).unwrap();
    // Tokens 0..21; the filter drops every third (0, 3, ..., 21); the
    // aggregator joins 4 at a time and flushes the rest of 2 at the end.
    let expected = [
        "element 1element 2element 4element 5",
        "element 7element 8element 10element 11",
        "element 13element 14element 16element 17",
        "element 19element 20",
    ]
    .map(|payload| ("out".to_string(), payload.to_string()));
    assert_eq!(seen, expected);
    assert_eq!(
        expected_sentences(22),
        expected.map(|(_, payload)| payload),
        "the helper the other tests use says the same"
    );

    let report = flow.report(std::time::Duration::ZERO);
    let node = |name: &str| report.node(name).unwrap().clone();
    assert_eq!(
        (node("tokens").elements_out, node("tokens").calls()),
        (22, 23)
    );
    assert_eq!(
        (
            node("filter").elements_in,
            node("filter").dropped,
            node("filter").elements_out
        ),
        (22, 8, 14)
    );
    assert_eq!(
        (
            node("sentences").elements_in,
            node("sentences").elements_out
        ),
        (14, 4)
    );
    // The sink pauses every 2 elements (its own config): 2 pauses for 4.
    assert_eq!((node("out").elements_out, node("out").pauses), (4, 2));
    // The sink's pause at the 2nd sentence and its ready at the 3rd reached
    // the source (the 4th, flushed at the end, pauses a finished source).
    let source = flow
        .instance("tokens")
        .unwrap()
        .host()
        .capability_queries()
        .to_vec();
    assert_eq!(
        source,
        ["fixture:pause", "fixture:ready", "fixture:teardown"]
    );
    let sink = flow
        .instance("out")
        .unwrap()
        .host()
        .capability_queries()
        .to_vec();
    assert_eq!(sink, ["fixture:complete", "fixture:teardown"]);
}

#[test]
fn the_async_driver_gives_the_same_results_and_queues_backpressure() {
    let engine = std::sync::Arc::new(engine());
    let components = components(&engine);
    let runtime = common::runtime(2);
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for count in [22u64, 30, 7] {
            let (engine, components) = (engine.clone(), components.clone());
            tasks.spawn(async move {
                let mut spec = token_flow(count);
                // A queue of one: the source is paused whenever it runs ahead.
                spec.queue_depth = 1;
                let mut flow = Flow::instantiate_async(&*engine, spec, &components)
                    .await
                    .unwrap();
                let mut payloads = Vec::new();
                let report = flow
                    .run_async(|_, element| {
                        payloads.push(String::from_utf8(element.payload.to_vec()).unwrap())
                    })
                    .await
                    .unwrap();
                let queries = flow
                    .instance("tokens")
                    .unwrap()
                    .host()
                    .capability_queries()
                    .to_vec();
                let rows: Vec<(u64, u64, u64)> = report
                    .nodes
                    .iter()
                    .map(|n| (n.elements_in, n.elements_out, n.dropped))
                    .collect();
                (count, payloads, rows, queries)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (count, payloads, rows, queries) = joined.unwrap();
            assert_eq!(payloads, expected_sentences(count));
            // The filter drops the multiples of 3; the aggregator joins 4.
            let dropped = count.div_ceil(3);
            let kept = count - dropped;
            let sentences = kept.div_ceil(4);
            assert_eq!(
                rows,
                [
                    (count, count, 0),
                    (count, kept, dropped),
                    (kept, sentences, 0),
                    (sentences, sentences, 0)
                ],
                "{count} tokens"
            );
            // A queue of one: the source is paused and made ready in turn
            // (how often depends on the workers' timing), then torn down.
            let (told, last) = queries.split_at(queries.len() - 1);
            assert_eq!(last, ["fixture:teardown"], "{queries:?}");
            assert!(!told.is_empty(), "{queries:?}");
            for (i, query) in told.iter().enumerate() {
                let expected = ["fixture:pause", "fixture:ready"][i % 2];
                assert_eq!(query, expected, "{queries:?}");
            }
        }
    });
}

/// `limit(N)` counts elements, not pulls: with one of two sources
/// exhausted early, the other fills the count, on both drivers.
#[test]
fn a_limit_counts_elements_not_the_pull_that_finds_a_source_exhausted() {
    let engine = engine();
    let components = components(&engine);
    let two_sources = || {
        spec(
            vec![
                node("short", "source", Interface::Source, "3"),
                node("long", "source", Interface::Source, "100"),
                node("out", "sink", Interface::Sink, ""),
            ],
            vec![
                edge("short", "output", "out"),
                edge("long", "output", "out"),
            ],
        )
    };
    let mut flow = Flow::instantiate(&engine, two_sources(), &components)
        .unwrap()
        .limit(10);
    let seen = run_collecting(&mut flow).unwrap();
    let payloads: Vec<&str> = seen.iter().map(|(_, p)| p.as_str()).collect();
    // Taken in turn: three from each, then `long` alone.
    assert_eq!(
        payloads,
        [
            "element 0",
            "element 0",
            "element 1",
            "element 1",
            "element 2",
            "element 2",
            "element 3",
            "element 4",
            "element 5",
            "element 6"
        ]
    );
    // The sink numbers what it gets, whichever source it came from.
    let mut numbered = Vec::new();
    let mut flow = Flow::instantiate(&engine, two_sources(), &components)
        .unwrap()
        .limit(10);
    flow.run(|_, element| numbered.push(element.meta.sequence))
        .unwrap();
    assert_eq!(numbered, (0..10).collect::<Vec<u64>>());
    // The async feeder takes the sources in the same turns.
    let mut async_seen = Vec::new();
    let report = common::runtime(1).block_on(async {
        let mut flow = Flow::instantiate_async(&engine, two_sources(), &components)
            .await
            .unwrap()
            .limit(10);
        flow.run_async(|_, element| {
            async_seen.push((
                element.meta.sequence,
                String::from_utf8(element.payload.to_vec()).unwrap(),
            ))
        })
        .await
        .unwrap()
    });
    let expected: Vec<(u64, String)> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u64, p.to_string()))
        .collect();
    assert_eq!(async_seen, expected, "async driver");
    let rows: Vec<(u64, u64)> = report
        .nodes
        .iter()
        .map(|n| (n.elements_in, n.elements_out))
        .collect();
    assert_eq!(rows, [(3, 3), (7, 7), (10, 10)], "async driver");
}

#[test]
fn a_router_fans_out_to_every_edge_of_its_ports() {
    let engine = engine();
    let components = components(&engine);
    let flow_spec = spec(
        vec![
            node("numbers", "source", Interface::Source, "12"),
            node("split", "router", Interface::Router, ""),
            node("evens", "sink", Interface::Sink, "1000"),
            node("odds", "sink", Interface::Sink, "1000"),
            node("audit", "sink", Interface::Sink, "1000"),
        ],
        vec![
            edge("numbers", "output", "split"),
            edge("split", "even", "evens"),
            edge("split", "odd", "odds"),
            edge("split", "audit", "audit"),
            edge("split", "audit", "evens"),
        ],
    );
    let mut flow = Flow::instantiate(&engine, flow_spec, &components).unwrap();
    let seen = run_collecting(&mut flow).unwrap();
    let at = |sink: &str| -> Vec<String> {
        seen.iter()
            .filter(|(s, _)| s == sink)
            .map(|(_, p)| p.clone())
            .collect()
    };
    let names = |ns: &[u64]| -> Vec<String> { ns.iter().map(|n| format!("element {n}")).collect() };
    // Multiples of 5 also go to `audit`, whose edges lead to `audit` and `evens`.
    assert_eq!(at("evens"), names(&[0, 0, 2, 4, 5, 6, 8, 10, 10]));
    assert_eq!(at("odds"), names(&[1, 3, 5, 7, 9, 11]));
    assert_eq!(at("audit"), names(&[0, 5, 10]));
}

/// A guest cannot amplify: a router that names one port 100,000 times in
/// every answer gets each element delivered once down that port's edge,
/// on the typed path and on the dynamic one (the same router at contract
/// 0.2.0), on the sync and the async driver; the report counts one output
/// per element.
#[test]
fn a_port_named_many_times_in_one_answer_gets_the_element_once() {
    let engine = engine();
    let mut components = components(&engine);
    for (name, bytes) in [
        ("repeater", torvyn_fixtures::repeating_router(100_000)),
        (
            "repeater-0.2",
            torvyn_fixtures::at_contract_version("0.2.0", || {
                torvyn_fixtures::repeating_router(100_000)
            }),
        ),
    ] {
        components.insert(name.into(), common::compile(&engine, name, &bytes));
    }
    for router in ["repeater", "repeater-0.2"] {
        let flow_spec = || {
            spec(
                vec![
                    node("numbers", "source", Interface::Source, "10"),
                    node("split", router, Interface::Router, ""),
                    node("evens", "sink", Interface::Sink, "1000"),
                ],
                vec![
                    edge("numbers", "output", "split"),
                    edge("split", "even", "evens"),
                ],
            )
        };
        let mut flow = Flow::instantiate(&engine, flow_spec(), &components).unwrap();
        let seen = run_collecting(&mut flow).unwrap();
        assert_eq!(seen.len(), 10, "{router}: one delivery per element");
        let report = flow.report(std::time::Duration::ZERO);
        assert_eq!(report.node("split").unwrap().elements_out, 10, "{router}");
        assert_eq!(report.node("evens").unwrap().elements_in, 10, "{router}");

        let delivered = common::runtime(1).block_on(async {
            let mut flow: Flow<WasmtimeInstance> =
                Flow::instantiate_async(&engine, flow_spec(), &components)
                    .await
                    .unwrap();
            flow.run_async(|_, _| {}).await.unwrap().delivered()
        });
        assert_eq!(delivered, 10, "{router} on the async driver");
    }
}

#[test]
fn a_port_no_edge_leaves_is_an_error_naming_it() {
    let engine = engine();
    let components = components(&engine);
    let flow_spec = spec(
        vec![
            node("numbers", "source", Interface::Source, "12"),
            node("split", "router", Interface::Router, ""),
            node("evens", "sink", Interface::Sink, "1000"),
            node("odds", "sink", Interface::Sink, "1000"),
        ],
        vec![
            edge("numbers", "output", "split"),
            edge("split", "even", "evens"),
            edge("split", "odd", "odds"),
        ],
    );
    let mut flow = Flow::instantiate(&engine, flow_spec, &components).unwrap();
    match run_collecting(&mut flow) {
        Err(Error::Flow { detail, .. }) => {
            assert!(detail.contains("router `split`"), "{detail}");
            assert!(detail.contains("port `audit`"), "{detail}");
        }
        other => panic!("expected a flow error, got {other:?}"),
    }
    let report = flow.report(std::time::Duration::ZERO);
    assert_eq!(report.node("split").unwrap().errors, 1);
    // Element 0 is a multiple of 5: the run stops at the first element.
    assert_eq!(report.delivered(), 0);
}

#[test]
fn a_failure_stops_the_flow_and_every_node_is_still_torn_down() {
    let engine = engine();
    let components = components(&engine);
    let flow_spec = spec(
        vec![
            node("numbers", "source", Interface::Source, "10"),
            node("trap", "third-traps", Interface::Processor, ""),
            node("out", "sink", Interface::Sink, "1000"),
        ],
        vec![
            edge("numbers", "output", "trap"),
            edge("trap", "output", "out"),
        ],
    );
    let mut flow = Flow::instantiate(&engine, flow_spec, &components).unwrap();
    let error = run_collecting(&mut flow).unwrap_err();
    assert!(
        matches!(&error, Error::Trap { site, .. } if site.component == "third-traps"),
        "{error}"
    );
    let report = flow.report(std::time::Duration::ZERO);
    assert_eq!(report.node("trap").unwrap().errors, 1);
    assert_eq!(report.node("trap").unwrap().dropped, 2);
    for name in ["numbers", "out"] {
        let queries = flow
            .instance(name)
            .unwrap()
            .host()
            .capability_queries()
            .to_vec();
        assert!(
            queries.contains(&"fixture:teardown".to_string()),
            "{name}: {queries:?}"
        );
    }
}

#[test]
fn invalid_flows_are_refused_naming_what_is_wrong() {
    let engine = engine();
    let components = components(&engine);
    let refused = |flow_spec: FlowSpec, expected: &str| match Flow::instantiate(
        &engine,
        flow_spec,
        &components,
    ) {
        // The whole message: each refusal has its own.
        Err(Error::Flow { detail, .. }) => assert_eq!(detail, expected),
        other => panic!("expected a flow error with `{expected}`, got {other:?}"),
    };
    let source = || node("numbers", "source", Interface::Source, "3");
    let sink = || node("out", "sink", Interface::Sink, "");
    // A role the component lacks.
    refused(
        spec(
            vec![source(), node("f", "upper", Interface::Filter, ""), sink()],
            vec![edge("numbers", "output", "f"), edge("f", "output", "out")],
        ),
        "node `f`: component `upper` does not export `torvyn:filtering/filter`",
    );
    // An edge naming an unknown node.
    refused(
        spec(
            vec![source(), sink()],
            vec![edge("numbers", "output", "nowhere")],
        ),
        "edge numbers.output -> nowhere.input names an unknown node `nowhere`",
    );
    // A cycle.
    refused(
        spec(
            vec![
                source(),
                node("a", "upper", Interface::Processor, ""),
                node("b", "upper", Interface::Processor, ""),
                sink(),
            ],
            vec![
                edge("numbers", "output", "a"),
                edge("a", "output", "b"),
                edge("b", "output", "a"),
                edge("b", "output", "out"),
            ],
        ),
        "the edges form a cycle through `a`, `b`",
    );
    // No sink.
    refused(
        spec(
            vec![source(), node("a", "upper", Interface::Processor, "")],
            vec![edge("numbers", "output", "a")],
        ),
        "the flow has no sink",
    );
    // Into a source, out of a sink.
    refused(
        spec(
            vec![source(), sink()],
            vec![
                edge("numbers", "output", "out"),
                edge("out", "output", "numbers"),
            ],
        ),
        "edge out.output -> numbers.input leaves sink `out`: a sink has no outputs",
    );
    // No source.
    refused(
        spec(
            vec![node("a", "upper", Interface::Processor, ""), sink()],
            vec![edge("a", "output", "out")],
        ),
        "the flow has no source",
    );
    // An edge into a source.
    refused(
        spec(
            vec![
                source(),
                node("second", "source", Interface::Source, "1"),
                sink(),
            ],
            vec![
                edge("numbers", "output", "second"),
                edge("second", "output", "out"),
            ],
        ),
        "edge numbers.output -> second.input enters source `second`: a source has no inputs",
    );
    // A node nothing feeds.
    refused(
        spec(
            vec![
                source(),
                node("idle", "upper", Interface::Processor, ""),
                sink(),
            ],
            vec![
                edge("numbers", "output", "out"),
                edge("idle", "output", "out"),
            ],
        ),
        "node `idle` has no incoming edge",
    );
    // A node whose elements would go nowhere.
    refused(
        spec(
            vec![
                source(),
                node("end", "upper", Interface::Processor, ""),
                sink(),
            ],
            vec![
                edge("numbers", "output", "end"),
                edge("numbers", "output", "out"),
            ],
        ),
        "node `end` has no outgoing edge: its elements would go nowhere",
    );
    // A name given twice.
    refused(
        spec(
            vec![source(), sink(), node("out", "sink", Interface::Sink, "")],
            vec![edge("numbers", "output", "out")],
        ),
        "node `out` is declared twice",
    );
    // An edge from a node to itself.
    refused(
        spec(
            vec![
                source(),
                node("a", "upper", Interface::Processor, ""),
                sink(),
            ],
            vec![
                edge("numbers", "output", "a"),
                edge("a", "output", "a"),
                edge("a", "output", "out"),
            ],
        ),
        "edge a.output -> a.input is a cycle on `a`",
    );
    // A component nobody declared.
    refused(
        spec(
            vec![
                source(),
                node("x", "missing", Interface::Processor, ""),
                sink(),
            ],
            vec![edge("numbers", "output", "x"), edge("x", "output", "out")],
        ),
        "node `x` names component `missing`, which is not declared",
    );
}

const TOKEN_FILE: &str = r#"
[torvyn]
name = "token-streaming"
version = "0.1.0"
contract_version = "0.1.0"
description = "ignored here"

[[component]]
name = "token-source"
path = "source.wasm"

[[component]]
name = "content-filter"
path = "filter.wasm"
language = "wat"

[[component]]
name = "sentence-aggregator"
path = "aggregator.wasm"

[[component]]
name = "output-sink"
path = "sink.wasm"

[flow.main]
description = "Tokens -> Filter -> Aggregate -> Output"
default_queue_depth = 2

[flow.main.nodes.source]
component = "token-source"
interface = "torvyn:streaming/source"
config = "22"

[flow.main.nodes.filter]
component = "content-filter"
interface = "torvyn:filtering/filter@0.1.0"
config = "3"

[flow.main.nodes.aggregator]
component = "sentence-aggregator"
interface = "torvyn:aggregation/aggregator"
config = "4"

[flow.main.nodes.sink]
component = "output-sink"
interface = "torvyn:streaming/sink"
config = "2"

[[flow.main.edges]]
from = { node = "source", port = "output" }
to = { node = "filter", port = "input" }

[[flow.main.edges]]
from = { node = "filter", port = "output" }
to = { node = "aggregator", port = "input" }

[[flow.main.edges]]
from = { node = "aggregator", port = "output" }
to = { node = "sink", port = "input" }

[security]
default_capability_policy = "deny-all"

[runtime]
worker_threads = 2

[runtime.scheduling]
policy = "weighted-fair"
"#;

#[test]
fn a_flow_file_runs_with_its_components_configs_and_queue_depth() {
    let dir = tempfile::tempdir().unwrap();
    for (file, bytes) in [
        ("source.wasm", torvyn_fixtures::counting_source()),
        ("filter.wasm", torvyn_fixtures::modulo_filter()),
        ("aggregator.wasm", torvyn_fixtures::concat_aggregator()),
        ("sink.wasm", torvyn_fixtures::recording_sink()),
    ] {
        std::fs::write(dir.path().join(file), bytes).unwrap();
    }
    let path = dir.path().join("Torvyn.toml");
    std::fs::write(&path, TOKEN_FILE).unwrap();
    let file = FlowFile::read(&path).unwrap();
    assert_eq!(file.runtime.worker_threads, Some(2));
    let flow_spec = file.flow(None).unwrap().clone();
    assert_eq!(flow_spec.queue_depth, 2);
    let engine = engine();
    let components: BTreeMap<String, CompiledComponent> = file
        .components
        .iter()
        .map(|(name, location)| {
            assert!(Path::new(location).starts_with(dir.path()), "{location}");
            let bytes = std::fs::read(location).unwrap();
            (name.clone(), common::compile(&engine, name, &bytes))
        })
        .collect();
    let mut flow = Flow::instantiate(&engine, flow_spec, &components).unwrap();
    let seen = run_collecting(&mut flow).unwrap();
    let got: Vec<String> = seen.into_iter().map(|(_, payload)| payload).collect();
    assert_eq!(got, expected_sentences(22));
}

#[test]
fn flow_file_mistakes_are_named() {
    let path = Path::new("/flows/Torvyn.toml");
    let refused = |text: &str, expected: &[&str]| match FlowFile::parse(path, text) {
        Err(Error::Flow { detail, .. }) => {
            for part in expected {
                assert!(detail.contains(part), "expected `{part}` in: {detail}");
            }
        }
        other => panic!("expected a flow error, got {other:?}"),
    };
    // A misspelt key of ours, with its line.
    refused(
        &TOKEN_FILE.replace(
            "interface = \"torvyn:filtering/filter@0.1.0\"",
            "interfce = \"torvyn:filtering/filter\"",
        ),
        &["unknown field `interfce`", "line "],
    );
    refused(
        &TOKEN_FILE.replace("default_queue_depth = 2", "default_queue_dpth = 2"),
        &["default_queue_dpth"],
    );
    refused(&TOKEN_FILE.replace("[security]", "[securty]"), &["securty"]);
    // An edge to an unknown node.
    refused(
        &TOKEN_FILE.replace("to = { node = \"sink\"", "to = { node = \"sinks\""),
        &["unknown node `sinks`"],
    );
    // An interface that is no role.
    refused(
        &TOKEN_FILE.replace("torvyn:streaming/sink\"", "torvyn:streaming/lifecycle\""),
        &["node `sink`", "torvyn:streaming/lifecycle", "no stage role"],
    );
    // A component nobody declares.
    refused(
        &TOKEN_FILE.replace("component = \"output-sink\"", "component = \"output\""),
        &["component `output`"],
    );
    // Broken TOML.
    refused("[flow.main\n", &["line 1"]);
    // Every flow of a file is checked, chosen or not.
    let unfinished = format!("{TOKEN_FILE}\n[flow.other.nodes.a]\ncomponent = \"token-source\"\ninterface = \"torvyn:streaming/source\"\n");
    match FlowFile::parse(path, &unfinished) {
        Err(Error::Flow { flow, detail }) => {
            assert_eq!(
                (flow.as_str(), detail.as_str()),
                ("other", "the flow has no sink")
            )
        }
        other => panic!("{other:?}"),
    }
    // Which flow? Two valid ones: none chosen is an error naming both,
    // each name gives its own.
    let two = format!(
        "{TOKEN_FILE}\n[flow.other.nodes.a]\ncomponent = \"token-source\"\ninterface = \"torvyn:streaming/source\"\n\
         [flow.other.nodes.b]\ncomponent = \"output-sink\"\ninterface = \"torvyn:streaming/sink\"\n\
         [[flow.other.edges]]\nfrom = {{ node = \"a\" }}\nto = {{ node = \"b\" }}\n"
    );
    let file = FlowFile::parse(path, &two).unwrap();
    match file.flow(None) {
        Err(Error::Flow { detail, .. }) => assert_eq!(
            detail,
            "the file has several flows (main, other); choose one with --flow"
        ),
        other => panic!("{other:?}"),
    }
    let other = file.flow(Some("other")).unwrap();
    let names: Vec<&str> = other.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!((other.name.as_str(), names), ("other", vec!["a", "b"]));
    let main = file.flow(Some("main")).unwrap();
    assert_eq!((main.name.as_str(), main.nodes.len()), ("main", 4));
    let file = FlowFile::parse(path, TOKEN_FILE).unwrap();
    assert_eq!(
        file.flow(None).unwrap().name,
        "main",
        "one flow: no need to choose"
    );
    match file.flow(Some("mian")) {
        Err(Error::Flow { detail, .. }) => {
            assert!(detail.contains("no flow `mian` (flows: main)"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(file.components["content-filter"], "/flows/filter.wasm");
}

/// Per source, the most of its elements pulled but not yet pushed to the
/// sink, seen at each push: two mock sources (`a`, `b`, 30 elements each)
/// into one sink, on the async driver, with `depths` as the edges'
/// `queue_depth`.
fn most_in_flight(depths: [Option<usize>; 2]) -> [u64; 2] {
    use std::sync::{Arc, Mutex};
    use torvyn_engine::mock::{MockComponent, MockEngine};
    use torvyn_engine::{Backpressure, Element, WasmEngine};
    // pulled, pushed, most in flight; per source.
    let counts = Arc::new(Mutex::new([[0u64; 3]; 2]));
    let mut engine = MockEngine::new();
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        let counts = counts.clone();
        engine = engine.with(MockComponent::new(name).on_pull(move || {
            let mut counts = counts.lock().unwrap();
            counts[i][0] += 1;
            Ok((counts[i][0] <= 30).then(|| Element::new(0, "", name)))
        }));
    }
    let seen = counts.clone();
    let engine = engine.with(MockComponent::new("sink").on_push(move |element| {
        let i = usize::from(&element.payload[..] == b"b");
        let mut counts = seen.lock().unwrap();
        let in_flight = counts[i][0] - counts[i][1];
        counts[i][2] = counts[i][2].max(in_flight);
        counts[i][1] += 1;
        Ok(Backpressure::Ready)
    }));
    let mut edges = vec![edge("a", "output", "sink"), edge("b", "output", "sink")];
    for (edge, depth) in edges.iter_mut().zip(depths) {
        edge.queue_depth = depth;
    }
    let spec = spec(
        vec![
            node("a", "a", Interface::Source, ""),
            node("b", "b", Interface::Source, ""),
            node("sink", "sink", Interface::Sink, ""),
        ],
        edges,
    );
    let components: BTreeMap<String, _> = ["a", "b", "sink"]
        .into_iter()
        .map(|name| (name.to_string(), engine.compile(name, b"").unwrap()))
        .collect();
    common::runtime(1).block_on(async {
        let mut flow = Flow::instantiate_async(&engine, spec, &components)
            .await
            .unwrap();
        let report = flow.run_async(|_, _| {}).await.unwrap();
        assert_eq!(report.delivered(), 60);
    });
    let counts = counts.lock().unwrap();
    [counts[0][2], counts[1][2]]
}

#[test]
fn an_edge_queue_depth_bounds_its_source_on_the_async_driver() {
    // Each source holds at most its own edge's depth in the queue (plus the
    // element being pushed); without one, the flow's 64 (so all 30 may wait).
    let [a, b] = most_in_flight([Some(1), Some(5)]);
    assert!(
        (1..=2).contains(&a),
        "source a: {a} in flight with queue_depth 1"
    );
    assert!(
        (5..=6).contains(&b),
        "source b: {b} in flight with queue_depth 5"
    );
    let [a, b] = most_in_flight([None, Some(3)]);
    assert!(a > 6, "source a: {a} in flight with the flow's 64");
    assert!(
        (3..=4).contains(&b),
        "source b: {b} in flight with queue_depth 3"
    );
    // Zero is refused by name.
    let mut spec = token_flow(3);
    spec.edges[0].queue_depth = Some(0);
    let engine = engine();
    match Flow::instantiate(&engine, spec, &components(&engine)) {
        Err(Error::Flow { detail, .. }) => assert!(
            detail.contains("edge tokens.output -> filter.input: queue_depth must be at least 1"),
            "{detail}"
        ),
        other => panic!("expected a flow error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_node_s_own_limits_apply_to_its_instance_only() {
    use torvyn_engine::flow::NodeLimits;
    // Fuel for the filter only, on an engine that allows per-component fuel.
    let engine = WasmtimeEngine::new(
        torvyn_engine::EngineConfig::builder()
            .component_fuel(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    let compiled = components(&engine);
    let mut spec = token_flow(22);
    spec.nodes[1].limits = NodeLimits::default();
    spec.nodes[1].limits.fuel_per_call = Some(10_000_000);
    let mut flow = Flow::instantiate(&engine, spec.clone(), &compiled).unwrap();
    let seen = run_collecting(&mut flow).unwrap();
    assert_eq!(seen.len(), expected_sentences(22).len());
    let report = flow.report(std::time::Duration::ZERO);
    let fuel: Vec<u64> = report.nodes.iter().map(|n| n.fuel).collect();
    assert!(fuel[1] > 0, "{fuel:?}");
    assert_eq!([fuel[0], fuel[2], fuel[3]], [0, 0, 0], "{fuel:?}");
    // Too little for one call: that node fails, named.
    spec.nodes[1].limits.fuel_per_call = Some(5);
    let mut flow = Flow::instantiate(&engine, spec.clone(), &compiled).unwrap();
    match run_collecting(&mut flow) {
        Err(Error::FuelExhausted { site }) => assert_eq!(site.component, "filter"),
        other => panic!("expected fuel exhaustion, got {other:?}"),
    }
    // A memory limit below the instance's first memory: refused at
    // instantiation.
    spec.nodes[1].limits = NodeLimits::default();
    spec.nodes[1].limits.max_memory_bytes = Some(1024);
    match Flow::instantiate(&engine, spec.clone(), &compiled) {
        Err(Error::MemoryLimit { site, detail }) => {
            assert_eq!(
                (site.component.as_str(), site.function.as_str()),
                ("filter", "instantiate")
            );
            assert_eq!(
                detail,
                "linear memory growth from 0 to 65536 bytes refused: the instance's memories \
                 would hold 65536 bytes, limit 1024"
            );
        }
        Err(other) => panic!("expected a memory limit, got {other:?}"),
        Ok(_) => panic!("instantiated under a 1 KiB memory limit"),
    }
    // On an engine without per-component fuel, a node's fuel is refused
    // when the flow is made, naming the node.
    let plain = common::engine();
    let mut spec = token_flow(3);
    spec.nodes[1].limits.fuel_per_call = Some(1000);
    match Flow::instantiate(&plain, spec, &components(&plain)) {
        Err(Error::Flow { detail, .. }) => assert!(
            detail.contains("node `filter`: its limits:")
                && detail.contains("component_fuel(true)"),
            "{detail}"
        ),
        other => panic!("expected a flow error, got {:?}", other.map(|_| ())),
    }
}

/// Runs `flow` on the sync driver or as a task of a 2-worker runtime
/// (bounded: a hang fails the test, named), returning what each sink got.
fn run_on(
    flow: &mut Flow<WasmtimeInstance>,
    on_async: bool,
) -> torvyn_engine::Result<Vec<(String, String)>> {
    if !on_async {
        return run_collecting(flow);
    }
    let mut seen = Vec::new();
    let ran = common::runtime(2).block_on(async {
        let run = flow.run_async(|sink, element| {
            seen.push((
                sink.to_string(),
                String::from_utf8(element.payload.to_vec()).unwrap(),
            ))
        });
        tokio::time::timeout(std::time::Duration::from_secs(60), run)
            .await
            .expect("the async driver ended within 60 s after a failure")
    });
    ran.map(|_| seen)
}

/// Whether node `name`'s instance ran its `teardown` (the fixtures report
/// it as the capability query `fixture:teardown`).
fn torn_down(flow: &mut Flow<WasmtimeInstance>, name: &str) -> bool {
    flow.instance(name)
        .unwrap()
        .host()
        .capability_queries()
        .iter()
        .any(|query| query == "fixture:teardown")
}

/// A stage failing mid-flow, on both drivers: the run returns that error
/// (its kind, component and function), does not hang, every other node's
/// `teardown` runs, and the report's rows are what ran. The failure is in
/// `process` (a trap at the third element), in a source's `pull` and in an
/// aggregator's end-of-stream `flush` (both spin until their fuel is gone).
#[test]
fn a_stage_failing_mid_flow_ends_either_driver_with_its_error_and_every_teardown() {
    use torvyn_fixtures::hostile::{spins_in, SpinIn};
    let engine = WasmtimeEngine::new(
        torvyn_engine::EngineConfig::builder()
            .fuel_per_call(Some(20_000_000))
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut components = components(&engine);
    for (name, bytes) in [
        ("spinning-pull", spins_in(SpinIn::Pull)),
        ("spinning-flush", spins_in(SpinIn::Flush)),
        (
            "trapping-complete",
            torvyn_fixtures::recording_sink_trapping_complete(),
        ),
    ] {
        components.insert(name.into(), common::compile(&engine, name, &bytes));
    }
    for on_async in [false, true] {
        let driver = if on_async { "async" } else { "sync" };
        // A trap in `process` at the third element.
        let mut flow = Flow::instantiate(
            &engine,
            spec(
                vec![
                    node("numbers", "source", Interface::Source, "10"),
                    node("trap", "third-traps", Interface::Processor, ""),
                    node("out", "sink", Interface::Sink, "1000"),
                ],
                vec![
                    edge("numbers", "output", "trap"),
                    edge("trap", "output", "out"),
                ],
            ),
            &components,
        )
        .unwrap();
        let error = run_on(&mut flow, on_async).unwrap_err();
        assert!(
            matches!(&error, Error::Trap { site, .. }
                if site.component == "third-traps" && site.function == "process"),
            "{driver}: {error:?}"
        );
        let report = flow.report(std::time::Duration::ZERO);
        let trap = report.node("trap").unwrap();
        assert_eq!(
            (
                trap.elements_in,
                trap.elements_out,
                trap.dropped,
                trap.errors
            ),
            (3, 0, 2, 1),
            "{driver}"
        );
        assert_eq!(report.node("out").unwrap().elements_in, 0, "{driver}");
        // The sync driver pulls one element at a time; the async feeder
        // pulls ahead of the failure, up to the source's queue bound.
        let pulled = report.node("numbers").unwrap().elements_out;
        match on_async {
            false => assert_eq!(pulled, 3),
            true => assert!((3..=10).contains(&pulled), "{pulled}"),
        }
        for name in ["numbers", "out"] {
            assert!(torn_down(&mut flow, name), "{driver}: {name} torn down");
        }

        // A source whose `pull` never returns: its fuel ends it.
        let mut flow = Flow::instantiate(
            &engine,
            spec(
                vec![
                    node("spin", "spinning-pull", Interface::Source, ""),
                    node("out", "sink", Interface::Sink, "1000"),
                ],
                vec![edge("spin", "output", "out")],
            ),
            &components,
        )
        .unwrap();
        let error = run_on(&mut flow, on_async).unwrap_err();
        assert!(
            matches!(&error, Error::FuelExhausted { site }
                if site.component == "spinning-pull" && site.function == "pull"),
            "{driver}: {error:?}"
        );
        let report = flow.report(std::time::Duration::ZERO);
        assert_eq!(report.node("spin").unwrap().errors, 1, "{driver}");
        assert_eq!(report.node("out").unwrap().elements_in, 0, "{driver}");
        assert!(torn_down(&mut flow, "out"), "{driver}: out torn down");

        // A sink whose `complete` traps at the end of the stream.
        let mut flow = Flow::instantiate(
            &engine,
            spec(
                vec![
                    node("numbers", "source", Interface::Source, "3"),
                    node("out", "trapping-complete", Interface::Sink, "1000"),
                ],
                vec![edge("numbers", "output", "out")],
            ),
            &components,
        )
        .unwrap();
        let error = run_on(&mut flow, on_async).unwrap_err();
        assert!(
            matches!(&error, Error::Trap { site, .. }
                if site.component == "trapping-complete" && site.function == "complete"),
            "{driver}: {error:?}"
        );
        let report = flow.report(std::time::Duration::ZERO);
        let out = report.node("out").unwrap();
        assert_eq!((out.elements_in, out.errors), (3, 1), "{driver}");
        assert!(
            torn_down(&mut flow, "numbers"),
            "{driver}: numbers torn down"
        );

        // An aggregator whose end-of-stream `flush` never returns.
        let mut flow = Flow::instantiate(
            &engine,
            spec(
                vec![
                    node("numbers", "source", Interface::Source, "5"),
                    node("agg", "spinning-flush", Interface::Aggregator, ""),
                    node("out", "sink", Interface::Sink, "1000"),
                ],
                vec![
                    edge("numbers", "output", "agg"),
                    edge("agg", "output", "out"),
                ],
            ),
            &components,
        )
        .unwrap();
        let error = run_on(&mut flow, on_async).unwrap_err();
        assert!(
            matches!(&error, Error::FuelExhausted { site }
                if site.component == "spinning-flush" && site.function == "flush"),
            "{driver}: {error:?}"
        );
        let report = flow.report(std::time::Duration::ZERO);
        let agg = report.node("agg").unwrap();
        assert_eq!(
            (agg.elements_in, agg.elements_out, agg.errors),
            (5, 0, 1),
            "{driver}"
        );
        assert_eq!(report.node("numbers").unwrap().elements_out, 5, "{driver}");
        assert_eq!(report.node("out").unwrap().elements_in, 0, "{driver}");
        for name in ["numbers", "out"] {
            assert!(torn_down(&mut flow, name), "{driver}: {name} torn down");
        }
    }
}

/// The smallest streams, on both drivers: a source with nothing to give
/// (every node still runs its end: the aggregator flushes nothing, the sink
/// completes, all rows are zero) and payloads of zero bytes (they go
/// through a processor, a filter and an aggregator as any other).
#[test]
fn an_empty_source_and_empty_payloads_flow_like_any_other() {
    let engine = engine();
    let mut components = components(&engine);
    components.insert(
        "empty-payloads".into(),
        common::compile(&engine, "empty-payloads", &torvyn_fixtures::sized_source(0)),
    );
    for on_async in [false, true] {
        let driver = if on_async { "async" } else { "sync" };
        let mut flow = Flow::instantiate(&engine, token_flow(0), &components).unwrap();
        let seen = run_on(&mut flow, on_async).unwrap();
        assert_eq!(seen, [], "{driver}");
        let report = flow.report(std::time::Duration::ZERO);
        let rows: Vec<(u64, u64, u64)> = report
            .nodes
            .iter()
            .map(|n| (n.elements_in, n.elements_out, n.dropped))
            .collect();
        assert_eq!(rows, [(0, 0, 0); 4], "{driver}");
        // One pull that found it exhausted.
        assert_eq!(report.node("tokens").unwrap().calls(), 1, "{driver}");
        let sink = flow
            .instance("out")
            .unwrap()
            .host()
            .capability_queries()
            .to_vec();
        assert_eq!(sink, ["fixture:complete", "fixture:teardown"], "{driver}");

        let mut flow = Flow::instantiate(
            &engine,
            spec(
                vec![
                    node("zeros", "empty-payloads", Interface::Source, "6"),
                    node("upper", "upper", Interface::Processor, ""),
                    node("pairs", "aggregator", Interface::Aggregator, "4"),
                    node("out", "sink", Interface::Sink, "1000"),
                ],
                vec![
                    edge("zeros", "output", "upper"),
                    edge("upper", "output", "pairs"),
                    edge("pairs", "output", "out"),
                ],
            ),
            &components,
        )
        .unwrap();
        let seen = run_on(&mut flow, on_async).unwrap();
        // Four joined into one empty payload, the last two flushed as one.
        assert_eq!(
            seen,
            [
                ("out".to_string(), String::new()),
                ("out".to_string(), String::new())
            ],
            "{driver}"
        );
        let report = flow.report(std::time::Duration::ZERO);
        let rows: Vec<(u64, u64)> = report
            .nodes
            .iter()
            .map(|n| (n.elements_in, n.elements_out))
            .collect();
        assert_eq!(rows, [(6, 6), (6, 6), (6, 2), (2, 2)], "{driver}");
    }
}

/// One source feeding two sinks, one of which pauses every 2 elements: a
/// pause holds nothing back (both sinks get every element, in order), and
/// the source is told `pause` when the pausing sink asks and `ready` when
/// it takes the next element.
#[test]
fn one_source_two_sinks_one_pausing() {
    let engine = engine();
    let components = components(&engine);
    // Source → a sink pausing every `slow` elements, and a fast one. On the
    // async driver the source runs at most one element ahead, so the sink's
    // first pause (at its 2nd element) reaches it before its 4th pull at
    // the latest.
    let flow_of = |slow: &str| {
        let mut flow_spec = spec(
            vec![
                node("numbers", "source", Interface::Source, "5"),
                node("slow", "sink", Interface::Sink, slow),
                node("fast", "sink", Interface::Sink, "1000"),
            ],
            vec![
                edge("numbers", "output", "slow"),
                edge("numbers", "output", "fast"),
            ],
        );
        flow_spec.queue_depth = 1;
        Flow::instantiate(&engine, flow_spec, &components).unwrap()
    };
    for on_async in [false, true] {
        let driver = if on_async { "async" } else { "sync" };
        let mut flow = flow_of("2");
        let seen = run_on(&mut flow, on_async).unwrap();
        let expected: Vec<(String, String)> = (0..5)
            .flat_map(|i| ["slow", "fast"].map(|sink| (sink.to_string(), format!("element {i}"))))
            .collect();
        assert_eq!(seen, expected, "{driver}: depth-first, edge by edge");
        let report = flow.report(std::time::Duration::ZERO);
        assert_eq!(
            (
                report.node("slow").unwrap().pauses,
                report.node("fast").unwrap().pauses
            ),
            (2, 0),
            "{driver}"
        );
        let queries = flow
            .instance("numbers")
            .unwrap()
            .host()
            .capability_queries()
            .to_vec();
        let told = [
            "fixture:pause",
            "fixture:ready",
            "fixture:pause",
            "fixture:ready",
            "fixture:teardown",
        ];
        match on_async {
            // Paused at the sink's 2nd and 4th element, ready at its 3rd
            // and 5th: the sync driver tells the source at once.
            false => assert_eq!(queries, told),
            // The async feeder tells the source before its next pull, one
            // element ahead at most: the sink's pauses and the queue's bound
            // alike reach it, as `pause` then `ready`, alternating, at
            // least once (a `ready` due after its last pull is never told:
            // it would change nothing).
            true => {
                let (teardown, signals) = queries.split_last().unwrap();
                assert_eq!(teardown, "fixture:teardown", "{queries:?}");
                assert!(
                    !signals.is_empty(),
                    "no pause reached the source: {queries:?}"
                );
                for (i, signal) in signals.iter().enumerate() {
                    let expected = ["fixture:pause", "fixture:ready"][i % 2];
                    assert_eq!(signal, expected, "{queries:?}");
                }
            }
        }
    }
    // On the async driver the sink's pauses are what the source hears, not
    // only the queue's bound: beside a sink that pauses, the source stays
    // paused across the bound's own pause and ready, so it hears fewer
    // signals than beside sinks that never pause (measured: 6 against 10).
    let heard = |slow: &str| -> Vec<String> {
        let mut flow = flow_of(slow);
        run_on(&mut flow, true).unwrap();
        let mut queries = flow
            .instance("numbers")
            .unwrap()
            .host()
            .capability_queries()
            .to_vec();
        queries.pop();
        queries
    };
    let (pausing, never) = (heard("2"), heard("1000"));
    assert!(
        !pausing.is_empty() && pausing.len() < never.len(),
        "beside a pausing sink {pausing:?}, beside none {never:?}"
    );
}

/// Inputs near and over the buffer budget and the transfer limit inside a
/// flow: under them every element goes through source, processor and sink
/// whole; over them the source's `pull` fails, and the error names the
/// limit (the budget: the guest traps without its buffer, and the trap
/// carries the host's refusal; the transfer: a `MemoryLimit`).
#[test]
fn inputs_near_and_over_the_buffer_budget_and_transfer_limit_in_a_flow() {
    let run = |budget: u64, transfer: usize, payload: u32| {
        let engine = WasmtimeEngine::new(
            torvyn_engine::EngineConfig::builder()
                .buffer_budget_bytes(budget)
                .max_transfer_bytes(transfer)
                .build()
                .unwrap(),
        )
        .unwrap();
        let mut components = components(&engine);
        let big = common::compile(&engine, "big", &torvyn_fixtures::sized_source(payload));
        components.insert("big".into(), big);
        let mut flow = Flow::instantiate(
            &engine,
            spec(
                vec![
                    node("big", "big", Interface::Source, "3"),
                    node("upper", "upper", Interface::Processor, ""),
                    node("out", "sink", Interface::Sink, "1000"),
                ],
                vec![
                    edge("big", "output", "upper"),
                    edge("upper", "output", "out"),
                ],
            ),
            &components,
        )
        .unwrap();
        let mut sizes = Vec::new();
        flow.run(|_, element| sizes.push(element.payload.len()))
            .map(|_| sizes)
    };
    let (kib, mib) = (1u64 << 10, 1u64 << 20);
    // Under a 64 KiB budget: 60 KiB payloads pass every stage.
    assert_eq!(run(64 * kib, 64 << 20, 60 << 10).unwrap(), [60 << 10; 3]);
    match run(64 * kib, 64 << 20, 64 << 10).unwrap_err() {
        Error::Trap { site, trap, .. } => {
            assert_eq!(
                (site.component.as_str(), site.function.as_str()),
                ("big", "pull")
            );
            assert!(
                trap.ends_with(
                    "(after the host refused it: buffer budget exhausted: 0 of 65536 bytes in \
                     use, 65536 more requested (limit buffer_budget_bytes))"
                ),
                "{trap}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Under a 64 KiB transfer limit (default budget): 60 KiB pass, 80 KiB not.
    assert_eq!(run(64 * mib, 64 << 10, 60 << 10).unwrap(), [60 << 10; 3]);
    match run(64 * mib, 64 << 10, 80 << 10).unwrap_err() {
        Error::MemoryLimit { site, detail } => {
            assert_eq!(
                (site.component.as_str(), site.function.as_str()),
                ("big", "pull")
            );
            assert_eq!(
                detail,
                "the guest passed more than 65536 bytes to the host in one transfer \
                 (limit max_transfer_bytes)"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// The other list a guest returns that the host acts on, `flush`'s
/// elements, on the typed and the dynamic path: each needs a buffer handle
/// of its own (one handle twice is a trap), so a flush carries at most the
/// handles the guest may hold (`max_handles`, 10,000 by default), each made
/// by the guest, one host call at a time. 5,000 arrive whole and in order;
/// 20,000 stop at the 10,001st handle, with the limit named.
#[test]
fn a_flush_list_is_bounded_by_the_handles_its_guest_may_hold() {
    let engine = engine();
    let mut components = components(&engine);
    for (name, count) in [("flood-5000", 5_000), ("flood-20000", 20_000)] {
        let typed = torvyn_fixtures::hostile::flush_flood(count);
        let dynamic = torvyn_fixtures::at_contract_version("0.2.0", || {
            torvyn_fixtures::hostile::flush_flood(count)
        });
        components.insert(name.into(), common::compile(&engine, name, &typed));
        let name_02 = format!("{name}-0.2");
        let compiled = common::compile(&engine, &name_02, &dynamic);
        components.insert(name_02, compiled);
    }
    let flow = |aggregator: &str| {
        spec(
            vec![
                node("numbers", "source", Interface::Source, "1"),
                node("agg", aggregator, Interface::Aggregator, ""),
                node("out", "sink", Interface::Sink, "1000000"),
            ],
            vec![
                edge("numbers", "output", "agg"),
                edge("agg", "output", "out"),
            ],
        )
    };
    for suffix in ["", "-0.2"] {
        let mut small =
            Flow::instantiate(&engine, flow(&format!("flood-5000{suffix}")), &components).unwrap();
        let mut delivered = 0u64;
        small
            .run(|_, element| {
                assert_eq!(
                    element.meta.sequence, delivered,
                    "the sink numbers what it gets"
                );
                assert_eq!(element.payload.len(), 4, "each its own 4-byte buffer");
                delivered += 1;
            })
            .unwrap();
        assert_eq!(delivered, 5_000, "{suffix}");
        let report = small.report(std::time::Duration::ZERO);
        assert_eq!(report.node("agg").unwrap().elements_out, 5_000);

        let mut large =
            Flow::instantiate(&engine, flow(&format!("flood-20000{suffix}")), &components).unwrap();
        match large.run(|_, _| panic!("nothing of a refused flush is delivered")) {
            Err(Error::MemoryLimit { site, detail }) => {
                assert_eq!(site.function, "flush", "{suffix}");
                assert_eq!(
                    detail,
                    "the guest would hold more than 10000 handles at once (limit max_handles)"
                );
            }
            other => panic!("{suffix}: expected the handle limit, got {other:?}"),
        }
    }
}

/// Where the async driver's queue depth comes from in a flow file, first
/// given wins: the flow's `default_queue_depth`, its
/// `backpressure.default_queue_depth`, then `[runtime.backpressure]
/// default_queue_depth`; an edge's `queue_depth` bounds its source alone.
#[test]
fn queue_depths_come_from_the_flow_then_runtime_backpressure() {
    let path = Path::new("/flows/Torvyn.toml");
    let depth = |text: &str| {
        FlowFile::parse(path, text)
            .unwrap()
            .flow(None)
            .unwrap()
            .queue_depth
    };
    let without = TOKEN_FILE.replace("default_queue_depth = 2\n", "");
    assert_eq!(depth(TOKEN_FILE), 2);
    let runtime = format!("{without}\n[runtime.backpressure]\ndefault_queue_depth = 7\n");
    assert_eq!(depth(&runtime), 7, "from [runtime.backpressure]");
    let both = format!("{TOKEN_FILE}\n[runtime.backpressure]\ndefault_queue_depth = 7\n");
    assert_eq!(depth(&both), 2, "the flow's own wins");
    let flow_backpressure = without.replace(
        "[flow.main]\n",
        "[flow.main]\nbackpressure = { default_queue_depth = 5 }\n",
    );
    let with_runtime =
        format!("{flow_backpressure}\n[runtime.backpressure]\ndefault_queue_depth = 7\n");
    assert_eq!(
        depth(&with_runtime),
        5,
        "the flow's backpressure table before the runtime's"
    );
    assert_eq!(
        depth(&without),
        torvyn_engine::flow::DEFAULT_QUEUE_DEPTH,
        "none given"
    );
}

/// Two aggregators in a chain, on both drivers: the second joins what the
/// first emits; at the end of the stream the first flushes before the
/// second (upstream first), so its rest reaches the second's flush.
#[test]
fn chained_aggregators_flush_upstream_first() {
    let engine = engine();
    let components = components(&engine);
    for on_async in [false, true] {
        let mut flow = Flow::instantiate(
            &engine,
            spec(
                vec![
                    node("numbers", "source", Interface::Source, "9"),
                    node("pairs", "aggregator", Interface::Aggregator, "2"),
                    node("quads", "aggregator", Interface::Aggregator, "2"),
                    node("out", "sink", Interface::Sink, "1000"),
                ],
                vec![
                    edge("numbers", "output", "pairs"),
                    edge("pairs", "output", "quads"),
                    edge("quads", "output", "out"),
                ],
            ),
            &components,
        )
        .unwrap();
        let seen = run_on(&mut flow, on_async).unwrap();
        let payloads: Vec<&str> = seen.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(
            payloads,
            [
                "element 0element 1element 2element 3",
                "element 4element 5element 6element 7",
                "element 8",
            ],
            "async: {on_async}"
        );
        let report = flow.report(std::time::Duration::ZERO);
        let rows: Vec<(u64, u64)> = report
            .nodes
            .iter()
            .map(|n| (n.elements_in, n.elements_out))
            .collect();
        assert_eq!(rows, [(9, 9), (9, 5), (5, 3), (3, 3)], "async: {on_async}");
    }
}
