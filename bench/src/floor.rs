//! The floor host: the contract's imports linked with their exact
//! signatures and empty bodies, and the cases that run guests on it —
//! what wasmtime alone costs for each transition and for a whole element.

use torvyn_engine::bindings::data_sink::DataSink;
use torvyn_engine::bindings::data_source::DataSource;
use torvyn_engine::bindings::transform::Transform;
use torvyn_engine::bindings::types::{
    BufferError, ElementMetaParam, ElementMetaResult, ProcessResult, StreamElement,
};
use torvyn_fixtures::transitions::LoopOp;
use wasmtime::component::{
    Component, Instance, Linker, LinkerInstance, Resource, ResourceType, TypedFunc, WasmList,
    WasmStr,
};
use wasmtime::Store;

use super::{bare_store, export_index, looped, Case};

/// How often a guest repeats its transition inside one export call: enough
/// that the export call itself is under 1 % of each repetition.
pub const LOOP_REPETITIONS: u32 = 500;

/// The flow context both sides answer with (W3C sizes: 32 and 16 hex digits).
pub(super) const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub(super) const SPAN_ID: &str = "00f067aa0ba902b7";
pub(super) const FLOW_ID: &str = "bench-flow";
pub(super) const CONTENT_TYPE: &str = "text/plain";

pub(super) static BYTES: [u8; 1024] = [b'x'; 1024];

/// The floor host's resources: the engine's own types, as markers only (the
/// floor host never holds one), so that the generated export types fit.
pub(super) type FloorBuffer = torvyn_engine::host::Buffer;
pub(super) type FloorMutable = torvyn_engine::host::MutableBuffer;
pub(super) type FloorContext = torvyn_engine::host::FlowContext;

/// A linker serving every contract import with an empty body; `read-all`
/// answers `payload_bytes` bytes.
pub(super) fn floor_linker(
    engine: &wasmtime::Engine,
    payload_bytes: usize,
) -> wasmtime::Result<Linker<()>> {
    type Buf = Resource<FloorBuffer>;
    type Mut = Resource<FloorMutable>;
    let mut linker = Linker::<()>::new(engine);
    let mut types = linker.instance("torvyn:streaming/types@0.1.0")?;
    types.resource("buffer", ResourceType::host::<FloorBuffer>(), |_, _| Ok(()))?;
    types.resource(
        "mutable-buffer",
        ResourceType::host::<FloorMutable>(),
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
    link_flow_context(&mut types)?;
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

/// The flow context (the host keeps the one it lends) and its methods,
/// answering constants: the floor host's and the fair floor host's alike
/// (the engine shares its identifiers too).
pub(super) fn link_flow_context<T: 'static>(
    types: &mut LinkerInstance<'_, T>,
) -> wasmtime::Result<()> {
    type Ctx = Resource<FloorContext>;
    types.resource(
        "flow-context",
        ResourceType::host::<FloorContext>(),
        |_, _| Ok(()),
    )?;
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
    Ok(())
}

/// The pipeline's three guests (a 64 B source, the passthrough, the
/// recording sink) instantiated on `linker` in `stores[at[0]]`,
/// `stores[at[1]]`, `stores[at[2]]`, the source and sink initialised.
pub(super) fn element_guests<T: 'static>(
    engine: &wasmtime::Engine,
    linker: &Linker<T>,
    stores: &mut [Store<T>],
    at: [usize; 3],
) -> (DataSource, Transform, DataSink) {
    let load = |bytes: Vec<u8>| Component::new(engine, bytes).expect("compiles");
    let source = DataSource::instantiate(
        &mut stores[at[0]],
        &load(torvyn_fixtures::sized_source(64)),
        linker,
    )
    .expect("source");
    let pass = Transform::instantiate(
        &mut stores[at[1]],
        &load(torvyn_fixtures::passthrough_processor()),
        linker,
    )
    .expect("passthrough");
    let sink = DataSink::instantiate(
        &mut stores[at[2]],
        &load(torvyn_fixtures::recording_sink()),
        linker,
    )
    .expect("sink");
    source
        .torvyn_streaming_lifecycle()
        .call_init(&mut stores[at[0]], &u64::MAX.to_string())
        .expect("init runs")
        .expect("init succeeds");
    sink.torvyn_streaming_lifecycle()
        .call_init(&mut stores[at[2]], "1000000")
        .expect("init runs")
        .expect("init succeeds");
    (source, pass, sink)
}

/// The host-call loop on the floor host.
pub(super) struct FloorLoop {
    pub(super) store: Store<()>,
    pub(super) instance: Instance,
}

impl FloorLoop {
    pub(super) fn new(
        engine: &wasmtime::Engine,
        component: &Component,
        payload_bytes: usize,
    ) -> FloorLoop {
        let linker = floor_linker(engine, payload_bytes).expect("floor linker");
        let mut store = bare_store(engine);
        let instance = linker
            .instantiate(&mut store, component)
            .expect("the loop instantiates on the floor host");
        FloorLoop { store, instance }
    }

    pub(super) fn func<P, R>(&mut self, name: &str) -> TypedFunc<P, R>
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
pub(super) fn floor_case(engine: &wasmtime::Engine, component: &Component, row: &OpRow) -> Case {
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
    let mut stores: Vec<Store<()>> = (0..if store_each { 3 } else { 1 })
        .map(|_| bare_store(engine))
        .collect();
    let [source_store, pass_store, sink_store] = if store_each { [0, 1, 2] } else { [0, 0, 0] };
    let (source, pass, sink) = element_guests(
        engine,
        &linker,
        &mut stores,
        [source_store, pass_store, sink_store],
    );
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
