//! Live upgrade (issue 23, first part): a node's instance replaced between
//! two elements while its flow runs, on the sync and the async driver, its
//! state carried over with `torvyn:state`; a failed carry leaves the old
//! instance serving.

mod common;

use std::collections::BTreeMap;

use common::{flow_edge, flow_node};
use torvyn_engine::flow::{Carried, FlowSpec};
use torvyn_engine::{
    CompiledComponent, Element, EngineConfig, Flow, Interface, WasmEngine, WasmtimeEngine,
    WasmtimeInstance,
};

const ELEMENTS: u64 = 100_000;
/// A swap is asked for after every this many elements, 20 times.
const EVERY: u64 = 4_000;
const SWAPS: u64 = 20;

struct Versions {
    source: CompiledComponent,
    upper: CompiledComponent,
    lower: CompiledComponent,
    sink: CompiledComponent,
}

fn versions(engine: &WasmtimeEngine) -> Versions {
    Versions {
        source: common::compile(engine, "source", &torvyn_fixtures::counting_source()),
        // Two versions of the processor, told apart by their outputs.
        upper: common::compile(engine, "upper", &torvyn_fixtures::uppercase_processor()),
        lower: common::compile(engine, "lower", &torvyn_fixtures::passthrough_processor()),
        sink: common::compile(engine, "sink", &torvyn_fixtures::recording_sink()),
    }
}

fn line(engine: &WasmtimeEngine, v: &Versions) -> Flow<WasmtimeInstance> {
    let spec = FlowSpec::linear(
        flow_node("source", "source", Interface::Source, &ELEMENTS.to_string()),
        vec![flow_node("p", "upper", Interface::Processor, "")],
        flow_node("sink", "sink", Interface::Sink, "1000000000"),
    );
    let instances = [&v.source, &v.upper, &v.sink]
        .into_iter()
        .map(|c| engine.instantiate(c).unwrap())
        .collect();
    Flow::new(spec, instances).unwrap()
}

/// Every element exactly once and in order, each marked by the version
/// that served it: upper before the first swap, then alternating at every
/// swap (one asked for after each `EVERY` elements, taking over at the
/// next one).
fn check(delivered: &[(u64, String)], flow: &Flow<WasmtimeInstance>) {
    assert_eq!(delivered.len() as u64, ELEMENTS);
    for (i, (sequence, payload)) in delivered.iter().enumerate() {
        let i = i as u64;
        assert_eq!(*sequence, i);
        let version = (i / EVERY).min(SWAPS);
        let expected = format!("element {i}");
        let expected = match version % 2 {
            0 => expected.to_uppercase(),
            _ => expected,
        };
        assert_eq!(payload, &expected, "element {i} (after {version} swaps)");
    }
    let upgrades = flow.upgrades();
    assert_eq!(upgrades.len() as u64, SWAPS);
    for (j, outcome) in upgrades.iter().enumerate() {
        assert_eq!(outcome.node, "p");
        assert_eq!(outcome.after_inputs, (j as u64 + 1) * EVERY);
        assert_eq!(outcome.failed, None);
        assert_eq!(outcome.carried, Carried::Nothing);
    }
}

/// The delivered callback: records, and asks for a swap after every
/// `EVERY` elements (the other version each time).
fn recorder<'a>(
    engine: &'a WasmtimeEngine,
    v: &'a Versions,
    upgrader: torvyn_engine::flow::Upgrader<WasmtimeInstance>,
    delivered: &'a mut Vec<(u64, String)>,
) -> impl FnMut(&str, &Element) + Send + 'a {
    move |_, element| {
        delivered.push((
            element.meta.sequence,
            String::from_utf8_lossy(&element.payload).into_owned(),
        ));
        let count = delivered.len() as u64;
        if count.is_multiple_of(EVERY) && count / EVERY <= SWAPS {
            let next = match (count / EVERY) % 2 {
                1 => &v.lower,
                _ => &v.upper,
            };
            upgrader
                .upgrade("p", engine.instantiate(next).unwrap())
                .unwrap();
        }
    }
}

#[test]
fn a_processor_swapped_twenty_times_on_the_sync_driver_loses_nothing() {
    let engine = common::engine();
    let v = versions(&engine);
    let mut flow = line(&engine, &v);
    let upgrader = flow.upgrader();
    let mut delivered = Vec::new();
    flow.run(recorder(&engine, &v, upgrader, &mut delivered))
        .unwrap();
    check(&delivered, &flow);
}

#[test]
fn a_processor_swapped_twenty_times_on_the_async_driver_loses_nothing() {
    let engine = common::engine();
    let v = versions(&engine);
    let mut flow = line(&engine, &v);
    let upgrader = flow.upgrader();
    let mut delivered = Vec::new();
    common::runtime(2).block_on(async {
        flow.run_async(recorder(&engine, &v, upgrader, &mut delivered))
            .await
            .unwrap();
    });
    check(&delivered, &flow);
}

/// source → counter (aggregator) → sink, and source → tap → sink2 whose
/// deliveries say how far the flow is: the counter is swapped after
/// `swap_after` elements. Returns what reached `sink` and the flow.
fn count_with_swap(
    engine: &WasmtimeEngine,
    old: &[u8],
    new: &[u8],
    swap_after: u64,
) -> (
    Vec<String>,
    Flow<WasmtimeInstance>,
    Option<torvyn_engine::Result<()>>,
) {
    let spec = {
        let mut spec = FlowSpec::new(
            "counting",
            vec![
                flow_node("source", "source", Interface::Source, "1000"),
                flow_node("counter", "old", Interface::Aggregator, ""),
                flow_node("sink", "sink", Interface::Sink, "1000000"),
                flow_node("tap", "tap", Interface::Processor, ""),
                flow_node("sink2", "sink", Interface::Sink, "1000000"),
            ],
            vec![
                flow_edge("source", "output", "counter"),
                flow_edge("counter", "output", "sink"),
                flow_edge("source", "output", "tap"),
                flow_edge("tap", "output", "sink2"),
            ],
        );
        spec.queue_depth = 4;
        spec
    };
    let components: BTreeMap<String, CompiledComponent> = [
        ("source", torvyn_fixtures::counting_source()),
        ("old", old.to_vec()),
        ("sink", torvyn_fixtures::recording_sink()),
        ("tap", torvyn_fixtures::passthrough_processor()),
    ]
    .into_iter()
    .map(|(name, bytes)| (name.to_string(), common::compile(engine, name, &bytes)))
    .collect();
    let new = common::compile(engine, "new", new);
    let mut flow = Flow::instantiate(engine, spec, &components).unwrap();
    let upgrader = flow.upgrader();
    let (mut taps, mut counts, mut asked) = (0, Vec::new(), None);
    // (`counts`: every element `sink` got.)
    flow.run(|sink, element| match sink {
        "sink2" => {
            taps += 1;
            if taps == swap_after {
                asked = Some(upgrader.upgrade("counter", engine.instantiate(&new).unwrap()));
            }
        }
        _ => counts.push(String::from_utf8_lossy(&element.payload).into_owned()),
    })
    .unwrap();
    (counts, flow, asked)
}

#[test]
fn an_aggregators_state_is_carried_across_a_swap() {
    let engine = common::engine();
    let counter = torvyn_fixtures::counting_aggregator(0);
    let (counts, flow, asked) = count_with_swap(&engine, &counter, &counter, 400);
    asked.expect("asked").expect("queued");
    assert_eq!(
        counts,
        ["1000"],
        "400 counted by the old version, 600 by the new"
    );
    let outcome = &flow.upgrades()[0];
    assert_eq!(outcome.carried, Carried::State(8));
    assert_eq!(
        (outcome.after_inputs, outcome.failed.as_deref()),
        (400, None)
    );
}

#[test]
fn an_aggregator_without_state_is_flushed_downstream_at_the_swap() {
    let engine = common::engine();
    // Concatenates every 4 inputs; swapped after 402, holding 2.
    let concat = torvyn_fixtures::concat_aggregator();
    let (outputs, flow, asked) = count_with_swap(&engine, &concat, &concat, 402);
    asked.expect("asked").expect("queued");
    let inputs: String = (0..1000).map(|i| format!("element {i}")).collect();
    assert_eq!(outputs.concat(), inputs, "every input once, in order");
    // 100 groups of 4, the 2 held flushed at the swap, then 149 groups of 4
    // and the 2 left flushed at the end.
    assert_eq!(outputs.len(), 100 + 1 + 149 + 1);
    assert_eq!(outputs[100], "element 400element 401");
    assert_eq!(flow.upgrades()[0].carried, Carried::Flushed);
}

#[test]
fn a_state_over_the_limit_leaves_the_old_version_serving() {
    let engine =
        WasmtimeEngine::new(EngineConfig::builder().max_state_bytes(64).build().unwrap()).unwrap();
    // The old version's state (8 + 100 bytes) is over max_state_bytes.
    let (counts, flow, asked) = count_with_swap(
        &engine,
        &torvyn_fixtures::counting_aggregator(100),
        &torvyn_fixtures::counting_aggregator(0),
        400,
    );
    asked.expect("asked").expect("queued");
    assert_eq!(counts, ["1000"], "the old version counted everything");
    let outcome = &flow.upgrades()[0];
    assert_eq!(outcome.carried, Carried::Nothing);
    let why = outcome.failed.as_deref().unwrap_or_default();
    assert!(why.contains("over max_state_bytes = 64"), "{why}");
}

#[test]
fn an_upgrade_that_cannot_serve_is_refused_before_it_reaches_the_flow() {
    let engine = common::engine();
    let v = versions(&engine);
    let mut flow = line(&engine, &v);
    let upgrader = flow.upgrader();
    let wrong_role = upgrader
        .upgrade("p", engine.instantiate(&v.sink).unwrap())
        .unwrap_err();
    assert_eq!(
        wrong_role.to_string(),
        "flow `linear`: upgrade of node `p`: component `sink` does not export \
         `torvyn:streaming/processor`"
    );
    let unknown = upgrader
        .upgrade("q", engine.instantiate(&v.upper).unwrap())
        .unwrap_err();
    assert_eq!(unknown.to_string(), "flow `linear`: upgrade: no node `q`");
    drop(flow);
    let gone = upgrader
        .upgrade("p", engine.instantiate(&v.upper).unwrap())
        .unwrap_err();
    assert!(gone.to_string().ends_with("the flow is gone"), "{gone}");
}

/// counting source (200 elements) → sink, the source replaced by a fresh
/// instance of itself after 50 deliveries: the new one starts again from
/// `element 0` (a source without `torvyn:state` carries nothing), the old
/// one's elements already pulled are delivered first, none twice or lost.
/// Returns how many the old instance gave.
fn source_swapped(run_async: bool) -> usize {
    let engine = common::engine();
    let v = versions(&engine);
    let spec = FlowSpec::linear(
        flow_node("source", "source", Interface::Source, "200"),
        vec![],
        flow_node("sink", "sink", Interface::Sink, "1000000000"),
    );
    let instances = [&v.source, &v.sink]
        .into_iter()
        .map(|c| engine.instantiate(c).unwrap())
        .collect();
    let mut flow: Flow<WasmtimeInstance> = Flow::new(spec, instances).unwrap();
    let upgrader = flow.upgrader();
    let mut delivered: Vec<String> = Vec::new();
    let record = |_: &str, element: &Element| {
        delivered.push(String::from_utf8_lossy(&element.payload).into_owned());
        if delivered.len() == 50 {
            upgrader
                .upgrade("source", engine.instantiate(&v.source).unwrap())
                .unwrap();
        }
    };
    match run_async {
        true => common::runtime(2).block_on(async {
            flow.run_async(record).await.unwrap();
        }),
        false => {
            flow.run(record).unwrap();
        }
    }
    let outcomes = flow.upgrades();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].node, "source");
    assert_eq!(outcomes[0].failed, None);
    let old = outcomes[0].after_inputs as usize;
    assert!(old >= 50, "{old}");
    let expected: Vec<String> = (0..old)
        .chain(0..200)
        .map(|i| format!("element {i}"))
        .collect();
    assert_eq!(delivered, expected);
    let report = flow.report(std::time::Duration::ZERO);
    assert_eq!(
        (report.nodes[0].upgrades, report.nodes[0].upgrades_refused),
        (1, 0)
    );
    old
}

#[test]
fn a_source_is_upgraded_between_two_pulls_on_both_drivers() {
    // The sync driver pulls one element at a time: the swap comes at once.
    assert_eq!(source_swapped(false), 50);
    // The async driver's feeder pulls ahead of the deliveries (up to the
    // queue's depth): the swap comes at its next pull.
    let old = source_swapped(true);
    assert!(
        old <= 50 + torvyn_engine::flow::DEFAULT_QUEUE_DEPTH + 1,
        "{old}"
    );
}

/// A broken new version of a counting aggregator: one whose `init` traps is
/// refused by `upgrade` itself (the flow never sees it), one whose
/// `restore` traps is refused by the flow at the swap. Either way the old
/// version counts every element: the output equals an unswapped run's.
#[test]
fn a_new_version_that_traps_in_init_or_restore_leaves_the_old_one_counting() {
    let engine = common::engine();
    let counter = torvyn_fixtures::counting_aggregator(0);
    let (unswapped, _, _) = count_with_swap(&engine, &counter, &counter, u64::MAX);
    assert_eq!(unswapped, ["1000"]);

    let (counts, flow, asked) = count_with_swap(
        &engine,
        &counter,
        &torvyn_fixtures::counting_aggregator_trapping_init(),
        400,
    );
    let refused = asked.expect("asked").unwrap_err();
    assert!(
        matches!(refused, torvyn_engine::Error::Trap { ref site, .. }
            if site.function == "init" && site.component == "new"),
        "{refused:?}"
    );
    assert_eq!(counts, unswapped);
    assert!(flow.upgrades().is_empty(), "{:?}", flow.upgrades());

    let (counts, flow, asked) = count_with_swap(
        &engine,
        &counter,
        &torvyn_fixtures::counting_aggregator_trapping_restore(),
        400,
    );
    asked.expect("asked").expect("queued: its init is fine");
    assert_eq!(counts, unswapped);
    let outcome = &flow.upgrades()[0];
    assert_eq!(
        (outcome.after_inputs, outcome.carried),
        (400, Carried::Nothing)
    );
    let why = outcome.failed.as_deref().unwrap_or_default();
    assert_eq!(
        why,
        "component `new`, function `restore`: trap: wasm trap: wasm `unreachable` instruction \
         executed"
    );
    let report = flow.report(std::time::Duration::ZERO);
    let counter_row = report.nodes.iter().find(|n| n.name == "counter").unwrap();
    assert_eq!((counter_row.upgrades, counter_row.upgrades_refused), (0, 1));
}
