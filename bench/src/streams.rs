//! `torvyn bench --streams`: a NATS JetStream source → the Wasm uppercase
//! processor → a NATS sink, beside a bare `async-nats` consume → publish
//! loop with the same batch and ack rules and no Wasm, in one run against
//! one `nats-server` the bench starts (loopback, free port, temp store).
//!
//! Both pipelines do per batch: take up to 100 messages (a non-waiting pull;
//! when none, a waiting pull for one), publish one output per input with a
//! `Nats-Msg-Id`, await every publish ack, then ack every input and flush.
//! Throughput: N messages already in the stream, drained by 1 or 2 workers
//! (threads of this process, each with its own current-thread runtime and
//! connection, sharing one durable consumer). Latency: one message at a time, publish → output seen on a
//! subscription, with the pipeline idle-waiting.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures_util::StreamExt;
use torvyn_engine::connect::{ConnectorSpec, Connectors};
use torvyn_engine::flow::{EdgeSpec, NodeSpec, ServeOptions};
use torvyn_engine::{
    CompiledComponent, Flow, FlowSpec, Interface, WasmEngine, WasmtimeEngine, WasmtimeInstance,
};

use super::nats_server::{cpu_seconds, nats_server, start_server};

const BATCH: usize = 100;

type BenchResult<T> = Result<T, String>;

fn err(what: &str) -> impl Fn(async_nats::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

async fn context(url: &str) -> BenchResult<jetstream::Context> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    Ok(jetstream::new(client))
}

async fn stream(js: &jetstream::Context, name: &str, subject: &str) -> BenchResult<()> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: name.into(),
        subjects: vec![subject.into()],
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| format!("stream {name}: {e}"))
}

/// Fills `subject` with `count` payloads of `size` bytes (lowercase text).
async fn fill(
    js: &jetstream::Context,
    subject: &str,
    count: usize,
    size: usize,
) -> BenchResult<()> {
    let payload: bytes::Bytes = "abcdefghijklmnopqrstuvwxyz"
        .bytes()
        .cycle()
        .take(size)
        .collect::<Vec<u8>>()
        .into();
    for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for _ in chunk {
            acks.push(
                js.publish(subject.to_string(), payload.clone())
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

async fn durable(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> BenchResult<jetstream::consumer::Consumer<pull::Config>> {
    js.get_stream(stream)
        .await
        .map_err(|e| format!("stream {stream}: {e}"))?
        .get_or_create_consumer(
            name,
            pull::Config {
                durable_name: Some(name.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {name}: {e}"))
}

/// The bare pipeline: consume → uppercase in Rust → publish with an id →
/// await the publish acks → ack the inputs. Stops after `limit` inputs, or
/// runs until the task is aborted.
async fn bare_worker(
    url: String,
    stream: String,
    consumer: String,
    out: String,
    limit: usize,
) -> BenchResult<()> {
    let js = context(&url).await?;
    let client = js.client();
    let consumer = durable(&js, &stream, &consumer).await?;
    let mut done = 0;
    while done < limit {
        let want = BATCH.min(limit - done);
        let mut messages = Vec::new();
        for wait in [false, true] {
            let batch = if wait {
                consumer
                    .batch()
                    .max_messages(1)
                    .expires(Duration::from_millis(500))
                    .messages()
                    .await
            } else {
                consumer.fetch().max_messages(want).messages().await
            };
            let mut batch = batch.map_err(|e| format!("fetch: {e}"))?;
            while let Some(message) = batch.next().await {
                messages.push(message.map_err(|e| format!("fetch: {e}"))?);
            }
            if !messages.is_empty() {
                break;
            }
        }
        let mut acks = Vec::with_capacity(messages.len());
        for message in &messages {
            let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
            let upper = message.payload.to_ascii_uppercase();
            let publish = jetstream::message::PublishMessage::build()
                .payload(upper.into())
                .message_id(format!("{stream}:{sequence}:output:0"));
            acks.push(
                js.send_publish(out.clone(), publish)
                    .await
                    .map_err(|e| format!("publish: {e}"))?,
            );
        }
        for ack in acks {
            ack.await.map_err(|e| format!("publish ack: {e}"))?;
        }
        for message in &messages {
            message.ack_with(AckKind::Ack).await.map_err(err("ack"))?;
        }
        client.flush().await.map_err(|e| format!("flush: {e}"))?;
        done += messages.len();
    }
    Ok(())
}

/// The engine's pipeline as a flow: nats source → uppercase → nats sink.
fn flow_spec(url: &str, stream: &str, consumer: &str, out: &str) -> FlowSpec {
    let nats = |settings: Vec<(&str, &str)>| ConnectorSpec::new("nats", settings);
    let edge = |from: &str, to: &str| EdgeSpec::new(from, "output", to, "input");
    FlowSpec::new(
        "bench",
        vec![
            NodeSpec::connector(
                "input",
                Interface::Source,
                nats(vec![
                    ("url", url),
                    ("stream", stream),
                    ("subject", &format!("{}.in", stream.to_lowercase())),
                    ("consumer", consumer),
                    ("create", "true"),
                ]),
            ),
            NodeSpec::component("upper", "upper", Interface::Processor, ""),
            NodeSpec::connector(
                "output",
                Interface::Sink,
                nats(vec![("url", url), ("subject", out)]),
            ),
        ],
        vec![edge("input", "upper"), edge("upper", "output")],
    )
}

async fn engine_worker(
    engine: Arc<WasmtimeEngine>,
    components: Arc<std::collections::BTreeMap<String, CompiledComponent>>,
    spec: FlowSpec,
    limit: Option<u64>,
) -> BenchResult<()> {
    let mut flow: Flow<WasmtimeInstance> =
        Flow::instantiate_connected(&*engine, spec, &components, &Connectors::builtin())
            .await
            .map_err(|e| e.to_string())?;
    if let Some(limit) = limit {
        flow = flow.limit(limit);
    }
    flow.serve(ServeOptions::default(), |_, _| {})
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Messages/s of `workers` concurrent workers draining `count` messages,
/// and the CPU the server and this process used meanwhile (cores).
async fn drain<F, Fut>(
    workers: usize,
    count: usize,
    server: u32,
    make: F,
) -> BenchResult<(f64, f64, f64)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = BenchResult<()>> + Send + 'static,
{
    let cpu = cpu_seconds(server);
    let own = cpu_seconds(std::process::id());
    let started = Instant::now();
    // Each worker on a thread of its own with a current-thread runtime, as
    // a worker process would run (`torvyn run` serves one flow that way).
    let threads: Vec<_> = (0..workers)
        .map(|worker| {
            let work = make(count / workers + usize::from(worker < count % workers));
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("worker runtime: {e}"))?
                    .block_on(work)
            })
        })
        .collect();
    for thread in threads {
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| format!("worker thread: {e}"))?
            .map_err(|_| "a worker panicked".to_string())??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok((
        count as f64 / elapsed,
        (cpu_seconds(server) - cpu) / elapsed,
        (cpu_seconds(std::process::id()) - own) / elapsed,
    ))
}

/// Publish → output seen, one message at a time: (p50, p99).
async fn latency(
    js: &jetstream::Context,
    subject_in: &str,
    subject_out: &str,
    samples: usize,
) -> BenchResult<(Duration, Duration)> {
    let mut outputs = js
        .client()
        .subscribe(subject_out.to_string())
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        let started = Instant::now();
        js.publish(subject_in.to_string(), format!("latency {i}").into())
            .await
            .map_err(|e| format!("publish: {e}"))?
            .await
            .map_err(|e| format!("publish ack: {e}"))?;
        tokio::time::timeout(Duration::from_secs(10), outputs.next())
            .await
            .map_err(|_| "no output within 10 s".to_string())?
            .ok_or("subscription ended")?;
        times.push(started.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    Ok((at(0.5), at(0.99)))
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// The report section; `quick` uses fewer messages (CI).
pub fn report(quick: bool) -> String {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return format!("streams bench not run: no tokio runtime: {e}\n"),
    };
    match runtime.block_on(run(quick)) {
        Ok(text) => text,
        Err(e) => format!("\n## Streams: NATS JetStream\n\nnot run: {e}\n"),
    }
}

async fn run(quick: bool) -> BenchResult<String> {
    let server = start_server()?;
    let url = format!("nats://127.0.0.1:{}", server.port);
    let pid = server.child.id();
    let js = context(&url).await?;
    let engine = Arc::new(
        WasmtimeEngine::new(
            torvyn_engine::EngineConfig::builder()
                .build()
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?,
    );
    let upper = engine
        .compile("upper", &torvyn_fixtures::uppercase_processor())
        .map_err(|e| e.to_string())?;
    let components = Arc::new(std::collections::BTreeMap::from([(
        "upper".to_string(),
        upper,
    )]));
    let count = if quick { 4_000 } else { 40_000 };
    let mut out = String::new();
    let version = Command::new(nats_server().unwrap_or_default())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\n## Streams: NATS JetStream source → Wasm uppercase → NATS sink\n\n\
         {version} on this machine (loopback), batches of {BATCH}, {count} messages per row, \
         workers are threads with their own current-thread runtime and connection on one durable consumer; one run.\n\n\
         | payload | workers | bare async-nats msg/s | engine msg/s | engine / bare | target ≥ 0.85 | server CPU (cores) bare / engine | client CPU (cores) bare / engine |\n\
         |---|---|---|---|---|---|---|---|"
    );
    let mut per_workers = Vec::new();
    for size in [64usize, 1024] {
        let name = format!("IN{size}");
        let subject = format!("{}.in", name.to_lowercase());
        stream(&js, &name, &subject).await?;
        fill(&js, &subject, count * 4, size).await?;
        for workers in [1usize, 2] {
            let out_bare = format!("OUTB{size}W{workers}");
            let out_engine = format!("OUTE{size}W{workers}");
            stream(&js, &out_bare, &out_bare.to_lowercase()).await?;
            stream(&js, &out_engine, &out_engine.to_lowercase()).await?;
            let (bare, bare_cpu, bare_own) = drain(workers, count, pid, |limit| {
                bare_worker(
                    url.clone(),
                    name.clone(),
                    format!("bare{workers}"),
                    out_bare.to_lowercase(),
                    limit,
                )
            })
            .await?;
            let spec = flow_spec(
                &url,
                &name,
                &format!("engine{workers}"),
                &out_engine.to_lowercase(),
            );
            let (rate, engine_cpu, engine_own) = drain(workers, count, pid, |limit| {
                engine_worker(
                    engine.clone(),
                    components.clone(),
                    spec.clone(),
                    Some(limit as u64),
                )
            })
            .await?;
            let ratio = rate / bare;
            per_workers.push((size, workers, rate, bare));
            let _ = writeln!(
                out,
                "| {} | {workers} | {bare:.0} | {rate:.0} | {ratio:.2} | {} | {bare_cpu:.2} / {engine_cpu:.2} | {bare_own:.2} / {engine_own:.2} |",
                if size == 64 { "64 B" } else { "1 KiB" },
                if ratio >= 0.85 { "met" } else { "not met" },
            );
        }
    }
    for size in [64usize, 1024] {
        let rate = |w: usize| {
            per_workers
                .iter()
                .find(|(s, workers, _, _)| *s == size && *workers == w)
                .map(|(_, _, rate, bare)| (*rate, *bare))
                .unwrap_or((0.0, 0.0))
        };
        let ((one, bare_one), (two, bare_two)) = (rate(1), rate(2));
        let scale = two / one.max(f64::EPSILON);
        let _ = writeln!(
            out,
            "| {} 2 workers / 1 worker | | {:.2} (bare) | {scale:.2} (engine) | | {} (target ≥ 1.6) | | |",
            if size == 64 { "64 B" } else { "1 KiB" },
            bare_two / bare_one.max(f64::EPSILON),
            if scale >= 1.6 { "met" } else { "not met" },
        );
    }
    // Latency: each pipeline idle-waiting, one message at a time.
    let samples = if quick { 100 } else { 500 };
    stream(&js, "LAT", "lat.in").await?;
    stream(&js, "LATB", "lat.bare").await?;
    stream(&js, "LATE", "lat.engine").await?;
    let bare = tokio::spawn(bare_worker(
        url.clone(),
        "LAT".into(),
        "latbare".into(),
        "lat.bare".into(),
        usize::MAX,
    ));
    let bare_latency = latency(&js, "lat.in", "lat.bare", samples).await;
    bare.abort();
    let engine_task = tokio::spawn(engine_worker(
        engine.clone(),
        components.clone(),
        flow_spec(&url, "LAT", "latengine", "lat.engine"),
        None,
    ));
    // The engine's consumer starts after the bare run: it first drains what
    // the bare run published (the stream keeps them).
    let mut seen = js
        .client()
        .subscribe("lat.engine".to_string())
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    for _ in 0..samples {
        tokio::time::timeout(Duration::from_secs(30), seen.next())
            .await
            .map_err(|_| "engine did not catch up with the latency stream")?;
    }
    drop(seen);
    let engine_latency = latency(&js, "lat.in", "lat.engine", samples).await;
    engine_task.abort();
    let (bare_p50, bare_p99) = bare_latency?;
    let (engine_p50, engine_p99) = engine_latency?;
    let _ = writeln!(
        out,
        "\n| publish → output, one at a time ({samples}) | p50 | p99 |\n|---|---|---|\n\
         | bare async-nats loop | {} | {} |\n| engine (source → Wasm uppercase → sink) | {} | {} |",
        micros(bare_p50),
        micros(bare_p99),
        micros(engine_p50),
        micros(engine_p99),
    );
    let _ = writeln!(out, "\n{}", super::cpu_model());
    Ok(out)
}
