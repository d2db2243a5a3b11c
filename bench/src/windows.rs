//! `torvyn bench --streams`, windows (issue 36): a windowed count over
//! 1,000 keys against the stateless uppercase flow, both draining the same
//! messages on the bench's server with one worker and 2 batches in flight.
//! The windowed flow (a tumbling 1 s count-and-sum per key, lateness 1 s)
//! stores its windows with every batch, once in the server's key-value
//! bucket (as `torvyn run --state-bucket` does) and once in memory: the
//! difference is what storing a batch's windows costs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_nats::jetstream;
use async_trait::async_trait;
use torvyn_engine::connect::nats::KvStateStore;
use torvyn_engine::connect::{ConnectorSpec, Connectors};
use torvyn_engine::flow::{
    EdgeSpec, NodeSpec, ServeOptions, StateOptions, StateStore, WindowSettings,
};
use torvyn_engine::window::WindowSpec;
use torvyn_engine::{Flow, FlowSpec, Interface, WasmEngine, WasmtimeEngine, WasmtimeInstance};

use super::bare_nats::{stream, BenchResult, BATCH};

const KEYS: usize = 1_000;

/// The target: the windowed count's msgs/s over the uppercase flow's.
const TARGET: f64 = 0.7;

/// A store in this process's memory: the windowed flow without the
/// server's round trips.
#[derive(Default)]
struct MemoryStore(Mutex<BTreeMap<String, Vec<u8>>>);

#[async_trait]
impl StateStore for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    async fn load(&self, key: &str) -> torvyn_engine::Result<Option<Vec<u8>>> {
        Ok(self.0.lock().ok().and_then(|map| map.get(key).cloned()))
    }

    async fn store(&self, key: &str, state: &[u8]) -> torvyn_engine::Result<()> {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key.to_string(), state.to_vec());
        }
        Ok(())
    }

    async fn remove(&self, key: &str) -> torvyn_engine::Result<()> {
        if let Ok(mut map) = self.0.lock() {
            map.remove(key);
        }
        Ok(())
    }
}

/// `count` messages on `win.in`: keys round the 1,000, event times 1 ms
/// apart, payload a small number.
async fn fill_events(js: &jetstream::Context, count: usize) -> BenchResult<()> {
    let base: i64 = 1_700_000_000_000;
    for chunk in (0..count).collect::<Vec<_>>().chunks(1_000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Key", format!("k{}", i % KEYS).as_str());
            headers.insert("Event-Ms", (base + i as i64).to_string().as_str());
            let payload = format!("{}", i % 100);
            acks.push(
                js.publish_with_headers("win.in".to_string(), headers, payload.into())
                    .await
                    .map_err(|e| format!("publish: {e}"))?,
            );
        }
        for ack in acks {
            ack.await.map_err(|e| format!("publish ack: {e}"))?;
        }
    }
    Ok(())
}

/// `win.in` through `middle` (uppercase, or the windowed count) to `out`.
fn flow(url: &str, consumer: &str, middle: NodeSpec, out: &str) -> FlowSpec {
    let nats = |settings: Vec<(&str, &str)>| ConnectorSpec::new("nats", settings);
    let edge = |from: &str, to: &str| EdgeSpec::new(from, "output", to, "input");
    let name = middle.name.clone();
    FlowSpec::new(
        "windows",
        vec![
            NodeSpec::connector(
                "input",
                Interface::Source,
                nats(vec![
                    ("url", url),
                    ("stream", "WIN"),
                    ("subject", "win.in"),
                    ("consumer", consumer),
                    ("create", "true"),
                    ("key", "header:Key"),
                    ("event_time", "header:Event-Ms"),
                ]),
            ),
            middle,
            NodeSpec::connector(
                "output",
                Interface::Sink,
                nats(vec![("url", url), ("subject", out)]),
            ),
        ],
        vec![edge("input", &name), edge(&name, "output")],
    )
}

/// Messages/s of one worker draining `count` messages through `spec`.
async fn drain(
    engine: &WasmtimeEngine,
    components: &BTreeMap<String, torvyn_engine::CompiledComponent>,
    spec: FlowSpec,
    state: Option<Arc<dyn StateStore>>,
    count: usize,
) -> BenchResult<f64> {
    let mut flow: Flow<WasmtimeInstance> =
        Flow::instantiate_connected(engine, spec, components, &Connectors::builtin())
            .await
            .map_err(|e| e.to_string())?
            .limit(count as u64);
    let mut options = ServeOptions::default();
    options.state = state.map(|store| StateOptions::new(store, "bench"));
    let started = Instant::now();
    flow.serve(options, |_, _| {})
        .await
        .map_err(|e| e.to_string())?;
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// The report's table.
pub(crate) async fn report(
    url: &str,
    js: &jetstream::Context,
    engine: &WasmtimeEngine,
    quick: bool,
) -> BenchResult<String> {
    let count = if quick { 4_000 } else { 40_000 };
    stream(js, "WIN", "win.in").await?;
    fill_events(js, count).await?;
    for out in ["WINUP", "WINKV", "WINMEM"] {
        stream(js, out, &out.to_lowercase()).await?;
    }
    let compile = |name: &str, bytes: Vec<u8>| {
        engine
            .compile(name, &bytes)
            .map(|component| (name.to_string(), component))
            .map_err(|e| e.to_string())
    };
    let components = BTreeMap::from([
        compile("upper", torvyn_fixtures::uppercase_processor())?,
        compile("counts", torvyn_fixtures::windowed_count_sum())?,
    ]);
    let upper = NodeSpec::component("upper", "upper", Interface::Processor, "");
    let mut settings = WindowSettings::new(
        WindowSpec::tumbling(1_000)
            .map_err(|e| e.to_string())?
            .with_allowed_lateness(1_000),
    );
    settings.max_out_of_order_ms = 100;
    let counts = NodeSpec::windowed("counts", "counts", "", settings);
    let uppercase = drain(
        engine,
        &components,
        flow(url, "up", upper, "winup"),
        None,
        count,
    )
    .await?;
    let kv_spec = ConnectorSpec::new("nats", [("url", url)]);
    let kv: Arc<dyn StateStore> = Arc::new(
        KvStateStore::open("bench", &kv_spec, "TORVYN_BENCH_WINDOWS")
            .await
            .map_err(|e| e.to_string())?,
    );
    let in_kv = drain(
        engine,
        &components,
        flow(url, "kv", counts.clone(), "winkv"),
        Some(kv),
        count,
    )
    .await?;
    let in_memory = drain(
        engine,
        &components,
        flow(url, "mem", counts, "winmem"),
        Some(Arc::new(MemoryStore::default())),
        count,
    )
    .await?;
    let ratio = in_kv / uppercase.max(f64::EPSILON);
    // What a batch of BATCH inputs spends on its store beyond memory's.
    let per_batch_ms = (1.0 / in_kv - 1.0 / in_memory) * BATCH as f64 * 1e3;
    Ok(format!(
        "\n| windows: {count} messages over {KEYS} keys, 1 worker, batches of {BATCH} | msg/s |\n|---|---|\n\
         | stateless: NATS → Wasm uppercase → NATS | {uppercase:.0} |\n\
         | windowed count (tumbling 1 s), windows stored in the server's key-value bucket each batch | {in_kv:.0} |\n\
         | the same, windows stored in memory | {in_memory:.0} |\n\
         | windowed (bucket) / stateless (≥ {TARGET}) | {ratio:.2} {} |\n\
         | storing a batch's windows in the bucket, beyond memory (ms per batch) | {per_batch_ms:.2} |\n",
        if ratio >= TARGET { "met" } else { "not met" },
    ))
}
