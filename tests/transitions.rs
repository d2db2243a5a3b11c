//! The host-call loop the transition benchmarks time (`torvyn bench`):
//! each op must really make its host calls, `n` times, on the engine, and
//! leave nothing held — otherwise the benchmark's rows time something else.

mod common;

use torvyn_engine::{
    ComponentInvoker, Element, EngineConfig, ProcessOutcome, WasmEngine, WasmtimeEngine,
};
use torvyn_fixtures::transitions::{host_call_loop, LoopOp};

/// Runs `op` `n` times in one `process` call on a fresh instance with a
/// 64-byte payload, under a fuel limit (so fuel is recorded); returns the
/// instance for inspection.
fn run(op: LoopOp, n: u32) -> torvyn_engine::WasmtimeInstance {
    let config = EngineConfig::builder()
        .fuel_per_call(Some(1 << 40))
        .build()
        .unwrap();
    let engine = WasmtimeEngine::new(config).unwrap();
    let component = common::compile(&engine, "host-loop", &host_call_loop());
    let mut instance = engine.instantiate(&component).unwrap();
    let element = Element::new(op.sequence(n), "text/plain", vec![b'x'; 64]);
    let outcome = instance
        .process(&element)
        .unwrap_or_else(|e| panic!("{op:?} × {n}: {e}"));
    assert!(
        matches!(outcome, ProcessOutcome::Drop),
        "{op:?}: {outcome:?}"
    );
    common::assert_nothing_held(&mut instance);
    assert_eq!(engine.totals().guest_buffer_bytes(), 0, "{op:?}");
    instance
}

#[test]
fn every_op_copies_what_its_host_calls_copy_n_times() {
    for op in LoopOp::ALL {
        let n = 7;
        let copies = run(op, n).host().copies();
        let (into_guest, out_of_guest) = match op {
            LoopOp::BufferRead64 | LoopOp::BufferReadAll => (64 * u64::from(n), 0),
            LoopOp::Write64 | LoopOp::Append64 => (0, 64 * u64::from(n)),
            _ => (0, 0),
        };
        assert_eq!(copies.into_guest, into_guest, "{op:?}");
        assert_eq!(copies.out_of_guest, out_of_guest, "{op:?}");
        // Clones are frozen unwritten: they share the payload's bytes.
        assert_eq!(copies.host_to_host, 0, "{op:?}");
    }
}

#[test]
fn capability_queries_are_repeated_n_times() {
    let mut instance = run(LoopOp::HasCapability, 5);
    assert_eq!(instance.host().capability_queries(), ["fixture:probe"; 5]);
    assert!(run(LoopOp::BufferSize, 5)
        .host()
        .capability_queries()
        .is_empty());
}

#[test]
fn every_op_repeats_as_often_as_asked() {
    // The guest's fuel grows with the count for every op: the loop runs.
    for op in LoopOp::ALL {
        let once = run(op, 1).fuel_consumed();
        let often = run(op, 40).fuel_consumed();
        assert!(
            often > once + 39,
            "{op:?}: {once} fuel once, {often} for 40"
        );
    }
}

#[test]
fn sequences_carry_op_and_count() {
    assert_eq!(LoopOp::Nothing.sequence(3), 3);
    assert_eq!(LoopOp::BufferSize.sequence(3), (1 << 32) | 3);
    let codes: Vec<u32> = LoopOp::ALL.iter().map(|op| op.code()).collect();
    assert_eq!(codes, (0..LoopOp::ALL.len() as u32).collect::<Vec<_>>());
}

/// Runs `make`'s processor on one element at contract 0.1.0 (the engine's
/// hand-linked host functions, `src/direct.rs`) and at 0.2.0 (the alias
/// linker's generated ones, on the dynamic path), each on a fresh instance
/// given `flow`; returns each version's emitted element and instance, both
/// checked to hold nothing.
fn emitted_on_both_paths(
    make: fn() -> Vec<u8>,
    flow: torvyn_engine::host::FlowContext,
) -> Vec<(&'static str, Element, torvyn_engine::WasmtimeInstance)> {
    let engine = common::engine();
    [
        ("0.1.0", make()),
        ("0.2.0", torvyn_fixtures::at_contract_version("0.2.0", make)),
    ]
    .into_iter()
    .map(|(version, bytes)| {
        let component = common::compile(&engine, version, &bytes);
        let mut instance = engine.instantiate(&component).unwrap();
        instance.set_flow(flow.clone()).unwrap();
        let outcome = instance
            .process(&Element::new(3, "text/plain", "input"))
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        let ProcessOutcome::Emit(output) = outcome else {
            panic!("{version}: expected an emitted element, got {outcome:?}");
        };
        common::assert_nothing_held(&mut instance);
        (version, output, instance)
    })
    .collect()
}

#[test]
fn direct_and_generated_write_paths_answer_alike() {
    // The guest traps on any wrong answer, so both paths must emit `abXYZ`.
    let paths = emitted_on_both_paths(torvyn_fixtures::editing_processor, Default::default());
    for (version, output, mut instance) in paths {
        assert_eq!(&output.payload[..], b"abXYZ", "{version}");
        assert_eq!(output.meta.content_type, "text/x", "{version}");
        assert_eq!(instance.host().copies().out_of_guest, 7, "{version}");
    }
}

#[test]
fn direct_and_generated_flow_getters_answer_alike() {
    // The flow context's identifiers: shared strings on the direct path,
    // owned copies on the generated one.
    let mut flow = torvyn_engine::host::FlowContext::default();
    flow.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736".into();
    flow.span_id = "00f067aa0ba902b7".into();
    flow.flow_id = String::from("orders").into();
    for (version, output, _) in emitted_on_both_paths(torvyn_fixtures::flow_echo_processor, flow) {
        assert_eq!(
            &output.payload[..],
            b"4bf92f3577b34da6a3ce929d0e0e473600f067aa0ba902b7orders",
            "{version}"
        );
    }
}
