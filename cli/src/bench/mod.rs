//! The benchmark scenarios, shared by `torvyn bench` (one run, ratios) and
//! the criterion benches (`cargo bench`).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use torvyn_engine::{
    Allocation, AsyncComponentInvoker, ComponentInvoker, Element, EngineConfig, InstanceDensity,
    ProcessOutcome, WasmEngine, WasmtimeEngine,
};
use wasmtime::component::{Component, ComponentExportIndex, Instance, Linker, TypedFunc, Val};
use wasmtime::Store;

use crate::alloc_counter;

mod compute;
mod flows;
mod settings;
pub mod streams;
mod swap;
mod transitions;

pub use flows::{async_flows_rate, pipeline_rate};
pub use transitions::{transition_cases, LOOP_REPETITIONS};

/// One measured operation: `run` does it `ops` times.
pub struct Case {
    /// Row name.
    pub name: String,
    /// Operations one `run` does (a guest loop repeats its transition).
    pub ops: u32,
    /// Does the operation `ops` times.
    pub run: Box<dyn FnMut()>,
}

fn case(name: impl Into<String>, run: impl FnMut() + 'static) -> Case {
    looped(name, 1, run)
}

/// A case whose `run` does `ops` operations (ns/op divides by them).
fn looped(name: impl Into<String>, ops: u32, run: impl FnMut() + 'static) -> Case {
    Case {
        name: name.into(),
        ops,
        run: Box::new(run),
    }
}

fn default_engine() -> WasmtimeEngine {
    WasmtimeEngine::new(EngineConfig::builder().build().expect("default config")).expect("engine")
}

fn dense_engine() -> WasmtimeEngine {
    WasmtimeEngine::new(
        EngineConfig::builder()
            .density(InstanceDensity::Dense)
            .build()
            .expect("dense config"),
    )
    .expect("engine")
}

fn instance(engine: &WasmtimeEngine, name: &str, bytes: &[u8]) -> torvyn_engine::WasmtimeInstance {
    let component = engine
        .compile(name, bytes)
        .expect("bundled component compiles");
    engine
        .instantiate(&component)
        .expect("bundled component instantiates")
}

/// Polls a future that never waits (a sync component call made through
/// `call_async`) to completion.
#[inline(always)]
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
    }
}

/// A store of bare wasmtime for floors, set up as the engine sets up its
/// own: no deadline, and fuel (the engine meters fuel always, so any
/// component may get a limit: the floors pay for metering as every
/// instance does; only a settings variant turns metering off).
fn bare_store(engine: &wasmtime::Engine) -> Store<()> {
    let mut store = Store::new(engine, ());
    store.set_epoch_deadline(torvyn_engine::NO_DEADLINE);
    if engine.get_consume_fuel() {
        store.set_fuel(u64::MAX).expect("fuel is metered");
    }
    store
}

/// The index of function `func` of exported interface `interface`.
fn export_index(
    instance: &Instance,
    store: &mut Store<()>,
    interface: &str,
    func: &str,
) -> ComponentExportIndex {
    let interface_index = instance
        .get_export_index(&mut *store, None, interface)
        .unwrap_or_else(|| panic!("no export `{interface}`"));
    instance
        .get_export_index(&mut *store, Some(&interface_index), func)
        .unwrap_or_else(|| panic!("no function `{interface}#{func}`"))
}

/// The names of the rows the report reads again (for ratios and the
/// other tables): one constant for the case and every lookup, so a
/// renamed row cannot leave a ratio reading nothing.
pub mod row {
    /// `empty component call (floor)`.
    pub const FLOOR: &str = "empty component call (floor)";
    /// `empty component call, call_async`.
    pub const CALL_ASYNC: &str = "empty component call, call_async";
    /// `typed process -> drop`.
    pub const TYPED_DROP: &str = "typed process -> drop";
    /// `async typed process -> drop`.
    pub const ASYNC_DROP: &str = "async typed process -> drop";
    /// `dense typed process -> drop`.
    pub const DENSE_DROP: &str = "dense typed process -> drop";
    /// `dynamic process -> drop`.
    pub const DYNAMIC_DROP: &str = "dynamic process -> drop";
    /// `naive flat-Val call -> drop`.
    pub const NAIVE_FLAT: &str = "naive flat-Val call -> drop";
    /// `typed flat call (same 4 scalars)`.
    pub const TYPED_FLAT: &str = "typed flat call (same 4 scalars)";
    /// `typed uppercase copy 1 KiB (read + write)`.
    pub const UPPERCASE: &str = "typed uppercase copy 1 KiB (read + write)";
    /// `dense typed uppercase copy 1 KiB`.
    pub const DENSE_UPPERCASE: &str = "dense typed uppercase copy 1 KiB";
    /// `dynamic uppercase copy 1 KiB`.
    pub const DYNAMIC_UPPERCASE: &str = "dynamic uppercase copy 1 KiB";
    /// The row of one 64 B element pulled, passed through and pushed by hand.
    pub const ELEMENT_BY_HAND: &str = "typed pull -> process -> push (64 B), by hand";
    /// The same through the async invoker (`call_async`).
    pub const ELEMENT_BY_HAND_ASYNC: &str = "async typed pull -> process -> push (64 B), by hand";
}

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
fn element_cases() -> Vec<Case> {
    let engine = default_engine();
    vec![
        element_by_hand(&engine, false),
        transitions::floor_element(engine.wasmtime(), false, false),
        transitions::floor_element(engine.wasmtime(), true, false),
    ]
}

/// A measured case.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Row name.
    pub name: String,
    /// Median nanoseconds per operation over the batches.
    pub ns: f64,
    /// Nanoseconds per operation of the fastest tenth of the batches (the
    /// 10th percentile): the machine's quietest moments.
    pub fastest: f64,
    /// Host heap allocations per operation (needs the counting allocator).
    pub allocations: f64,
}

/// Times every case in one run: after a warm-up, `batches` rounds in which
/// each case runs one batch of `per_batch(case)` operations, so that all
/// cases see the same machine conditions; the median batch gives ns/op.
pub fn measure_all(
    cases: &mut [Case],
    batches: usize,
    per_batch: impl Fn(&Case) -> u32,
) -> Vec<Measurement> {
    let counts: Vec<u32> = cases.iter().map(&per_batch).collect();
    for (case, &count) in cases.iter_mut().zip(&counts) {
        for _ in 0..count.min(1000) {
            (case.run)();
        }
    }
    let mut samples = vec![Vec::with_capacity(batches); cases.len()];
    let mut allocations = vec![0u64; cases.len()];
    for _ in 0..batches {
        for (i, case) in cases.iter_mut().enumerate() {
            let before = alloc_counter::allocations();
            let start = Instant::now();
            for _ in 0..counts[i] {
                (case.run)();
            }
            let elapsed = start.elapsed();
            allocations[i] += alloc_counter::allocations() - before;
            let ops = f64::from(counts[i]) * f64::from(case.ops);
            samples[i].push(elapsed.as_nanos() as f64 / ops);
        }
    }
    cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let mut batch = samples[i].clone();
            batch.sort_by(f64::total_cmp);
            Measurement {
                name: case.name.clone(),
                ns: batch[batch.len() / 2],
                fastest: batch[batch.len() / 10],
                allocations: allocations[i] as f64
                    / (batches as f64 * f64::from(counts[i]) * f64::from(case.ops)),
            }
        })
        .collect()
}

/// What `count` live instances of the uppercase component cost on a
/// [`InstanceDensity::Dense`] engine, made with `instantiate_async`, each
/// then called once: (resident bytes per instance, ns per instantiation).
pub fn density(count: usize) -> (f64, f64) {
    let engine = dense_engine();
    let upper = engine
        .compile("upper", &torvyn_fixtures::uppercase_processor())
        .expect("compile");
    let element = Element::new(0, "text/plain", "abc");
    let before = rss_bytes();
    let mut instances = Vec::with_capacity(count);
    let start = Instant::now();
    for _ in 0..count {
        instances.push(block_on(engine.instantiate_async(&upper)).expect("instantiate"));
    }
    let per_instance_ns = start.elapsed().as_nanos() as f64 / count as f64;
    for instance in &mut instances {
        block_on(instance.process_async(&element)).expect("process");
    }
    let per_instance_bytes = rss_bytes().saturating_sub(before) as f64 / count as f64;
    (per_instance_bytes, per_instance_ns)
}

/// Resident set size of this process, in bytes (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Every measured case: call-level operations, transitions, settings.
fn all_cases() -> Vec<Case> {
    let mut cases = call_cases();
    cases.extend(transition_cases());
    cases.extend(settings::setting_cases());
    cases.extend(compute::compute_cases());
    cases
}

/// Batch size for `case`: `per_batch` operations, fewer for instantiation.
fn batch_size(case: &Case, per_batch: u32) -> u32 {
    if case.name.contains("instantiate") {
        per_batch / 20
    } else if compute::is_row(&case.name) {
        // About as long a batch as the others: one call is the guest's loop.
        (per_batch / compute::calls_cost(&case.name)).max(2)
    } else {
        // Looped cases: about as many operations as the others.
        (per_batch / case.ops).max(2)
    }
}

/// The cases whose names contain `filter`, measured over many batches (for
/// profiling one operation), as a Markdown table.
pub fn only(filter: &str, quick: bool) -> String {
    if filter == "swap" {
        let table = swap::report(&swap::measure(swap_elements(quick), 20));
        return format!("{table}\n{}\n", cpu_model());
    }
    if filter == "flows" {
        return format!("{}\n{}\n", flows::breakdown(quick), cpu_model());
    }
    let mut cases: Vec<Case> = if filter == "element" {
        element_cases()
    } else {
        all_cases()
            .into_iter()
            .filter(|case| case.name.contains(filter))
            .collect()
    };
    if cases.is_empty() {
        return format!("no benchmark operation contains `{filter}`\n");
    }
    let batches = if quick { 7 } else { 2001 };
    let rows = measure_all(&mut cases, batches, |case| batch_size(case, 5_000));
    let mut out = String::from("| operation | ns/op | host allocs/op |\n|---|---:|---:|\n");
    for row in &rows {
        out.push_str(&format!(
            "| {} | {:.1} | {:.2} |\n",
            row.name, row.ns, row.allocations
        ));
    }
    if filter == "element" {
        out.push_str(&element_ratios(&rows));
    }
    out.push_str(&format!("\n{}\n", cpu_model()));
    out
}

/// The element's engine / bare ratio over the median batches and over the
/// fastest tenth: on a VM whose speed changes from minute to minute the
/// two differ, and the fastest batches (core running fast, caches not shared
/// with a neighbour) are where each instruction-cache miss costs the most
/// cycles, so where the engine's larger code path shows most.
fn element_ratios(rows: &[Measurement]) -> String {
    let engine = measured(rows, row::ELEMENT_BY_HAND);
    let bare = measured(rows, transitions::FLOOR_ELEMENT_STORES);
    format!(
        "\n| engine by hand / bare wasmtime, a store each | ratio |\n|---|---:|\n\
         | median batches | {:.2}× |\n\
         | fastest tenth of batches | {:.2}× |\n",
        engine.ns / bare.ns,
        engine.fastest / bare.fastest
    )
}

/// Elements of the live-upgrade runs: long enough for 20 swaps 5 ms apart.
fn swap_elements(quick: bool) -> u64 {
    if quick {
        300_000
    } else {
        1_000_000
    }
}

/// Rows printed in their own tables (transitions, settings), not the first.
fn is_detail_row(name: &str) -> bool {
    ["floor: ", "engine: ", "setting: ", transitions::MEMCPY_KIB]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || compute::is_row(name)
}

/// The row named `name`: a report that reads a row no case measured is a
/// bug in the bench (a renamed case), said at once rather than printed as
/// a ratio of NaN.
fn measured<'r>(rows: &'r [Measurement], name: &str) -> &'r Measurement {
    rows.iter()
        .find(|row| row.name == name)
        .unwrap_or_else(|| panic!("the bench report reads row `{name}`, which no case measured"))
}

/// The whole report of `torvyn bench`, as Markdown.
pub fn report(quick: bool) -> String {
    let (batches, per_batch, elements) = if quick {
        (7, 2_000, 20_000)
    } else {
        (31, 5_000, 200_000)
    };
    let mut cases = all_cases();
    let rows = measure_all(&mut cases, batches, |case| batch_size(case, per_batch));
    let ns = |name: &str| measured(&rows, name).ns;
    let floor = ns(row::FLOOR);
    let typed_drop = ns(row::TYPED_DROP);

    let mut out = String::new();
    out.push_str("| operation | ns/op | × floor | host allocs/op |\n|---|---:|---:|---:|\n");
    for row in rows.iter().filter(|row| !is_detail_row(&row.name)) {
        out.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} |\n",
            row.name,
            row.ns,
            row.ns / floor,
            row.allocations
        ));
    }
    // Alternate one- and two-flow runs and keep the medians, for a fair ratio.
    let median = flows::median;
    let (mut ones, mut twos) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ones.push(pipeline_rate(64, elements / 2, 1));
        twos.push(pipeline_rate(64, elements / 2, 2));
    }
    let (rate_small, rate_two) = (median(ones), median(twos));
    let rate_large = pipeline_rate(16 << 10, elements / 10, 1);
    // 1,000 flows of at least 200 elements each (2,000 in the full run):
    // long enough that each flow's first, cold touch of its instances is
    // not what is measured.
    let async_flows = async_flows_rate(1_000, (elements / 100).max(200), 2);
    let live = if quick { 10_000 } else { 100_000 };
    let (bytes_per_instance, ns_per_instance) = density(live);
    out.push_str("\n| pipeline (source → passthrough → sink) | elements/s |\n|---|---:|\n");
    out.push_str(&format!("| 64 B payloads, 1 flow | {rate_small:.0} |\n"));
    out.push_str(&format!("| 16 KiB payloads, 1 flow | {rate_large:.0} |\n"));
    out.push_str(&format!(
        "| 64 B payloads, 2 flows on 2 threads | {rate_two:.0} |\n"
    ));
    out.push_str(&format!(
        "| 64 B payloads, 1,000 async flows on a 2-worker tokio runtime | {async_flows:.0} |\n"
    ));
    out.push_str(&format!(
        "\n| {live} live instances (dense, instantiate_async, one call each) | per instance |\n|---|---:|\n\
         | resident memory | {:.1} KiB |\n| instantiate_async | {:.1} µs |\n",
        bytes_per_instance / 1024.0,
        ns_per_instance / 1000.0
    ));
    let allocs = |name: &str| measured(&rows, name).allocations;
    out.push_str(&transitions::report(&ns, &allocs, 1e9 / rate_small));
    out.push_str(&settings::report(&ns));
    out.push_str(&compute::report(&ns));
    out.push_str(&swap::report(&swap::measure(swap_elements(quick), 20)));

    out.push_str("\n| ratio | measured | target |\n|---|---:|---|\n");
    let ratios = [
        ("typed drop / floor", typed_drop / floor, "≤ 1.5"),
        (
            "dynamic drop / typed drop",
            ns(row::DYNAMIC_DROP) / typed_drop,
            "≥ 2",
        ),
        (
            "naive flat-Val / typed drop",
            ns(row::NAIVE_FLAT) / typed_drop,
            "≥ 3",
        ),
        (
            "naive flat-Val / typed flat (same function)",
            ns(row::NAIVE_FLAT) / ns(row::TYPED_FLAT),
            "-",
        ),
        (
            "dynamic / typed, uppercase copy 1 KiB",
            ns(row::DYNAMIC_UPPERCASE) / ns(row::UPPERCASE),
            "-",
        ),
        ("call_async / call", ns(row::CALL_ASYNC) / floor, "-"),
        ("2 flows / 1 flow", rate_two / rate_small, "≥ 1.7"),
        (
            "async typed drop / sync typed drop",
            ns(row::ASYNC_DROP) / typed_drop,
            "≤ 1.3",
        ),
        (
            "async / sync typed drop, the same call on bare wasmtime's floor host",
            ns(transitions::FLOOR_DROP_ASYNC) / ns(transitions::FLOOR_DROP),
            "-",
        ),
        (
            "async typed drop: host allocations per call",
            allocs(row::ASYNC_DROP),
            "≤ 1",
        ),
        (
            "1,000 async flows (2 workers) / 1 sync flow",
            async_flows / rate_small,
            "≥ 1.6",
        ),
        (
            "its ceiling with wasmtime's fibers as the only async cost (`--only flows`)",
            flows::ceiling(
                rate_two / rate_small,
                1e9 / rate_small,
                ns(transitions::FLOOR_ELEMENT_ASYNC) - ns(transitions::FLOOR_ELEMENT_STORES),
            ),
            "-",
        ),
        (
            "dense / guarded, typed drop (explicit bounds checks)",
            ns(row::DENSE_DROP) / typed_drop,
            "-",
        ),
        (
            "dense / guarded, uppercase copy 1 KiB",
            ns(row::DENSE_UPPERCASE) / ns(row::UPPERCASE),
            "-",
        ),
    ];
    for (name, value, target) in ratios {
        out.push_str(&format!("| {name} | {value:.2} | {target} |\n"));
    }
    out.push_str(&format!(
        "\n{}; {} cores; medians of {batches} batches; pooling instantiation target ≤ 20 µs.\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    ));
    out
}

/// The machine's CPU model (`model name` of `/proc/cpuinfo`): ratios differ
/// between machines of one kind, and the table says which it was.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| format!("CPU: {}", model.trim()))
        })
        .unwrap_or_else(|| "CPU: unknown (no /proc/cpuinfo model name)".into())
}
