//! Transition floors: what one guest↔host transition costs in bare
//! wasmtime 48, next to what each contract host function costs on the
//! engine.
//!
//! Both sides run the same guest, `torvyn_fixtures::transitions::host_call_loop`,
//! which repeats one host call [`LOOP_REPETITIONS`] times inside one export
//! call. The floor side links the contract's functions with their exact
//! signatures and empty bodies (constant results, borrowed static bytes and
//! strings; parameters lifted lazily and only looked at: a string is
//! validated, a list's bytes located in guest memory): whatever wasmtime
//! itself needs to cross the boundary with those types, and the least a
//! host must do to use what it is given. The engine side is the real host.

use std::sync::Arc;

use super::row;

use torvyn_engine::host::FlowContext;
use torvyn_engine::{
    CompiledComponent, ComponentInvoker, Element, WasmEngine, WasmtimeEngine, WasmtimeInstance,
};
use torvyn_fixtures::transitions::{host_call_loop, noop_import_loop, LoopOp};
use wasmtime::component::{Component, Resource, TypedFunc};

use super::floor::*;
use super::{bare_store, export_index, looped, Case};

/// An engine row: `op` repeated on the engine's host, through `process`.
/// (One compiled component serves every row, as one `Component` serves the
/// floor rows: the rows then share their machine code and its placement.)
fn engine_case(engine: &WasmtimeEngine, component: &CompiledComponent, row: &OpRow) -> Case {
    let mut instance: WasmtimeInstance = engine.instantiate(component).expect("instantiate");
    instance
        .set_flow({
            let mut flow = FlowContext::default();
            flow.trace_id = TRACE_ID.into();
            flow.span_id = SPAN_ID.into();
            flow.flow_id = FLOW_ID.into();
            flow
        })
        .expect("flow context");
    let element = Element::new(
        row.op.sequence(LOOP_REPETITIONS),
        CONTENT_TYPE,
        vec![b'x'; row.payload_bytes],
    );
    looped(engine_name(&row.label), LOOP_REPETITIONS, move || {
        instance.process(&element).expect("engine loop");
    })
}

/// Every transition case: the generic floors, then each op on the floor
/// host and on a default engine (whose wasmtime configuration the floors
/// share).
pub fn transition_cases() -> Vec<Case> {
    let engine = &super::default_engine();
    let wasm = engine.wasmtime().clone();
    let loop_component = Component::new(&wasm, host_call_loop()).expect("host loop");
    let noop_component = Component::new(&wasm, noop_import_loop()).expect("noop loop");
    let n = LOOP_REPETITIONS;
    let mut cases = Vec::new();

    let linker = floor_linker(&wasm, 64).expect("floor linker");
    let mut noop_store = bare_store(&wasm);
    let noop_instance = linker
        .instantiate(&mut noop_store, &noop_component)
        .expect("noop loop instantiates");
    let noop_run: TypedFunc<(u32,), ()> = {
        let index = export_index(&noop_instance, &mut noop_store, "noop-loop", "run");
        noop_instance
            .get_typed_func(&mut noop_store, index)
            .expect("noop-loop#run")
    };
    cases.push(looped(NOOP_IMPORT, n, move || {
        noop_run.call(&mut noop_store, (n,)).expect("noop loop");
    }));

    let mut borrows = FloorLoop::new(&wasm, &loop_component, 64);
    let drop_borrows = borrows.func::<(Vec<Resource<FloorBuffer>>,), ()>("drop-borrows");
    cases.push(looped(BORROW_LENT_DROPPED, n, move || {
        let handles = (0..n).map(Resource::new_borrow).collect();
        drop_borrows
            .call(&mut borrows.store, (handles,))
            .expect("drop-borrows");
    }));
    let mut owns = FloorLoop::new(&wasm, &loop_component, 64);
    let drop_owned = owns.func::<(Vec<Resource<FloorBuffer>>,), ()>("drop-owned");
    cases.push(looped(OWN_PASSED_DROPPED, n, move || {
        let handles = (0..n).map(Resource::new_own).collect();
        drop_owned
            .call(&mut owns.store, (handles,))
            .expect("drop-owned");
    }));
    let mut strings = FloorLoop::new(&wasm, &loop_component, 64);
    let take_strings = strings.func::<(&'static [&'static str],), ()>("take-strings");
    let texts: &'static [&'static str] = Vec::leak(vec![CONTENT_TYPE; n as usize]);
    cases.push(looped(STRING_PARAM, n, move || {
        take_strings
            .call(&mut strings.store, (texts,))
            .expect("take-strings");
    }));

    let source = Arc::new([b'x'; 1024]);
    let mut target = vec![0u8; 1024];
    cases.push(looped(MEMCPY_KIB, 1, move || {
        target.copy_from_slice(std::hint::black_box(&source[..]));
        std::hint::black_box(&mut target);
    }));

    cases.push(floor_drop_case(&wasm, false));
    cases.push(floor_drop_case(&wasm, true));
    cases.push(floor_element(&wasm, false, false));
    cases.push(floor_element(&wasm, true, false));
    cases.push(super::fair_floor::fair_floor_element(&wasm));
    // Its async twin, for the ceiling of the async flows' ratio.
    cases.push(floor_element(&wasm, true, true));
    let engine_loop = engine
        .compile("host-loop", &host_call_loop())
        .expect("the loop compiles");
    for row in op_rows() {
        cases.push(floor_case(&wasm, &loop_component, &row));
        cases.push(engine_case(engine, &engine_loop, &row));
    }
    cases
}

/// The sum of floors one 64 B element of source → passthrough → sink
/// needs, as (what, how many, floor row); the export calls come from the
/// empty-call row.
fn pipeline_floors() -> Vec<(&'static str, f64, String)> {
    let rows = op_rows();
    let op = |op: LoopOp| {
        let row = rows
            .iter()
            .find(|row| row.op == op && row.payload_bytes == 64)
            .expect("op row");
        floor_name(&row.label)
    };
    vec![
        (
            "export calls (pull, process, push)",
            3.0,
            row::FLOOR.to_string(),
        ),
        (
            "source: allocate, freeze, drop (the frozen buffer goes to the host)",
            1.0,
            op(LoopOp::AllocateFreezeDrop),
        ),
        ("source: append 64 B", 1.0, op(LoopOp::Append64)),
        (
            "passthrough: clone-into-mutable, freeze, drop",
            1.0,
            op(LoopOp::CloneFreezeDrop),
        ),
        ("sink: read-all 64 B", 1.0, op(LoopOp::BufferReadAll)),
        (
            "process, push: content-type lowered through cabi_realloc",
            2.0,
            STRING_PARAM.to_string(),
        ),
        (
            "process, push: payload and context lent, then dropped",
            4.0,
            BORROW_LENT_DROPPED.to_string(),
        ),
    ]
}

/// The transition sections of the report: floors, every host function
/// against its floor, and the targets. `ns`/`allocs` look rows up
/// by name; `pipeline_ns` is one 64 B element through source →
/// passthrough → sink on one flow.
pub fn report(ns: &dyn Fn(&str) -> f64, allocs: &dyn Fn(&str) -> f64, pipeline_ns: f64) -> String {
    let mut out = String::new();
    let memcpy_per_byte = ns(MEMCPY_KIB) / 1024.0;
    out.push_str(&format!(
        "\n| transition floor (bare wasmtime, repeated {LOOP_REPETITIONS}× in one export call) | ns/op |\n|---|---:|\n"
    ));
    for (label, name) in [
        ("empty export call (one call per op)", row::FLOOR),
        ("no-op import call", NOOP_IMPORT),
        (
            "borrow lent in a call, then resource.drop",
            BORROW_LENT_DROPPED,
        ),
        (
            "own passed in a call, then resource.drop",
            OWN_PASSED_DROPPED,
        ),
        ("string param (10 B) through cabi_realloc", STRING_PARAM),
        ("host memcpy 1 KiB", MEMCPY_KIB),
    ] {
        out.push_str(&format!("| {label} | {:.1} |\n", ns(name)));
    }

    out.push_str(
        "\n| host function (per repetition) | floor ns | engine ns | × floor | limit ns (1.3× floor + memcpy) | met | engine allocs |\n\
         |---|---:|---:|---:|---:|---|---:|\n",
    );
    let (mut met, mut total, mut worst) = (0, 0, (String::new(), 0.0f64));
    for row in op_rows() {
        let floor = ns(&floor_name(&row.label));
        let engine = ns(&engine_name(&row.label));
        let limit = 1.3 * floor + row.copied_bytes as f64 * memcpy_per_byte;
        let ratio = engine / floor;
        let ok = engine <= limit;
        if row.op != LoopOp::Nothing {
            total += 1;
            met += usize::from(ok);
            if ratio > worst.1 {
                worst = (row.label.clone(), ratio);
            }
        }
        let met = match (row.op, ok) {
            // The loop alone is no host function: a reference row.
            (LoopOp::Nothing, _) => "-",
            (_, true) => "yes",
            (_, false) => "no",
        };
        out.push_str(&format!(
            "| {} | {floor:.1} | {engine:.1} | {ratio:.2} | {limit:.1} | {met} | {:.2} |\n",
            row.label,
            allocs(&engine_name(&row.label)),
        ));
    }

    let by_hand = ns(super::row::ELEMENT_BY_HAND);
    let bare = ns(FLOOR_ELEMENT);
    let bare_stores = ns(FLOOR_ELEMENT_STORES);
    let fair = ns(super::fair_floor::FAIR_FLOOR_ELEMENT);
    let drop_floor = ns(row::FLOOR) + 2.0 * ns(BORROW_LENT_DROPPED) + ns(STRING_PARAM);
    let typed_drop = ns(super::row::TYPED_DROP);
    let mut sum = 0.0;
    let mut list = String::new();
    for (what, count, name) in pipeline_floors() {
        let each = ns(&name);
        sum += count * each;
        list.push_str(&format!(
            "| {what} | {count} × {each:.1} | {:.1} |\n",
            count * each
        ));
    }
    out.push_str(&format!(
        "\n| one 64 B element, source → passthrough → sink: floors | count × ns | ns |\n|---|---:|---:|\n{list}\
         | **sum of floors** | | **{sum:.1}** |\n\
         | bare wasmtime: the same 3 guests on the floor host, by hand, one store | | {bare:.1} |\n\
         | bare wasmtime: the same, a store each (as on the engine) | | {bare_stores:.1} |\n\
         | fair floor host: the same, a store each, buffers made, copied, read and freed | | {fair:.1} |\n\
         | engine: the 3 calls by hand, no driver | | {by_hand:.1} |\n\
         | engine: `Pipeline::run`, 1 flow | | {pipeline_ns:.1} |\n"
    ));

    let verdict = |ok: bool| if ok { "met" } else { "not met" };
    out.push_str("\n| transition target | measured | result |\n|---|---:|---|\n");
    out.push_str(&format!(
        "| every host function ≤ 1.3× its floor (+ memcpy) | {met} of {total}; worst {} at {:.2}× | {} |\n",
        worst.0,
        worst.1,
        verdict(met == total)
    ));
    out.push_str(&format!(
        "| typed process → drop ≤ 1.15× (empty call + 2 borrows dropped + 1 string param = {drop_floor:.1} ns) | {:.2}× ({typed_drop:.1} ns) | {} |\n",
        typed_drop / drop_floor,
        verdict(typed_drop <= 1.15 * drop_floor)
    ));
    let bare_drop = ns(FLOOR_DROP);
    out.push_str(&format!(
        "| (reference) typed process → drop / the same call on bare wasmtime's floor host ({bare_drop:.1} ns) | {:.2}× | - |\n",
        typed_drop / bare_drop
    ));
    out.push_str(&format!(
        "| one 64 B element by hand ≤ 1.2× the same guests on the fair floor host (the contract's minimum buffer work), a store each ({fair:.1} ns) | {:.2}× | {} |\n",
        by_hand / fair,
        verdict(by_hand <= 1.2 * fair)
    ));
    out.push_str(&format!(
        "| (lower bound) the same / bare wasmtime's floor host, no buffer work, a store each ({bare_stores:.1} ns) | {:.2}× | - |\n",
        by_hand / bare_stores
    ));
    out.push_str(&format!(
        "| (reference) the same, the floor's guests sharing one store ({bare:.1} ns) | {:.2}× | - |\n",
        by_hand / bare
    ));
    out.push_str(&format!(
        "| 64 B source → passthrough → sink ≤ 1.25× its sum of floors ({sum:.1} ns) | {:.2}× ({pipeline_ns:.1} ns) | {} |\n",
        pipeline_ns / sum,
        verdict(pipeline_ns <= 1.25 * sum)
    ));
    let drop_allocs = allocs(super::row::TYPED_DROP);
    out.push_str(&format!(
        "| typed process → drop: 0 host allocations | {drop_allocs:.2} | {} |\n",
        verdict(drop_allocs == 0.0)
    ));
    out
}
