//! `torvyn bench --streams`: a NATS JetStream source → the Wasm uppercase
//! processor → a NATS sink, beside a bare `async-nats` consume → publish
//! loop with the same batch and ack rules and no Wasm, in one run against
//! one `nats-server` the bench starts (loopback, free port, temp store).
//!
//! Every pipeline does per batch: take up to 100 messages (a non-waiting
//! pull; when none, a waiting pull for one), publish one output per input
//! with a `Nats-Msg-Id`, await every publish ack, then ack every input and
//! flush; with 2 batches in flight the next batch is taken and published
//! before the last one's publish acks are awaited.
//! Throughput: N messages already in the stream, drained by 1 or 2 workers
//! (threads of this process, each with its own current-thread runtime and
//! connection, sharing one durable consumer). Latency: one message at a time, publish → output seen on a
//! subscription, with the pipeline idle-waiting. The bare loop is in
//! `bare_nats.rs`.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use torvyn_engine::connect::{ConnectorSpec, Connectors};
use torvyn_engine::flow::{EdgeSpec, NodeSpec, ServeOptions};
use torvyn_engine::{
    CompiledComponent, Flow, FlowSpec, Interface, WasmEngine, WasmtimeEngine, WasmtimeInstance,
};

use super::bare_nats::{
    bare_worker, context, fill, replicated_stream, stream, AckPath, BenchResult, BATCH,
};
use super::nats_cluster::start_cluster;
use super::nats_server::{cpu_seconds, nats_server, start_server};

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
    in_flight: usize,
) -> BenchResult<()> {
    let mut flow: Flow<WasmtimeInstance> =
        Flow::instantiate_connected(&*engine, spec, &components, &Connectors::builtin())
            .await
            .map_err(|e| e.to_string())?;
    if let Some(limit) = limit {
        flow = flow.limit(limit);
    }
    let mut options = ServeOptions::default();
    options.batches_in_flight = in_flight;
    flow.serve(options, |_, _| {})
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
         Bare: a hand-written async-nats loop, no Wasm; sequential = one batch at a time (fetch → publish → \
         await the publish acks → ack), pipelined = the next batch fetched and published while the last one's publish acks \
         are out (2 in flight). Engine: `Flow::serve` with `batches_in_flight` 1 and 2 (the default).\n\n\
         | payload | workers | bare sequential msg/s | bare pipelined msg/s | engine, 1 in flight | engine, 2 in flight | engine / bare sequential (≥ 1.2) | engine / bare pipelined (≥ 0.85) | server CPU (cores) seq / pipe / engine | client CPU (cores) seq / pipe / engine |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    let mut per_workers = Vec::new();
    for size in [64usize, 1024] {
        let name = format!("IN{size}");
        let subject = format!("{}.in", name.to_lowercase());
        stream(&js, &name, &subject).await?;
        fill(&js, &subject, count, size).await?;
        for workers in [1usize, 2] {
            let mut rows = Vec::new();
            // Each pipeline drains the stream through its own durable
            // consumer into its own output stream.
            for (label, in_flight, engine_run) in [
                ("seq", 1, false),
                ("pipe", 2, false),
                ("engine1", 1, true),
                ("engine2", 2, true),
            ] {
                let output = format!("OUT{size}W{workers}{}", label.to_uppercase());
                stream(&js, &output, &output.to_lowercase()).await?;
                let consumer = format!("{label}w{workers}");
                let row = if engine_run {
                    let spec = flow_spec(&url, &name, &consumer, &output.to_lowercase());
                    drain(workers, count, pid, |limit| {
                        engine_worker(
                            engine.clone(),
                            components.clone(),
                            spec.clone(),
                            Some(limit as u64),
                            in_flight,
                        )
                    })
                    .await?
                } else {
                    drain(workers, count, pid, |limit| {
                        bare_worker(
                            url.clone(),
                            name.clone(),
                            consumer.clone(),
                            output.to_lowercase(),
                            limit,
                            in_flight,
                            AckPath::Futures,
                        )
                    })
                    .await?
                };
                rows.push(row);
            }
            let [(seq, seq_cpu, seq_own), (pipe, pipe_cpu, pipe_own), (one, _, _), (rate, engine_cpu, engine_own)] =
                rows[..]
            else {
                unreachable!("four pipelines")
            };
            per_workers.push((size, workers, rate, pipe));
            let verdict = |met: bool| if met { "met" } else { "not met" };
            let _ = writeln!(
                out,
                "| {} | {workers} | {seq:.0} | {pipe:.0} | {one:.0} | {rate:.0} | {:.2} {} | {:.2} {} | {seq_cpu:.2} / {pipe_cpu:.2} / {engine_cpu:.2} | {seq_own:.2} / {pipe_own:.2} / {engine_own:.2} |",
                if size == 64 { "64 B" } else { "1 KiB" },
                rate / seq,
                verdict(rate >= 1.2 * seq),
                rate / pipe,
                verdict(rate >= 0.85 * pipe),
            );
        }
    }
    // The publish-ack path alone (issue 34: measure async-nats' per-message
    // ack futures against one subscription for a worker's acks before
    // changing the sink): bare pipelined, 64 B, 1 worker, back to back.
    let mut paths = Vec::new();
    for (label, path) in [("F", AckPath::Futures), ("I", AckPath::Inbox)] {
        let output = format!("OUT64ACK{label}");
        stream(&js, &output, &output.to_lowercase()).await?;
        let consumer = format!("ack{label}");
        paths.push(
            drain(1, count, pid, |limit| {
                bare_worker(
                    url.clone(),
                    "IN64".into(),
                    consumer.clone(),
                    output.to_lowercase(),
                    limit,
                    2,
                    path,
                )
            })
            .await?,
        );
    }
    let [(futures, _, futures_cpu), (inbox, _, inbox_cpu)] = paths[..] else {
        unreachable!("two paths")
    };
    let _ = writeln!(
        out,
        "\n| publish acks, bare pipelined, 64 B, 1 worker | msg/s | client CPU (cores) |\n|---|---|---|\n\
         | a future per message (`send_publish`, as the engine's sink) | {futures:.0} | {futures_cpu:.2} |\n\
         | one reply subscription per worker, read per batch | {inbox:.0} | {inbox_cpu:.2} |\n\
         | one subscription / futures | {:.2} | |",
        inbox / futures.max(f64::EPSILON)
    );
    let _ = writeln!(
        out,
        "\n| payload | bare pipelined 2 workers / 1 (the server's own scaling) | engine 2 workers / 1 | engine's / server's (≥ 0.9) |\n|---|---|---|---|"
    );
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
        let server_scale = bare_two / bare_one.max(f64::EPSILON);
        let share = scale / server_scale.max(f64::EPSILON);
        let _ = writeln!(
            out,
            "| {} | {server_scale:.2} | {scale:.2} | {share:.2} {} |",
            if size == 64 { "64 B" } else { "1 KiB" },
            if share >= 0.9 { "met" } else { "not met" },
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
        1,
        AckPath::Futures,
    ));
    let bare_latency = latency(&js, "lat.in", "lat.bare", samples).await;
    bare.abort();
    let engine_task = tokio::spawn(engine_worker(
        engine.clone(),
        components.clone(),
        flow_spec(&url, "LAT", "latengine", "lat.engine"),
        None,
        2,
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
    let r1 = per_workers
        .iter()
        .find(|(size, workers, _, _)| *size == 64 && *workers == 1)
        .map_or((0.0, 0.0), |(_, _, rate, pipe)| (*pipe, *rate));
    let r3 = replicated(&engine, &components, count, samples).await?;
    let _ = writeln!(
        out,
        "\n| 64 B, 1 worker | bare pipelined msg/s | engine msg/s | engine publish → output p50 | p99 |\n|---|---|---|---|---|\n\
         | R1: one server | {:.0} | {:.0} | {} | {} |\n\
         | R3: three-server cluster (a write stored on two of three before its ack) | {:.0} | {:.0} | {} | {} |\n\
         | R3 / R1 | {:.2} | {:.2} | | |",
        r1.0,
        r1.1,
        micros(engine_p50),
        micros(engine_p99),
        r3.pipe,
        r3.engine,
        micros(r3.p50),
        micros(r3.p99),
        r3.pipe / r1.0.max(f64::EPSILON),
        r3.engine / r1.1.max(f64::EPSILON),
    );
    // Partition leases and windows (issue 36), on the R1 server.
    out.push_str(&super::leases::report(&url, quick).await?);
    out.push_str(&super::windows::report(&url, &js, &engine, quick).await?);
    let _ = writeln!(out, "\n{}", super::cpu_model());
    Ok(out)
}

/// What the three-server cluster with R3 streams measured.
struct Replicated {
    pipe: f64,
    engine: f64,
    p50: Duration,
    p99: Duration,
}

/// The 64 B, 1-worker drain and the engine's latency on a three-server
/// cluster whose streams (input, outputs) keep three replicas; the flow
/// names all three servers.
async fn replicated(
    engine: &Arc<WasmtimeEngine>,
    components: &Arc<std::collections::BTreeMap<String, CompiledComponent>>,
    count: usize,
    samples: usize,
) -> BenchResult<Replicated> {
    let cluster = start_cluster()?;
    let urls: Vec<String> = cluster
        .iter()
        .map(|server| format!("nats://127.0.0.1:{}", server.port))
        .collect();
    let all = urls.join(",");
    let pid = cluster[0].child.id();
    let js = context(&urls[0]).await?;
    replicated_stream(&js, "RIN", "rin.in", 3).await?;
    fill(&js, "rin.in", count, 64).await?;
    replicated_stream(&js, "ROUTP", "routp", 3).await?;
    replicated_stream(&js, "ROUTE", "route", 3).await?;
    let (pipe, _, _) = drain(1, count, pid, |limit| {
        bare_worker(
            urls[0].clone(),
            "RIN".into(),
            "rpipe".into(),
            "routp".into(),
            limit,
            2,
            AckPath::Futures,
        )
    })
    .await?;
    let spec = flow_spec(&all, "RIN", "rengine", "route");
    let (rate, _, _) = drain(1, count, pid, |limit| {
        engine_worker(
            engine.clone(),
            components.clone(),
            spec.clone(),
            Some(limit as u64),
            2,
        )
    })
    .await?;
    replicated_stream(&js, "RLAT", "rlat.in", 3).await?;
    replicated_stream(&js, "RLATE", "rlat.engine", 3).await?;
    let task = tokio::spawn(engine_worker(
        engine.clone(),
        components.clone(),
        flow_spec(&all, "RLAT", "rlatengine", "rlat.engine"),
        None,
        2,
    ));
    let measured = latency(&js, "rlat.in", "rlat.engine", samples).await;
    task.abort();
    let (p50, p99) = measured?;
    Ok(Replicated {
        pipe,
        engine: rate,
        p50,
        p99,
    })
}
