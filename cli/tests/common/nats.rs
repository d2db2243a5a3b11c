//! The NATS side of the stream tests: a real `nats-server` on a free
//! loopback port with its store in a temp folder, a client for the test's
//! own reads and writes, and `torvyn run` worker processes.
//!
//! Every wait is bounded: a test that hangs fails with what it waited for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};

use super::free_port;

pub const TORVYN: &str = env!("CARGO_BIN_EXE_torvyn");

// ---------------------------------------------------------------------------
// The server

/// The server binary `TORVYN_NATS_SERVER` names (`.ci/run` runs the
/// stream tests a second time on a current server so), else `nats-server`
/// on the PATH, or a failure that says how to install it: no test that
/// needs it is skipped.
pub fn nats_server_binary() -> PathBuf {
    if let Some(named) = std::env::var_os("TORVYN_NATS_SERVER") {
        let named = PathBuf::from(named);
        assert!(
            named.is_file(),
            "TORVYN_NATS_SERVER={}: no such file (./scripts/install-nats.sh prints where \
             it put each server)",
            named.display()
        );
        return named;
    }
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|dir: PathBuf| dir.join("nats-server"));
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "nats-server not found: these tests need a real server. Install it with \
         `./scripts/install-nats.sh` (Debian's nats-server 2.9, JetStream on)"
    );
}

/// A JetStream server on a free loopback port with its store in a temp
/// folder; killed when dropped.
pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub store: tempfile::TempDir,
    pub extra: Vec<String>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let mut server = Server {
            child: None,
            port: free_port(),
            store: tempfile::tempdir().expect("temp dir"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.launch();
        server
    }

    pub fn launch(&mut self) {
        let child = Command::new(nats_server_binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        until_listening(self.port, "nats-server");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again with the same store and port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Shuts down as an operator's restart does (SIGTERM: clients
    /// disconnected, what the server acknowledged is on disk), then starts
    /// again with the same store and port. A kill -9 may lose the writes of
    /// the last few milliseconds on a single server: only a cluster makes an
    /// acknowledged write survive that.
    pub fn restart_gracefully(&mut self) {
        self.stop_gracefully();
        self.launch();
    }

    /// SIGTERM, and waits (bounded) until the server has exited.
    pub fn stop_gracefully(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = i32::try_from(child.id()).expect("pid");
            // SAFETY: kill(2) on a child process we own.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().expect("wait").is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits (bounded: 30 s) until `what` accepts connections on `port`. A
/// cluster server restarted after a SIGKILL, holding tens of thousands of
/// messages, on CI's two loaded cores, once took over 10 s to listen.
pub fn until_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// A client for the test's side

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The test's own client at `url` (one server, or a comma-separated list
/// of a cluster's: the client takes a string as one address).
pub async fn context(url: &str, token: Option<&str>) -> jetstream::Context {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(token) = token {
        options = options.token(token.to_string());
    }
    let servers: Vec<async_nats::ServerAddr> = url
        .split(',')
        .map(|server| server.parse().expect("a server address"))
        .collect();
    jetstream::new(
        options
            .connect(servers.as_slice())
            .await
            .expect("the test connects"),
    )
}

/// Stream `name`, which must hold each of `wanted` exactly once and
/// nothing else.
pub async fn assert_exactly_once(js: &jetstream::Context, name: &str, wanted: &[String]) {
    let stored = read_stream(js, name).await;
    let payloads: Vec<String> = stored.iter().map(|s| s.payload.clone()).collect();
    let distinct: std::collections::BTreeSet<&String> = payloads.iter().collect();
    assert_eq!(payloads.len(), distinct.len(), "an output was stored twice");
    let wanted: std::collections::BTreeSet<&String> = wanted.iter().collect();
    assert_eq!(distinct, wanted, "every output, and only those");
}

pub async fn make_stream(js: &jetstream::Context, name: &str, subjects: &[&str]) {
    js.get_or_create_stream(jetstream::stream::Config {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
    .await
    .expect("stream created");
}

/// Publishes each payload and waits for its ack (retrying while JetStream
/// comes back after a restart).
pub async fn publish(js: &jetstream::Context, subject: &str, payloads: &[String]) {
    publish_each(js, subject, payloads, false).await;
}

/// As [`publish`], each payload its own `Nats-Msg-Id`: a publish whose ack
/// was lost with a restart and that is sent again is stored once. Its acks
/// are given up after 500 ms (not the client's 5 s), so a lost one is not
/// a stall of the test's own.
pub async fn publish_once(js: &jetstream::Context, subject: &str, payloads: &[String]) {
    let mut js = js.clone();
    js.set_timeout(Duration::from_millis(500));
    publish_each(&js, subject, payloads, true).await;
}

async fn publish_each(js: &jetstream::Context, subject: &str, payloads: &[String], ids: bool) {
    for payload in payloads {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut message =
                jetstream::message::PublishMessage::build().payload(payload.clone().into());
            if ids {
                message = message.message_id(payload);
            }
            let sent = async {
                js.send_publish(subject.to_string(), message)
                    .await?
                    .await
                    .map_err(async_nats::Error::from)
            };
            match sent.await {
                Ok(_) => break,
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "publish failed for 30 s: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// One stored message: its `Nats-Msg-Id`, its payload, its other headers.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: Option<String>,
    pub payload: String,
    pub headers: BTreeMap<String, String>,
}

pub async fn read_stream(js: &jetstream::Context, name: &str) -> Vec<Stored> {
    let stream = js.get_stream(name).await.expect("stream exists");
    let state = stream.get_info().await.expect("stream info").state;
    let mut stored = Vec::new();
    if state.messages == 0 {
        return stored;
    }
    for sequence in state.first_sequence..=state.last_sequence {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let headers: BTreeMap<String, String> = message
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.first().map(|v| v.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        stored.push(Stored {
            id: headers.get("Nats-Msg-Id").cloned(),
            payload: String::from_utf8_lossy(&message.payload).into_owned(),
            headers,
        });
    }
    stored
}

pub async fn count(js: &jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(stream) => stream
            .get_info()
            .await
            .map(|i| i.state.messages)
            .unwrap_or(0),
        Err(_) => 0,
    }
}

pub async fn consumer_info(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> jetstream::consumer::Info {
    try_consumer_info(js, stream, name)
        .await
        .unwrap_or_else(|| panic!("consumer `{name}` of `{stream}`"))
}

/// `None` while the stream or consumer does not exist yet.
pub async fn try_consumer_info(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Option<jetstream::consumer::Info> {
    let stream = js.get_stream(stream).await.ok()?;
    let consumer = stream.get_consumer::<pull::Config>(name).await.ok()?;
    consumer.get_info().await.ok()
}

/// Waits (bounded) until `check` holds, polling.
pub async fn until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// Workers

/// A flow file: a `nats` source → `component` (a processor or an
/// aggregator) → a `nats` sink; `source`/`sink` add settings.
pub fn nats_flow(
    dir: &Path,
    name: &str,
    url: &str,
    component: &str,
    role: &str,
    source: &str,
    sink: &str,
) -> PathBuf {
    let text = format!(
        r#"[[component]]
name = "stage"
path = "{component}"

[flow.main.nodes.input]
connector = "nats"
interface = "torvyn:streaming/source"
url = "{url}"
{source}

[flow.main.nodes.stage]
component = "stage"
interface = "{role}"
{config}

[flow.main.nodes.output]
connector = "nats"
interface = "torvyn:streaming/sink"
url = "{url}"
{sink}

[[flow.main.edges]]
from = {{ node = "input" }}
to = {{ node = "stage" }}

[[flow.main.edges]]
from = {{ node = "stage" }}
to = {{ node = "output" }}
"#,
        config = if role.contains("aggregator") {
            "config = \"1000000\""
        } else {
            ""
        },
    );
    let path = dir.join(name);
    std::fs::write(&path, text).expect("flow file written");
    path
}

/// What most tests start with: a server, a folder for flow files, a
/// runtime, a client, and the input stream `IN` (subject `in`).
pub struct Setup {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub rt: tokio::runtime::Runtime,
    pub js: jetstream::Context,
}

impl Setup {
    pub fn new(server_args: &[&str], token: Option<&str>) -> Setup {
        let server = Server::start(server_args);
        let rt = runtime();
        let js = rt.block_on(context(&server.url(), token));
        rt.block_on(make_stream(&js, "IN", &["in"]));
        Setup {
            server,
            dir: tempfile::tempdir().expect("temp dir"),
            rt,
            js,
        }
    }
}

/// `flow.toml`: `IN` (subject `in`, durable `consumer`, created when
/// missing, `source` settings added) → `component` in `role` → `OUT`
/// (subject `out`, `sink` settings added).
pub fn in_out_flow(
    dir: &tempfile::TempDir,
    server: &Server,
    component: &str,
    role: &str,
    consumer: &str,
    source: &str,
    sink: &str,
) -> PathBuf {
    nats_flow(
        dir.path(),
        "flow.toml",
        &server.url(),
        component,
        role,
        &format!(
            "stream = \"IN\"\nsubject = \"in\"\nconsumer = \"{consumer}\"\ncreate = true\n{source}"
        ),
        &format!("stream = \"OUT\"\nsubject = \"out\"\ncreate = true\n{sink}"),
    )
}

pub const PROCESSOR: &str = "torvyn:streaming/processor";
pub const AGGREGATOR: &str = "torvyn:aggregation/aggregator";

/// A `torvyn run` process, killed if the test ends before it does.
pub use super::Running as Worker;

pub fn worker(flow: &Path, args: &[&str]) -> Worker {
    Worker(Some(spawn(
        Command::new(TORVYN)
            .arg("run")
            .arg(flow)
            .args(["--quiet"])
            .args(args),
    )))
}

pub fn spawn(command: &mut Command) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("torvyn starts")
}

/// Waits for a worker to exit by itself (bounded), returning its output.
pub fn finish(mut worker: Worker, timeout: Duration) -> Output {
    let mut child = worker.0.take().expect("a running worker");
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "worker still running after {timeout:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGKILLs a worker and reaps it: nothing it holds is settled.
pub fn kill(mut worker: Worker) -> std::process::ExitStatus {
    let mut child = worker.0.take().expect("a running worker");
    child.kill().expect("SIGKILL");
    child.wait().expect("killed worker reaped")
}

/// Stops a worker with SIGTERM and returns its stdout (it must exit 0).
pub fn stop(worker: Worker) -> String {
    signal(&worker, libc::SIGTERM);
    let output = finish(worker, Duration::from_secs(30));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
}

pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn signal(worker: &Worker, signal: i32) {
    let pid = i32::try_from(worker.0.as_ref().expect("running").id()).expect("pid");
    // SAFETY: kill(2) on a child process we own.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill({pid}, {signal})"
    );
}

/// Column `column` of connector `node`'s row in a worker's summary table
/// (`connector kind role acked stored redelivered …`).
pub fn connector_count(stdout: &str, node: &str, column: &str) -> u64 {
    table_count(stdout, "connector", node, column)
}

/// Column `column` of row `row` in the worker's summary table whose header
/// starts with `table` (`node` or `connector`).
pub fn table_count(stdout: &str, table: &str, row: &str, column: &str) -> u64 {
    let mut lines = stdout
        .lines()
        .skip_while(|line| line.split_whitespace().next() != Some(table));
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_else(|| panic!("no {table} table in:\n{stdout}"))
        .split_whitespace()
        .collect();
    let at = header
        .iter()
        .position(|name| *name == column)
        .unwrap_or_else(|| panic!("no column `{column}` in {header:?}"));
    let found = lines
        .find(|line| line.split_whitespace().next() == Some(row))
        .unwrap_or_else(|| panic!("no row `{row}` in:\n{stdout}"));
    let value = found.split_whitespace().nth(at).unwrap();
    value
        .parse()
        .unwrap_or_else(|e| panic!("`{value}` in column {column}: {e}"))
}
