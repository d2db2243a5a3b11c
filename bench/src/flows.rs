//! Whole flows in numbers: elements per second through source →
//! passthrough → sink, one or two sync flows on threads and many async
//! flows on a tokio runtime, and (`torvyn bench --only flows`) where the
//! async flows' time goes against one sync flow: the fiber wasmtime makes
//! for every `call_async`, the flows taking turns on a worker, and how a
//! second worker scales, each measured, multiplied back into the ratio.

use std::sync::Arc;
use std::time::Instant;

use torvyn_engine::{Pipeline, WasmEngine, WasmtimeEngine};

use super::{default_engine, measure_all};

/// The pipeline's three components compiled on `engine`: a source of
/// `payload_bytes` payloads, the passthrough, the recording sink.
pub(super) fn pipeline_components(
    engine: &WasmtimeEngine,
    payload_bytes: u32,
) -> [torvyn_engine::CompiledComponent; 3] {
    let compile = |name: &str, bytes: &[u8]| engine.compile(name, bytes).expect(name);
    [
        compile("source", &torvyn_fixtures::sized_source(payload_bytes)),
        compile("passthrough", &torvyn_fixtures::passthrough_processor()),
        compile("sink", &torvyn_fixtures::recording_sink()),
    ]
}

/// Elements per second through source → passthrough → sink with payloads of
/// `payload_bytes`, over `flows` pipelines on as many threads.
pub fn pipeline_rate(payload_bytes: u32, elements: u64, flows: usize) -> f64 {
    let engine = default_engine();
    let [source, upper, sink] = pipeline_components(&engine, payload_bytes);
    let run_flow = || {
        let mut pipeline = Pipeline::new(
            engine.instantiate(&source).expect("source"),
            vec![engine.instantiate(&upper).expect("upper")],
            engine.instantiate(&sink).expect("sink"),
        )
        .expect("pipeline");
        pipeline.init(&elements.to_string()).expect("init");
        let report = pipeline.run(|_| {}).expect("run");
        assert_eq!(report.delivered, elements);
    };
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..flows {
            scope.spawn(run_flow);
        }
    });
    (elements * flows as u64) as f64 / start.elapsed().as_secs_f64()
}

/// Elements per second through `flows` concurrent source → passthrough →
/// sink flows of 64 B elements, each a task on a tokio runtime with
/// `workers` worker threads (all calls async).
pub fn async_flows_rate(flows: usize, elements_per_flow: u64, workers: usize) -> f64 {
    let engine = Arc::new(default_engine());
    let compile = |name: &str, bytes: &[u8]| engine.compile(name, bytes).expect(name);
    let source = compile("source", &torvyn_fixtures::sized_source(64));
    let pass = compile("passthrough", &torvyn_fixtures::passthrough_processor());
    let sink = compile("sink", &torvyn_fixtures::recording_sink());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut pipelines = Vec::with_capacity(flows);
        for _ in 0..flows {
            let mut pipeline = Pipeline::new(
                engine.instantiate_async(&source).await.expect("source"),
                vec![engine.instantiate_async(&pass).await.expect("pass")],
                engine.instantiate_async(&sink).await.expect("sink"),
            )
            .expect("pipeline");
            pipeline
                .init_async(&elements_per_flow.to_string())
                .await
                .expect("init");
            pipelines.push(pipeline);
        }
        let start = Instant::now();
        let tasks: Vec<_> = pipelines
            .into_iter()
            .map(|mut pipeline| {
                tokio::spawn(async move {
                    let report = pipeline.run_async(|_| {}).await.expect("run");
                    assert_eq!(report.delivered, elements_per_flow);
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("flow");
        }
        (flows as u64 * elements_per_flow) as f64 / start.elapsed().as_secs_f64()
    })
}

/// The median of `rates`.
pub(super) fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// The five flow rates the breakdown multiplies, elements per second, each
/// the median of rounds that alternate them (so each sees the same hour).
struct Rates {
    sync_one: f64,
    sync_two: f64,
    async_one: f64,
    many_one_worker: f64,
    many_two_workers: f64,
}

fn measure_rates(quick: bool) -> Rates {
    let (rounds, elements, per_flow) = if quick {
        (3, 20_000, 200)
    } else {
        (5, 100_000, 2_000)
    };
    let mut samples: [Vec<f64>; 5] = Default::default();
    for _ in 0..rounds {
        samples[0].push(pipeline_rate(64, elements, 1));
        samples[1].push(pipeline_rate(64, elements, 2));
        samples[2].push(async_flows_rate(1, elements, 1));
        samples[3].push(async_flows_rate(1_000, per_flow, 1));
        samples[4].push(async_flows_rate(1_000, per_flow, 2));
    }
    let [sync_one, sync_two, async_one, many_one_worker, many_two_workers] = samples.map(median);
    Rates {
        sync_one,
        sync_two,
        async_one,
        many_one_worker,
        many_two_workers,
    }
}

/// One element by hand, ns, four ways: (bare wasmtime sync, bare wasmtime
/// async, engine sync, engine async); bare wasmtime with a store per guest,
/// as on the engine.
fn elements_by_hand(quick: bool) -> [f64; 4] {
    let engine = default_engine();
    let wasm = engine.wasmtime();
    let mut cases = vec![
        super::floor::floor_element(wasm, true, false),
        super::floor::floor_element(wasm, true, true),
        super::element_by_hand(&engine, false),
        super::element_by_hand(&engine, true),
    ];
    let batches = if quick { 7 } else { 201 };
    let rows = measure_all(&mut cases, batches, |_| 2_000);
    [rows[0].ns, rows[1].ns, rows[2].ns, rows[3].ns]
}

/// The most `1,000 async flows (2 workers) / 1 sync flow` can be if
/// wasmtime's async price of an element (`fibers_ns`) were the async
/// flows' only cost beyond the sync flow's `sync_ns` an element, and two
/// workers scaled as two sync threads do (`scaling`).
pub fn ceiling(scaling: f64, sync_ns: f64, fibers_ns: f64) -> f64 {
    scaling * sync_ns / (sync_ns + fibers_ns)
}

/// The ratio `1,000 async flows (2 workers) / 1 sync flow` as the
/// product of its measured parts, and the ceiling wasmtime's fiber alone
/// leaves it, as a Markdown table.
pub fn breakdown(quick: bool) -> String {
    let [bare, bare_async, engine, engine_async] = elements_by_hand(quick);
    let rates = measure_rates(quick);
    let ns = |rate: f64| 1e9 / rate;
    let (sync, async_one, many) = (
        ns(rates.sync_one),
        ns(rates.async_one),
        ns(rates.many_one_worker),
    );
    let fibers = bare_async - bare;
    let invoker = engine_async - engine - fibers;
    let driver = async_one - sync - (engine_async - engine);
    let scaling_sync = rates.sync_two / rates.sync_one;
    let scaling_async = rates.many_two_workers / rates.many_one_worker;
    let ratio = rates.many_two_workers / rates.sync_one;
    let ceiling = ceiling(scaling_sync, sync, fibers);
    let mut out = String::from(
        "| flow (64 B, source → passthrough → sink) | elements/s | ns/element on a thread |\n|---|---:|---:|\n",
    );
    for (what, rate, per_thread) in [
        ("1 sync flow", rates.sync_one, 1.0),
        ("2 sync flows on 2 threads", rates.sync_two, 2.0),
        ("1 async flow, 1-worker runtime", rates.async_one, 1.0),
        (
            "1,000 async flows, 1-worker runtime",
            rates.many_one_worker,
            1.0,
        ),
        (
            "1,000 async flows, 2-worker runtime",
            rates.many_two_workers,
            2.0,
        ),
    ] {
        out.push_str(&format!(
            "| {what} | {rate:.0} | {:.0} |\n",
            per_thread * ns(rate)
        ));
    }
    out.push_str(&format!(
        "\n| one element by hand (the flow's 3 calls, no driver) | sync ns | async ns | async − sync |\n|---|---:|---:|---:|\n\
         | bare wasmtime, the same guests, a store each | {bare:.0} | {bare_async:.0} | {fibers:.0} |\n\
         | engine (`pull`/`process`/`push` and their `_async`) | {engine:.0} | {engine_async:.0} | {:.0} |\n",
        engine_async - engine
    ));
    out.push_str(&format!(
        "\n| part of `1,000 async flows (2 workers) / 1 sync flow` | measured |\n|---|---:|\n\
         | wasmtime's `call_async` over `call` for the element (bare wasmtime) | {fibers:.0} ns an element |\n\
         | the engine's async invoker beyond it | {invoker:.0} ns an element |\n\
         | the flow driver's async path beyond the invoker's: (1 async flow − 1 sync flow) − (engine async − sync) | {driver:.0} ns an element |\n\
         | 1,000 flows taking turns on one worker: 1,000 async − 1 async | {:.0} ns an element |\n\
         | a) 1 sync / 1,000 async flows, on one thread each | {:.2} |\n\
         | b) a second worker: 1,000 async flows, 2 workers / 1 worker | {scaling_async:.2} |\n\
         | the ratio, a × b | **{ratio:.2}** |\n\
         | the machine's own 2-thread scaling: 2 sync flows / 1 | {scaling_sync:.2} |\n\
         | ceiling with wasmtime's fibers as the only async cost: scaling × sync / (sync + fibers) | {ceiling:.2} |\n\
         | the ratio's share of its ceiling | **{:.2}** (target ≥ 0.9) |\n",
        many - async_one,
        sync / many,
        ratio / ceiling,
    ));
    out
}
