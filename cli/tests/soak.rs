//! A soak: a NATS flow whose stages come from three toolchains (Rust
//! uppercases, Python appends " +py" and is recycled every few thousand
//! elements, a C sink reads every element beside the NATS sink) served by
//! two workers for a fixed time, inputs arriving at a steady rate, faults on
//! a schedule: the second worker SIGKILLed, the server restarted, the
//! second worker stopped with SIGTERM, the Rust stage's file replaced (a
//! live upgrade in both workers). Checked at the end:
//! - every input's output is stored exactly once and no input is left
//!   unacknowledged;
//! - the faults touched work in flight (inputs redelivered after a kill,
//!   upgrades applied by the worker that stays);
//! - the worker that stays up holds no more at the end than after warm-up:
//!   its resident memory, open file descriptors, live instances and guest
//!   buffer bytes (read from its `--metrics` page) grow less than 5 % from
//!   the first fifth of the run to the last.
//!
//! It runs for `TORVYN_SOAK_SECONDS` (120 by default: CI's share). For an
//! hour: `TORVYN_SOAK_SECONDS=3600 cargo test -p torvyn-cli --test soak --
//! --nocapture`. The report is printed and written to
//! `target/tmp/soak.txt` (`.ci/run` shows it).

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;

use common::nats::*;
use common::{free_port, metric, metrics_page};

/// Inputs published a second.
const RATE: u64 = 1_000;
/// Time between two faults (plus a jitter that moves each into another
/// phase of the workers' batches).
const FAULT_EVERY: Duration = Duration::from_secs(5);
/// Time between two samples of the staying worker's resources.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// The share of the run before the first fifth is measured (start-up,
/// caches, the first recycling): excluded.
const WARM_UP: f64 = 0.1;
/// After publishing stops: how long nothing may move (outputs stored,
/// inputs pending or awaiting acks) before the run counts as stuck.
const STALLED: Duration = Duration::from_secs(30);
/// The largest growth allowed from the first fifth to the last.
const GROWTH: f64 = 0.05;

fn soak_time() -> Duration {
    let seconds = std::env::var("TORVYN_SOAK_SECONDS")
        .ok()
        .map(|s| s.parse().expect("TORVYN_SOAK_SECONDS: a number of seconds"))
        .unwrap_or(120);
    Duration::from_secs(seconds)
}

/// A component built by `guests/build.sh`.
fn guest(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guests/out")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the guests first with guests/build.sh",
        path.display()
    );
    path
}

/// IN → upper (Rust) → py (Python, recycled) → OUT (NATS) and reader (C).
fn flow_file(dir: &Path, url: &str, upper: &Path) -> PathBuf {
    let text = format!(
        r#"# Workers started again load compiled code instead of compiling.
[runtime]
compilation_cache_dir = "cache"

[[component]]
name = "upper"
path = "{upper}"

[[component]]
name = "py"
path = "{py}"

[[component]]
name = "reader"
path = "{reader}"

[flow.main.nodes.input]
connector = "nats"
interface = "torvyn:streaming/source"
url = "{url}"
stream = "IN"
subject = "in"
consumer = "soak"
create = true
ack_wait_ms = 2000

[flow.main.nodes.upper]
component = "upper"
interface = "torvyn:streaming/processor"

[flow.main.nodes.py]
component = "py"
interface = "torvyn:streaming/processor"
recycle_after_elements = 5000

[flow.main.nodes.output]
connector = "nats"
interface = "torvyn:streaming/sink"
url = "{url}"
stream = "OUT"
subject = "out"
create = true

[flow.main.nodes.reader]
component = "reader"
interface = "torvyn:streaming/sink"
config = "1000000"

[[flow.main.edges]]
from = {{ node = "input" }}
to = {{ node = "upper" }}

[[flow.main.edges]]
from = {{ node = "upper" }}
to = {{ node = "py" }}

[[flow.main.edges]]
from = {{ node = "py" }}
to = {{ node = "output" }}

[[flow.main.edges]]
from = {{ node = "py" }}
to = {{ node = "reader" }}
"#,
        upper = upper.display(),
        py = guest("python-processor").display(),
        reader = guest("c-sink").display(),
    );
    let path = dir.join("soak.toml");
    std::fs::write(&path, text).expect("flow file written");
    path
}

/// A worker whose output goes to files (a pipe nobody reads would fill
/// over an hour and stop it).
struct Logged {
    name: String,
    started: Instant,
    worker: Worker,
    stdout: PathBuf,
    stderr: PathBuf,
}

fn start(dir: &Path, flow: &Path, name: &str, extra: &[&str]) -> Logged {
    let stdout = dir.join(format!("{name}.out"));
    let stderr = dir.join(format!("{name}.err"));
    let child = Command::new(TORVYN)
        .arg("run")
        .arg(flow)
        .args(["--quiet", "--watch", "--log", "warn"])
        .args(extra)
        .stdout(Stdio::from(File::create(&stdout).expect("stdout file")))
        .stderr(Stdio::from(File::create(&stderr).expect("stderr file")))
        .spawn()
        .expect("torvyn starts");
    Logged {
        name: name.to_string(),
        started: Instant::now(),
        worker: Worker(Some(child)),
        stdout,
        stderr,
    }
}

/// SIGTERM, a clean exit within 30 s, and its stdout.
fn stop(mut logged: Logged) -> String {
    signal(&logged.worker, libc::SIGTERM);
    let output = finish(Worker(logged.worker.0.take()), Duration::from_secs(30));
    let stdout = std::fs::read_to_string(&logged.stdout).unwrap_or_default();
    let stderr = std::fs::read_to_string(&logged.stderr).unwrap_or_default();
    assert!(
        output.status.success(),
        "worker `{}` stopped with SIGTERM {:?} after it started exited {:?}:\n{stdout}\n{stderr}",
        logged.name,
        logged.started.elapsed(),
        output.status
    );
    stdout
}

/// Replaces `path` with `bytes` and a custom section naming `round`: the
/// same behaviour, different bytes, so `--watch` upgrades it.
fn replace_component(path: &Path, bytes: &[u8], round: usize) {
    let name = b"soak-round";
    let payload = round.to_string().into_bytes();
    let size = 1 + name.len() + payload.len();
    let mut next = bytes.to_vec();
    next.push(0); // a custom section
    next.push(u8::try_from(size).expect("a short section"));
    next.push(u8::try_from(name.len()).unwrap());
    next.extend_from_slice(name);
    next.extend_from_slice(&payload);
    let written = path.with_extension("next");
    std::fs::write(&written, next).expect("component written");
    std::fs::rename(&written, path).expect("component replaced");
}

/// The values of the series `names` (a metric with its labels, as printed) on
/// the page at `address`; `None` when the page or one of them is missing.
fn scrape(address: &str, names: &[&str]) -> Option<Vec<f64>> {
    let page = metrics_page(address)?;
    names.iter().map(|name| metric(&page, name)).collect()
}

/// Publishes `m0`, `m1`, … at `RATE` until `stop`, each with its own
/// `Nats-Msg-Id` (retried through restarts); returns how many.
fn publisher(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let rt = runtime();
        let js = rt.block_on(context(&url, None));
        let started = Instant::now();
        let mut published = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let chunk: Vec<String> = (published..published + RATE / 10)
                .map(|n| format!("m{n}"))
                .collect();
            rt.block_on(publish_once(&js, "in", &chunk));
            published += chunk.len() as u64;
            let due = Duration::from_secs_f64(published as f64 / RATE as f64);
            std::thread::sleep(due.saturating_sub(started.elapsed()));
        }
        published
    })
}

/// Every payload stored in `OUT`, read by a consumer of the test's own.
async fn stored_payloads(js: &jetstream::Context) -> Vec<String> {
    let stream = js.get_stream("OUT").await.expect("OUT exists");
    let total = stream.get_info().await.expect("OUT info").state.messages as usize;
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("a reading consumer");
    let mut payloads = Vec::with_capacity(total);
    // 2 minutes, and a second more for every 10,000 (an hour's run has
    // millions).
    let bound = Duration::from_secs(120 + total as u64 / 10_000);
    let deadline = Instant::now() + bound;
    while payloads.len() < total {
        assert!(Instant::now() < deadline, "OUT not read within {bound:?}");
        let mut batch = consumer
            .batch()
            .max_messages(5_000)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .expect("a batch");
        while let Some(Ok(message)) = batch.next().await {
            payloads.push(String::from_utf8_lossy(&message.payload).into_owned());
        }
    }
    payloads
}

/// One resource of the staying worker over the run.
struct Series {
    name: &'static str,
    samples: Vec<(Duration, f64)>,
}

impl Series {
    /// (the largest value in the first fifth after warm-up, the median of
    /// the last fifth, the largest of the last fifth).
    fn windows(&self, run: Duration) -> (f64, f64, f64) {
        let at = |share: f64| run.mul_f64(share);
        let first_end = at(WARM_UP) + (run - at(WARM_UP)).mul_f64(0.2);
        let first: Vec<f64> = self
            .samples
            .iter()
            .filter(|(t, _)| *t >= at(WARM_UP) && *t < first_end)
            .map(|(_, v)| *v)
            .collect();
        let mut last: Vec<f64> = self
            .samples
            .iter()
            .filter(|(t, _)| *t >= at(0.8))
            .map(|(_, v)| *v)
            .collect();
        assert!(
            !first.is_empty() && !last.is_empty(),
            "{}: too few samples ({})",
            self.name,
            self.samples.len()
        );
        last.sort_by(f64::total_cmp);
        let first_max = first.iter().copied().fold(f64::MIN, f64::max);
        (first_max, last[last.len() / 2], last[last.len() - 1])
    }
}

#[test]
fn a_flow_of_three_toolchains_under_faults_stays_flat_and_loses_nothing() {
    let run = soak_time();
    let mut setup = Setup::new(&[], None);
    let dir = setup.dir.path().to_path_buf();
    let upper = dir.join("upper.wasm");
    let upper_bytes = std::fs::read(guest("rust-processor")).expect("rust processor");
    std::fs::write(&upper, &upper_bytes).unwrap();
    let flow = flow_file(&dir, &setup.server.url(), &upper);
    let metrics = format!("127.0.0.1:{}", free_port());
    let staying = start(&dir, &flow, "staying", &["--metrics", &metrics]);
    // Its page answers once it serves: its compiled code is in the cache
    // for every worker started after it.
    let deadline = Instant::now() + Duration::from_secs(300);
    while scrape(&metrics, &["process_open_fds"]).is_none() {
        assert!(
            Instant::now() < deadline,
            "the first worker did not serve within 300 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut generation = 0;
    let mut other = start(&dir, &flow, "other-0", &[]);

    let stop_publishing = Arc::new(AtomicBool::new(false));
    let publishing = publisher(setup.server.url(), stop_publishing.clone());

    const NAMES: [&str; 4] = [
        "process_resident_memory_bytes",
        "process_open_fds",
        "torvyn_engine_instances",
        "torvyn_engine_guest_buffer_bytes",
    ];
    let mut series: Vec<Series> = NAMES
        .iter()
        .map(|name| Series {
            name,
            samples: Vec::new(),
        })
        .collect();
    let mut others_stdout = Vec::new();
    let (mut kills, mut restarts, mut terms, mut upgrades) = (0, 0, 0, 0);
    let started = Instant::now();
    let mut next_fault = started + FAULT_EVERY;
    let mut fault = 0usize;
    while started.elapsed() < run {
        if let Some(values) = scrape(&metrics, &NAMES) {
            for (series, value) in series.iter_mut().zip(values) {
                series.samples.push((started.elapsed(), value));
            }
        }
        if Instant::now() >= next_fault {
            match fault % 4 {
                0 => {
                    // When inputs are in flight (up to 2 s): a kill that
                    // holds nothing tests nothing.
                    setup.rt.block_on(async {
                        let deadline = Instant::now() + Duration::from_secs(2);
                        while Instant::now() < deadline
                            && try_consumer_info(&setup.js, "IN", "soak")
                                .await
                                .is_none_or(|info| info.num_ack_pending == 0)
                        {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    });
                    signal(&other.worker, libc::SIGKILL);
                    drop(other.worker);
                    generation += 1;
                    other = start(&dir, &flow, &format!("other-{generation}"), &[]);
                    kills += 1;
                }
                1 => {
                    // Gracefully: on one server a crash may lose the
                    // writes of its last milliseconds (only a cluster
                    // makes an acknowledged write survive that).
                    setup.server.restart_gracefully();
                    restarts += 1;
                }
                2 => {
                    others_stdout.push(stop(other));
                    generation += 1;
                    other = start(&dir, &flow, &format!("other-{generation}"), &[]);
                    terms += 1;
                }
                _ => {
                    replace_component(&upper, &upper_bytes, fault);
                    upgrades += 1;
                }
            }
            fault += 1;
            let jitter = Duration::from_millis((fault as u64 * 379) % 1000);
            next_fault = Instant::now() + FAULT_EVERY + jitter;
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    stop_publishing.store(true, Ordering::Relaxed);
    let published = publishing.join().expect("the publisher");

    // Everything in and acknowledged: the workers may be behind (a loaded
    // machine, a debug build), so the wait is bounded by progress: it fails
    // when nothing moves for `STALLED`, naming where things stand.
    setup.js = setup.rt.block_on(context(&setup.server.url(), None));
    let (backlog, drained) = setup.rt.block_on(async {
        let started = Instant::now();
        let mut backlog = None;
        let mut last = None;
        let mut moved = Instant::now();
        loop {
            let stored = count(&setup.js, "OUT").await;
            let info = try_consumer_info(&setup.js, "IN", "soak").await;
            let (pending, ack_pending) = info.as_ref().map_or((u64::MAX, usize::MAX), |i| {
                (i.num_pending, i.num_ack_pending)
            });
            backlog.get_or_insert(published.saturating_sub(stored));
            if stored >= published && pending == 0 && ack_pending == 0 {
                return (backlog.unwrap_or(0), started.elapsed());
            }
            let now = (stored, pending, ack_pending);
            if last != Some(now) {
                last = Some(now);
                moved = Instant::now();
            }
            assert!(
                moved.elapsed() < STALLED,
                "nothing moved for {STALLED:?} after publishing stopped: {stored} of {published} \
                 outputs stored, {pending} inputs pending, {ack_pending} awaiting their ack"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let recycled = scrape(
        &metrics,
        &[r#"torvyn_node_recycled_total{flow="main",node="py",role="processor"}"#],
    )
    .expect("the staying worker's recycling count")[0];
    assert!(recycled > 0.0, "the Python stage was never recycled");
    let staying_stdout = stop(staying);
    others_stdout.push(stop(other));

    let payloads = setup.rt.block_on(stored_payloads(&setup.js));
    let distinct: BTreeSet<&String> = payloads.iter().collect();
    assert_eq!(payloads.len(), distinct.len(), "an output was stored twice");
    let wanted: BTreeSet<String> = (0..published).map(|n| format!("M{n} +py")).collect();
    let distinct: BTreeSet<String> = distinct.into_iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        wanted.len(),
        "outputs missing: {:?}…",
        wanted.difference(&distinct).take(5).collect::<Vec<_>>()
    );
    assert_eq!(distinct, wanted, "every output, and only those");

    // The faults touched work in flight.
    let redelivered: u64 = std::iter::once(&staying_stdout)
        .chain(&others_stdout)
        .map(|stdout| connector_count(stdout, "input", "redelivered"))
        .sum();
    assert!(
        redelivered > 0,
        "no input was redelivered: the kills hit no work in flight"
    );
    let applied = staying_stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("upgrades: ")?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no upgrades line:\n{staying_stdout}"));
    assert_eq!(
        applied, upgrades,
        "every replaced file taken over by the staying worker:\n{staying_stdout}"
    );

    // Flat after warm-up.
    let mut report = format!(
        "soak: {} s, {published} inputs, every output exactly once; faults: {kills} worker \
         kills, {restarts} server restarts, {terms} SIGTERMs, {upgrades} upgrades; \
         {redelivered} inputs redelivered; the staying worker's Python stage recycled \
         {recycled} times; {backlog} outputs still to come when publishing stopped, all in {} ms \
         later\n",
        run.as_secs(),
        drained.as_millis()
    );
    let mut grown = Vec::new();
    for series in &series {
        let (first, last_median, last_max) = series.windows(run);
        let growth = if first > 0.0 {
            last_median / first - 1.0
        } else if last_median > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        report += &format!(
            "soak: {}: first fifth max {first:.0}, last fifth median {last_median:.0} (max \
             {last_max:.0}), growth {:+.1} %\n",
            series.name,
            growth * 100.0
        );
        // The run in tenths (the last sample of each), to see a trend.
        let tenths: Vec<String> = (1..=10)
            .filter_map(|tenth| {
                let end = run.mul_f64(tenth as f64 / 10.0);
                let value = series.samples.iter().rev().find(|(t, _)| *t <= end)?.1;
                Some(format!("{value:.0}"))
            })
            .collect();
        report += &format!("soak: {} by tenths: {}\n", series.name, tenths.join(" "));
        if growth >= GROWTH {
            grown.push(series.name);
        }
    }
    print!("{report}");
    let _ = std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak.txt"),
        &report,
    );
    assert!(
        grown.is_empty(),
        "grew by 5 % or more after warm-up: {grown:?}\n{report}"
    );
}
