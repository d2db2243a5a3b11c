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

use torvyn_engine::bindings::data_sink::DataSink;
use torvyn_engine::bindings::data_source::DataSource;
use torvyn_engine::bindings::transform::Transform;
use torvyn_engine::bindings::types::{
    BufferError, ElementMetaParam, ElementMetaResult, ProcessResult, StreamElement,
};
use torvyn_engine::host::FlowContext;
use torvyn_engine::{
    CompiledComponent, ComponentInvoker, Element, WasmEngine, WasmtimeEngine, WasmtimeInstance,
};
use torvyn_fixtures::transitions::{host_call_loop, noop_import_loop, LoopOp};
use wasmtime::component::{
    Component, Instance, Linker, Resource, ResourceType, TypedFunc, WasmList, WasmStr,
};
use wasmtime::Store;

use super::{bare_store, export_index, looped, Case};

/// How often a guest repeats its transition inside one export call: enough
/// that the export call itself is under 1 % of each repetition.
pub const LOOP_REPETITIONS: u32 = 500;

/// The flow context both sides answer with (W3C sizes: 32 and 16 hex digits).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID: &str = "00f067aa0ba902b7";
const FLOW_ID: &str = "bench-flow";
pub(super) const CONTENT_TYPE: &str = "text/plain";

static BYTES: [u8; 1024] = [b'x'; 1024];

/// The floor host's resources: the engine's own types, as markers only (the
/// floor host never holds one), so that the generated export types fit.
pub(super) type FloorBuffer = torvyn_engine::host::Buffer;
type FloorMutable = torvyn_engine::host::MutableBuffer;
type FloorContext = torvyn_engine::host::FlowContext;

/// A linker serving every contract import with an empty body; `read-all`
/// answers `payload_bytes` bytes.
pub(super) fn floor_linker(
    engine: &wasmtime::Engine,
    payload_bytes: usize,
) -> wasmtime::Result<Linker<()>> {
    type Buf = Resource<FloorBuffer>;
    type Mut = Resource<FloorMutable>;
    type Ctx = Resource<FloorContext>;
    let mut linker = Linker::<()>::new(engine);
    let mut types = linker.instance("torvyn:streaming/types@0.1.0")?;
    types.resource("buffer", ResourceType::host::<FloorBuffer>(), |_, _| Ok(()))?;
    types.resource(
        "mutable-buffer",
        ResourceType::host::<FloorMutable>(),
        |_, _| Ok(()),
    )?;
    types.resource(
        "flow-context",
        ResourceType::host::<FloorContext>(),
        |_, _| Ok(()),
    )?;
    types.func_wrap("[method]buffer.size", |_, _: (Buf,)| Ok((64u64,)))?;
    // What the engine answers for a lent payload: its content type is the
    // element's (in `meta`), the buffer's own is unset.
    types.func_wrap("[method]buffer.content-type", |_, _: (Buf,)| Ok(("",)))?;
    types.func_wrap("[method]buffer.read", |_, (_, _, len): (Buf, u64, u64)| {
        Ok((&BYTES[..(len as usize).min(BYTES.len())],))
    })?;
    types.func_wrap("[method]buffer.read-all", move |_, _: (Buf,)| {
        Ok((&BYTES[..payload_bytes],))
    })?;
    types.func_wrap(
        "[method]mutable-buffer.write",
        |store, (_, _, bytes): (Mut, u64, WasmList<u8>)| {
            std::hint::black_box(bytes.as_le_slice(&store));
            Ok((Ok::<(), BufferError>(()),))
        },
    )?;
    types.func_wrap(
        "[method]mutable-buffer.append",
        |store, (_, bytes): (Mut, WasmList<u8>)| {
            std::hint::black_box(bytes.as_le_slice(&store));
            Ok((Ok::<(), BufferError>(()),))
        },
    )?;
    types.func_wrap("[method]mutable-buffer.size", |_, _: (Mut,)| Ok((0u64,)))?;
    types.func_wrap("[method]mutable-buffer.capacity", |_, _: (Mut,)| {
        Ok((64u64,))
    })?;
    types.func_wrap(
        "[method]mutable-buffer.set-content-type",
        |store, (_, text): (Mut, WasmStr)| {
            std::hint::black_box(text.to_str(&store)?);
            Ok(())
        },
    )?;
    types.func_wrap("[method]mutable-buffer.freeze", |_, _: (Mut,)| {
        Ok((Buf::new_own(0),))
    })?;
    types.func_wrap("[method]flow-context.trace-id", |_, _: (Ctx,)| {
        Ok((TRACE_ID,))
    })?;
    types.func_wrap("[method]flow-context.span-id", |_, _: (Ctx,)| {
        Ok((SPAN_ID,))
    })?;
    types.func_wrap("[method]flow-context.flow-id", |_, _: (Ctx,)| {
        Ok((FLOW_ID,))
    })?;
    types.func_wrap("[method]flow-context.deadline-ns", |_, _: (Ctx,)| {
        Ok((0u64,))
    })?;
    let mut allocator = linker.instance("torvyn:streaming/buffer-allocator@0.1.0")?;
    allocator.func_wrap("allocate", |_, _: (u64,)| {
        Ok((Ok::<Mut, BufferError>(Mut::new_own(0)),))
    })?;
    allocator.func_wrap("clone-into-mutable", |_, _: (Buf,)| {
        Ok((Ok::<Mut, BufferError>(Mut::new_own(0)),))
    })?;
    let mut capabilities = linker.instance("torvyn:capabilities/capability-query@0.1.0")?;
    capabilities.func_wrap("has-capability", |store, (name,): (WasmStr,)| {
        std::hint::black_box(name.to_str(&store)?);
        Ok((false,))
    })?;
    let mut noop = linker.instance("noop-host")?;
    noop.func_wrap("noop", |_, (): ()| Ok(()))?;
    Ok(linker)
}

/// The host-call loop on the floor host.
struct FloorLoop {
    store: Store<()>,
    instance: Instance,
}

impl FloorLoop {
    fn new(engine: &wasmtime::Engine, component: &Component, payload_bytes: usize) -> FloorLoop {
        let linker = floor_linker(engine, payload_bytes).expect("floor linker");
        let mut store = bare_store(engine);
        let instance = linker
            .instantiate(&mut store, component)
            .expect("the loop instantiates on the floor host");
        FloorLoop { store, instance }
    }

    fn func<P, R>(&mut self, name: &str) -> TypedFunc<P, R>
    where
        P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
        R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
    {
        let index = export_index(&self.instance, &mut self.store, "host-loop", name);
        self.instance
            .get_typed_func(&mut self.store, index)
            .unwrap_or_else(|e| panic!("host-loop#{name}: {e}"))
    }
}

/// A floor row: `op` repeated on the floor host.
fn floor_case(engine: &wasmtime::Engine, component: &Component, row: &OpRow) -> Case {
    let mut floor = FloorLoop::new(engine, component, row.payload_bytes);
    let run = floor.func::<(u32, u32, Resource<FloorBuffer>, Resource<FloorContext>), ()>("run");
    let code = row.op.code();
    looped(floor_name(&row.label), LOOP_REPETITIONS, move || {
        run.call(
            &mut floor.store,
            (
                code,
                LOOP_REPETITIONS,
                Resource::new_borrow(0),
                Resource::new_borrow(0),
            ),
        )
        .expect("floor loop");
    })
}

/// An engine row: `op` repeated on the engine's host, through `process`.
/// (One compiled component serves every row, as one `Component` serves the
/// floor rows: the rows then share their machine code and its placement.)
fn engine_case(engine: &WasmtimeEngine, component: &CompiledComponent, row: &OpRow) -> Case {
    let mut instance: WasmtimeInstance = engine.instantiate(component).expect("instantiate");
    instance
        .set_flow(FlowContext {
            trace_id: TRACE_ID.into(),
            span_id: SPAN_ID.into(),
            deadline: None,
            flow_id: FLOW_ID.into(),
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

/// One repeated operation of the report, with its label and payload.
pub struct OpRow {
    /// The op the guest repeats.
    pub op: LoopOp,
    /// What the row is called.
    pub label: String,
    /// Payload size (what `read-all` returns).
    pub payload_bytes: usize,
    /// Bytes one repetition must copy (its memcpy allowance).
    pub copied_bytes: usize,
}

/// The ops the report measures, each on both hosts.
pub fn op_rows() -> Vec<OpRow> {
    let mut rows = Vec::new();
    for op in LoopOp::ALL {
        let sizes: &[(usize, &str)] = match op {
            LoopOp::BufferReadAll => &[(64, " (64 B)"), (1024, " (1 KiB)")],
            LoopOp::BufferRead64 | LoopOp::Write64 | LoopOp::Append64 => &[(64, " (64 B)")],
            _ => &[(64, "")],
        };
        for &(payload_bytes, suffix) in sizes {
            let calls = op.host_calls();
            let label = if calls.is_empty() {
                "loop and export call only".to_string()
            } else {
                format!("{}{suffix}", calls.join(" + "))
            };
            let label = match op {
                LoopOp::BufferContentType => format!("{label} (unset: empty)"),
                _ => label,
            };
            let copied_bytes = match op {
                LoopOp::BufferReadAll => payload_bytes,
                LoopOp::BufferRead64 | LoopOp::Write64 | LoopOp::Append64 => 64,
                _ => 0,
            };
            rows.push(OpRow {
                op,
                label,
                payload_bytes,
                copied_bytes,
            });
        }
    }
    rows
}

/// An element lending `payload` (and flow context 0) with `meta`.
pub(super) fn lent(meta: &ElementMetaResult, payload: u32) -> StreamElement<'_> {
    StreamElement {
        meta: ElementMetaParam {
            sequence: meta.sequence,
            timestamp_ns: meta.timestamp_ns,
            content_type: &meta.content_type,
        },
        payload: Resource::new_borrow(payload),
        context: Resource::new_borrow(0),
    }
}

/// One 64 B element through the pipeline's own three guests (source,
/// passthrough, sink) on the floor host, called by hand through the
/// generated bindings on bare wasmtime: what wasmtime alone costs for the
/// element, with no host work at all. With `store_each`, each guest has a
/// store of its own, as on the engine (an instance that traps must be
/// dropped without its neighbours, and a store is wasmtime's unit of
/// that); without, the three share one, whose data then stays warmer.
/// With `yielding` (measured with a store each only), every export is
/// entered with `call_async`: wasmtime's own price of the async element.
pub(super) fn floor_element(engine: &wasmtime::Engine, store_each: bool, yielding: bool) -> Case {
    let linker = floor_linker(engine, 64).expect("floor linker");
    let load = |bytes: Vec<u8>| Component::new(engine, bytes).expect("compiles");
    let mut stores: Vec<Store<()>> = (0..if store_each { 3 } else { 1 })
        .map(|_| bare_store(engine))
        .collect();
    let [source_store, pass_store, sink_store] = if store_each { [0, 1, 2] } else { [0, 0, 0] };
    let source = DataSource::instantiate(
        &mut stores[source_store],
        &load(torvyn_fixtures::sized_source(64)),
        &linker,
    )
    .expect("source");
    let pass = Transform::instantiate(
        &mut stores[pass_store],
        &load(torvyn_fixtures::passthrough_processor()),
        &linker,
    )
    .expect("passthrough");
    let sink = DataSink::instantiate(
        &mut stores[sink_store],
        &load(torvyn_fixtures::recording_sink()),
        &linker,
    )
    .expect("sink");
    source
        .torvyn_streaming_lifecycle()
        .call_init(&mut stores[source_store], &u64::MAX.to_string())
        .expect("init runs")
        .expect("init succeeds");
    sink.torvyn_streaming_lifecycle()
        .call_init(&mut stores[sink_store], "1000000")
        .expect("init runs")
        .expect("init succeeds");
    let name = match (store_each, yielding) {
        (true, true) => FLOOR_ELEMENT_ASYNC,
        (true, false) => FLOOR_ELEMENT_STORES,
        (false, false) => FLOOR_ELEMENT,
        (false, true) => panic!("the async floor element is measured with a store each"),
    };
    looped(name, 1, move || {
        // The same three exports either way; `enter` picks the door.
        macro_rules! enter {
            ($func:expr, $store:expr, $params:expr) => {{
                let func = $func;
                let store = &mut stores[$store];
                if yielding {
                    super::block_on(func.call_async(store, $params))
                } else {
                    func.call(store, $params)
                }
            }};
        }
        let (pulled,) = enter!(
            source.torvyn_streaming_source().func_pull(),
            source_store,
            ()
        )
        .expect("pull runs");
        let pulled = pulled.expect("pull succeeds").expect("an element");
        let (processed,) = enter!(
            pass.torvyn_streaming_processor().func_process(),
            pass_store,
            (lent(&pulled.meta, pulled.payload.rep()),)
        )
        .expect("process runs");
        let ProcessResult::Emit(passed) = processed.expect("process succeeds") else {
            panic!("the passthrough emits");
        };
        let (pushed,) = enter!(
            sink.torvyn_streaming_sink().func_push(),
            sink_store,
            (lent(&passed.meta, passed.payload.rep()),)
        )
        .expect("push runs");
        pushed.expect("push succeeds");
    })
}

/// `process` → `drop` of the engine's drop processor on the floor host,
/// called through the generated bindings on bare wasmtime: wasmtime's own
/// cost of exactly that export call (with `call_async` when `yielding`).
pub(super) fn floor_drop_case(engine: &wasmtime::Engine, yielding: bool) -> Case {
    let linker = floor_linker(engine, 64).expect("floor linker");
    let mut store = bare_store(engine);
    let component =
        Component::new(engine, torvyn_fixtures::drop_processor()).expect("drop processor");
    let processor = Transform::instantiate(&mut store, &component, &linker).expect("instantiate");
    let meta = ElementMetaResult {
        sequence: 1,
        timestamp_ns: 0,
        content_type: CONTENT_TYPE.to_string(),
    };
    let name = if yielding {
        FLOOR_DROP_ASYNC
    } else {
        FLOOR_DROP
    };
    looped(name, 1, move || {
        let process = processor.torvyn_streaming_processor().func_process();
        let (result,) = if yielding {
            super::block_on(process.call_async(&mut store, (lent(&meta, 0),)))
        } else {
            process.call(&mut store, (lent(&meta, 0),))
        }
        .expect("process runs");
        result.expect("process succeeds");
    })
}

/// The floor row's name for an op label.
pub fn floor_name(label: &str) -> String {
    format!("floor: {label}")
}

/// The engine row's name for an op label.
pub fn engine_name(label: &str) -> String {
    format!("engine: {label}")
}

/// Row names of the generic transitions.
pub const NOOP_IMPORT: &str = "floor: no-op import call";
/// A borrow lent in an export call and dropped by the guest.
pub const BORROW_LENT_DROPPED: &str = "floor: borrow lent, then resource.drop";
/// An owned handle passed in and dropped (host destructor called).
pub const OWN_PASSED_DROPPED: &str = "floor: own passed, then resource.drop";
/// A 10-byte string parameter lowered through the guest's `cabi_realloc`.
pub const STRING_PARAM: &str = "floor: string param (cabi_realloc)";
/// `process` → `drop` on the floor host.
pub const FLOOR_DROP: &str = "floor: typed process -> drop, the same guest on the floor host";
/// `process` → `drop` on the floor host through `call_async`.
pub const FLOOR_DROP_ASYNC: &str =
    "floor: async typed process -> drop, the same guest on the floor host";
/// One 64 B element through the pipeline's guests on the floor host, all
/// three in one store.
pub const FLOOR_ELEMENT: &str =
    "floor: typed pull -> process -> push (64 B), the same guests on the floor host";
/// The same with `call_async`, a store each.
pub const FLOOR_ELEMENT_ASYNC: &str =
    "floor: async typed pull -> process -> push (64 B), the same guests on the floor host, a store each";
/// The same, each guest in a store of its own (as on the engine).
pub const FLOOR_ELEMENT_STORES: &str =
    "floor: typed pull -> process -> push (64 B), the same guests on the floor host, a store each";
/// Host memcpy of 1 KiB.
pub const MEMCPY_KIB: &str = "host memcpy 1 KiB";

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
        "| one 64 B element by hand ≤ 1.2× the same guests on bare wasmtime's floor host, a store each ({bare_stores:.1} ns) | {:.2}× | {} |\n",
        by_hand / bare_stores,
        verdict(by_hand <= 1.2 * bare_stores)
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
