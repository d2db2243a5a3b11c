//! The call-level cases: empty calls, typed, dynamic and naive `Val`
//! calls, copies, and one element by hand.

use torvyn_engine::{
    Allocation, AsyncComponentInvoker, ComponentInvoker, Element, EngineConfig, ProcessOutcome,
    WasmEngine, WasmtimeEngine,
};
use wasmtime::component::{Component, Linker, TypedFunc, Val};
use wasmtime::Store;

use super::*;

/// The call-level cases, in the order of the report.
pub fn call_cases() -> Vec<Case> {
    let engine = default_engine();
    let wasm = engine.wasmtime().clone();

    // The floor: a typed `() -> ()` call on a store with nothing in it.
    let empty = Component::new(&wasm, torvyn_fixtures::empty_component()).expect("empty");
    let linker = Linker::<()>::new(&wasm);
    let empty_pre = linker.instantiate_pre(&empty).expect("pre");
    let new_store = || bare_store(&wasm);
    let typed_noop = |store: &mut Store<()>| -> TypedFunc<(), ()> {
        let instance = empty_pre.instantiate(&mut *store).expect("instantiate");
        let noop = export_index(&instance, store, "probe", "noop");
        instance.get_typed_func(&mut *store, noop).expect("typed")
    };
    let mut sync_store = new_store();
    let noop = typed_noop(&mut sync_store);
    let mut async_store = new_store();
    let noop_async = typed_noop(&mut async_store);

    // The naive baseline: look the export up by name, build four flat `Val`s.
    let flat = Component::new(&wasm, torvyn_fixtures::flat_processor()).expect("flat");
    let mut flat_store = new_store();
    let flat_instance = linker
        .instantiate(&mut flat_store, &flat)
        .expect("flat instance");
    let mut sequence = 0u64;

    let mut flat_typed_store = new_store();
    let flat_typed_instance = linker
        .instantiate(&mut flat_typed_store, &flat)
        .expect("flat instance");
    let flat_typed = {
        let index = export_index(
            &flat_typed_instance,
            &mut flat_typed_store,
            "naive",
            "process-flat",
        );
        flat_typed_instance
            .get_typed_func::<(u64, u64, u32, u32), (u32,)>(&mut flat_typed_store, index)
            .expect("typed flat")
    };
    let mut typed_drop = instance(&engine, "drop", &torvyn_fixtures::drop_processor());
    let mut typed_drop_plain = instance(&engine, "drop", &torvyn_fixtures::drop_processor());
    let mut async_drop = instance(&engine, "drop", &torvyn_fixtures::drop_processor());
    let dense = dense_engine();
    let mut dense_drop = instance(&dense, "drop", &torvyn_fixtures::drop_processor());
    let mut dense_upper = instance(&dense, "upper", &torvyn_fixtures::uppercase_processor());
    let dense_upper_component = dense
        .compile("upper", &torvyn_fixtures::uppercase_processor())
        .expect("compile");
    let untyped_small = Element::new(1, "", vec![b'a'; 64]);
    let mut dynamic_drop = instance(
        &engine,
        "acme-drop",
        &torvyn_fixtures::foreign::drop_processor_in("acme:etl@2.0.0"),
    );
    let mut typed_emit = instance(&engine, "pass", &torvyn_fixtures::passthrough_processor());
    let mut typed_upper = instance(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let mut dynamic_upper = instance(
        &engine,
        "acme-upper",
        &torvyn_fixtures::foreign::uppercase_processor_in("acme:etl@2.0.0"),
    );
    let mut source = instance(&engine, "source", &torvyn_fixtures::sized_source(64));
    source.init(&u64::MAX.to_string()).expect("init");
    let mut sink = instance(&engine, "sink", &torvyn_fixtures::recording_sink());
    sink.init("1000000").expect("init");
    let mut sink_sequence = 0u64;
    let element_by_hand = element_by_hand(&engine, false);

    let small = Element::new(1, "text/plain", vec![b'a'; 64]);
    let kib = Element::new(1, "text/plain", vec![b'a'; 1024]);
    let (small2, kib2, kib3, kib4) = (small.clone(), kib.clone(), kib.clone(), kib.clone());
    let (small3, small4, kib5) = (small.clone(), small.clone(), kib.clone());
    let async_engine = default_engine();
    let async_upper = async_engine
        .compile("upper", &torvyn_fixtures::uppercase_processor())
        .expect("compile");

    let upper_bytes = torvyn_fixtures::uppercase_processor();
    let upper = engine.compile("upper", &upper_bytes).expect("compile");
    let pooled_engine = WasmtimeEngine::new(
        EngineConfig::builder()
            .allocation(Allocation::Pooling { max_instances: 16 })
            .build()
            .expect("pooling config"),
    )
    .expect("pooling engine");
    let pooled = pooled_engine
        .compile("upper", &upper_bytes)
        .expect("compile");

    vec![
        case(row::FLOOR, move || {
            noop.call(&mut sync_store, ()).expect("noop");
        }),
        case(row::CALL_ASYNC, move || {
            block_on(noop_async.call_async(&mut async_store, ())).expect("noop");
        }),
        case(row::TYPED_DROP, move || {
            typed_drop.process(&small).expect("process");
        }),
        case("typed process -> drop, empty content type", move || {
            typed_drop_plain.process(&untyped_small).expect("process");
        }),
        case(row::ASYNC_DROP, move || {
            block_on(async_drop.process_async(&small3)).expect("process");
        }),
        case(row::DENSE_DROP, move || {
            dense_drop.process(&small4).expect("process");
        }),
        case(row::DYNAMIC_DROP, move || {
            dynamic_drop.process(&small2).expect("process");
        }),
        case(row::NAIVE_FLAT, move || {
            let func_index = export_index(&flat_instance, &mut flat_store, "naive", "process-flat");
            let func = flat_instance
                .get_func(&mut flat_store, func_index)
                .expect("func");
            sequence += 1;
            let params = vec![Val::U64(sequence), Val::U64(0), Val::U32(1), Val::U32(2)];
            let mut results = vec![Val::Bool(false)];
            func.call(&mut flat_store, &params, &mut results)
                .expect("call");
        }),
        case(row::TYPED_FLAT, move || {
            flat_typed
                .call(&mut flat_typed_store, (1, 0, 1, 2))
                .expect("call");
        }),
        case("typed process -> emit 1 KiB", move || {
            typed_emit.process(&kib2).expect("process");
        }),
        case(row::UPPERCASE, move || {
            typed_upper.process(&kib3).expect("process");
        }),
        case(row::DENSE_UPPERCASE, move || {
            dense_upper.process(&kib5).expect("process");
        }),
        case(row::DYNAMIC_UPPERCASE, move || {
            dynamic_upper.process(&kib4).expect("process");
        }),
        case("typed pull (64 B)", move || {
            source.pull().expect("pull");
        }),
        case("typed push (64 B)", move || {
            sink.push(&Element::new(sink_sequence, "", vec![b'a'; 64]))
                .expect("push");
            sink_sequence += 1;
        }),
        element_by_hand,
        case("instantiate (on-demand)", move || {
            drop(engine.instantiate(&upper).expect("instantiate"));
        }),
        case("instantiate (pooling)", move || {
            drop(pooled_engine.instantiate(&pooled).expect("instantiate"));
        }),
        case("instantiate_async (on-demand)", move || {
            drop(block_on(async_engine.instantiate_async(&async_upper)).expect("instantiate"));
        }),
        case("instantiate (dense)", move || {
            drop(
                dense
                    .instantiate(&dense_upper_component)
                    .expect("instantiate"),
            );
        }),
    ]
}

/// One element through source → passthrough → sink by hand: the
/// pipeline's calls without its driver; through the async invoker when
/// `yielding`.
pub(super) fn element_by_hand(engine: &WasmtimeEngine, yielding: bool) -> Case {
    let mut source = instance(engine, "source", &torvyn_fixtures::sized_source(64));
    source.init(&u64::MAX.to_string()).expect("init");
    let mut pass = instance(engine, "pass", &torvyn_fixtures::passthrough_processor());
    let mut sink = instance(engine, "sink", &torvyn_fixtures::recording_sink());
    sink.init("1000000").expect("init");
    let name = match yielding {
        true => row::ELEMENT_BY_HAND_ASYNC,
        false => row::ELEMENT_BY_HAND,
    };
    case(name, move || {
        let element = match yielding {
            true => block_on(source.pull_async()),
            false => source.pull(),
        };
        let element = element.expect("pull").expect("an element");
        let outcome = match yielding {
            true => block_on(pass.process_async(&element)),
            false => pass.process(&element),
        };
        let ProcessOutcome::Emit(element) = outcome.expect("process") else {
            panic!("the passthrough emits");
        };
        match yielding {
            true => block_on(sink.push_async(&element)),
            false => sink.push(&element),
        }
        .expect("push");
    })
}

/// The element by hand on the engine and the same guests on bare
/// wasmtime's floor host, and nothing else: `torvyn bench --only element`,
/// light enough to run under `valgrind` (every other case reserves its
/// instances' address space too).
pub(super) fn element_cases() -> Vec<Case> {
    let engine = default_engine();
    vec![
        element_by_hand(&engine, false),
        super::fair_floor::fair_floor_element(engine.wasmtime()),
        floor::floor_element(engine.wasmtime(), false, false),
        floor::floor_element(engine.wasmtime(), true, false),
    ]
}
