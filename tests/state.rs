//! `torvyn:state/snapshot`: a stage's state saved from one instance and
//! restored into another, on the typed and the dynamic path, bounded by
//! `max_state_bytes`; and the mock's handlers for it.

mod common;

use torvyn_engine::mock::{MockComponent, MockEngine};
use torvyn_engine::{
    AsyncComponentInvoker, CallPath, ComponentInvoker, Element, EngineConfig, Error, Interface,
    WasmEngine, WasmtimeEngine, WasmtimeInstance,
};

fn element(sequence: u64) -> Element {
    Element::new(sequence, "text/plain", format!("e{sequence}"))
}

/// `count` ingests, then what `flush` emits (the count, in decimal).
fn ingest_and_flush(instance: &mut impl ComponentInvoker, count: u64) -> String {
    for sequence in 0..count {
        assert_eq!(instance.ingest(&element(sequence)).unwrap(), None);
    }
    let flushed = instance.flush().unwrap();
    assert_eq!(flushed.len(), 1, "one element: the count");
    String::from_utf8(flushed[0].payload.to_vec()).unwrap()
}

fn started(engine: &WasmtimeEngine, bytes: &[u8]) -> WasmtimeInstance {
    let component = common::compile(engine, "counter", bytes);
    let mut instance = engine.instantiate(&component).unwrap();
    instance.init("").unwrap();
    instance
}

#[test]
fn a_counters_state_moves_to_another_instance_on_the_typed_path() {
    let engine = common::engine();
    let bytes = torvyn_fixtures::counting_aggregator(0);
    let component = common::compile(&engine, "counter", &bytes);
    assert_eq!(
        component.path_for(Interface::Snapshot),
        Some(&CallPath::Typed)
    );
    let mut old = started(&engine, &bytes);
    assert_eq!(ingest_and_flush(&mut old, 5), "5");
    let state = old.save().unwrap();
    assert_eq!(state, 5u64.to_le_bytes());

    let mut new = started(&engine, &bytes);
    new.restore(&state).unwrap();
    assert_eq!(ingest_and_flush(&mut new, 2), "7", "5 carried over, 2 more");
    // Without the restore the count starts again.
    let mut fresh = started(&engine, &bytes);
    assert_eq!(ingest_and_flush(&mut fresh, 2), "2");
    common::assert_nothing_held(&mut new);
}

#[test]
fn state_crosses_contract_versions_on_the_dynamic_path() {
    let engine = common::engine();
    let typed = torvyn_fixtures::counting_aggregator(0);
    let dynamic =
        torvyn_fixtures::at_contract_version("0.2.0", || torvyn_fixtures::counting_aggregator(0));
    let component = common::compile(&engine, "counter-0.2", &dynamic);
    assert!(
        matches!(component.path_for(Interface::Snapshot), Some(CallPath::Dynamic(why)) if why.contains("0.2.0")),
        "{:?}",
        component.path_for(Interface::Snapshot)
    );
    // Typed → dynamic → typed: a new version of another contract version
    // takes over the state and hands it on.
    let mut first = started(&engine, &typed);
    ingest_and_flush(&mut first, 3);
    let mut second = started(&engine, &dynamic);
    second.restore(&first.save().unwrap()).unwrap();
    assert_eq!(ingest_and_flush(&mut second, 4), "7");
    let state = second.save().unwrap();
    assert_eq!(state, 7u64.to_le_bytes());
    let mut third = started(&engine, &typed);
    third.restore(&state).unwrap();
    assert_eq!(ingest_and_flush(&mut third, 1), "8");
}

#[test]
fn state_over_max_state_bytes_is_refused_and_the_instance_keeps_serving() {
    let engine =
        WasmtimeEngine::new(EngineConfig::builder().max_state_bytes(64).build().unwrap()).unwrap();
    // 8 bytes of count and 100 of padding: 108 > 64.
    let mut counter = started(&engine, &torvyn_fixtures::counting_aggregator(100));
    assert_eq!(ingest_and_flush(&mut counter, 2), "2");
    match counter.save() {
        Err(Error::StateLimit { site, bytes, limit }) => {
            assert_eq!((site.function.as_str(), bytes, limit), ("save", 108, 64));
        }
        other => panic!("expected StateLimit, got {other:?}"),
    }
    assert!(
        counter.poisoned().is_none(),
        "a refused state poisons nothing"
    );
    assert_eq!(ingest_and_flush(&mut counter, 1), "3");
    // Within the limit (the default, 16 MiB) the same state is returned.
    let mut roomy = started(
        &common::engine(),
        &torvyn_fixtures::counting_aggregator(100),
    );
    assert_eq!(roomy.save().unwrap().len(), 108);
}

#[test]
fn a_restore_that_traps_is_an_error_and_retires_the_instance() {
    let engine = common::engine();
    let mut counter = started(&engine, &torvyn_fixtures::counting_aggregator(0));
    // The fixture traps on a state shorter than its 8-byte count.
    match counter.restore(&[1, 2, 3]) {
        Err(Error::Trap { site, code, .. }) => {
            assert_eq!(site.function, "restore");
            assert_eq!(
                code,
                Some(torvyn_engine::wasmtime::Trap::UnreachableCodeReached)
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(matches!(counter.flush(), Err(Error::Poisoned { .. })));
}

#[test]
fn a_component_without_the_interface_is_not_exported_and_not_a_role() {
    let engine = common::engine();
    let mut concat = started(&engine, &torvyn_fixtures::concat_aggregator());
    match concat.save() {
        Err(Error::NotExported { interface, .. }) => {
            assert_eq!(interface, "torvyn:state/snapshot")
        }
        other => panic!("expected NotExported, got {other:?}"),
    }
    // A node cannot play `snapshot`: it is no stage role.
    let spec = torvyn_engine::FlowSpec::linear(
        common::flow_node("source", "a", Interface::Source, ""),
        vec![common::flow_node("state", "b", Interface::Snapshot, "")],
        common::flow_node("sink", "c", Interface::Sink, ""),
    );
    let refused = torvyn_engine::Flow::<WasmtimeInstance>::new(spec, Vec::new()).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("node `state`: `torvyn:state/snapshot` is not a stage role"),
        "{refused}"
    );
}

#[test]
fn the_mock_saves_and_restores_through_the_same_contract() {
    let engine = MockEngine::new().with(
        MockComponent::new("counter")
            .on_ingest(|_| Ok(None))
            .on_save(|| Ok(vec![4, 2]))
            .on_restore(|state| match state {
                [4, 2] => Ok(()),
                _ => Err(Error::Config("unexpected state".into())),
            }),
    );
    let mut instance = engine
        .instantiate(&engine.compile("counter", b"").unwrap())
        .unwrap();
    assert!(instance.has(Interface::Snapshot) && instance.has(Interface::Aggregator));
    let state = instance.save().unwrap();
    instance.restore(&state).unwrap();
    let rt = common::runtime(1);
    rt.block_on(async {
        assert_eq!(instance.save_async().await.unwrap(), [4, 2]);
        instance.restore_async(&[4, 2]).await.unwrap();
    });
    assert_eq!(instance.calls(), ["save", "restore", "save", "restore"]);
    // A mock without `on_save` exports no snapshot.
    let plain = MockEngine::new().with(MockComponent::new("plain").on_ingest(|_| Ok(None)));
    let mut plain = plain
        .instantiate(&plain.compile("plain", b"").unwrap())
        .unwrap();
    assert!(matches!(plain.save(), Err(Error::NotExported { .. })));
}
