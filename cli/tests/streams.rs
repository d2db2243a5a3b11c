//! Connectors end to end: `torvyn run` worker processes against a real
//! `nats-server` (JetStream, file store in a temp folder, a free loopback
//! port) started by the harness; and the file/stdio connectors.
//!
//! Every wait is bounded: a test that hangs fails with what it waited for.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::free_port;
use common::nats::*;

// ---------------------------------------------------------------------------
// Tests

/// Three workers share one durable consumer; one is SIGKILLed mid-stream
/// and started again. Every output is stored exactly once: its unacked
/// inputs came back after the ack wait, and the outputs they made again
/// carried the same `Nats-Msg-Id`s, which the server dropped. The kill hit
/// work in flight: the survivors took inputs redelivered.
#[test]
fn three_workers_one_killed_every_output_exactly_once() {
    let Setup {
        server,
        dir,
        rt,
        js,
    } = Setup::new(&[], None);
    let flow = in_out_flow(
        &dir,
        &server,
        "bundled:uppercase",
        PROCESSOR,
        "work",
        "ack_wait_ms = 2000\nbatch = 50",
        "",
    );
    let args = ["--idle-timeout", "6"];
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&flow, &args)).collect();
    let expected: Vec<String> = (0..10_000).map(|i| format!("msg-{i:05}")).collect();
    for payloads in expected[..4500].chunks(500) {
        rt.block_on(publish(&js, "in", payloads));
        std::thread::sleep(Duration::from_millis(50));
    }
    rt.block_on(until(
        "outputs before the kill",
        Duration::from_secs(30),
        || async { count(&js, "OUT").await > 1000 },
    ));
    // The kill must land on a worker holding inputs (three fast workers are
    // mostly idle between chunks). The victim is stopped (SIGSTOP) while a
    // chunk is being published, a few milliseconds in (varied each try), so
    // it stops mid-batch or with a pull the server goes on filling; once
    // the other two have taken and acknowledged everything else, what the
    // consumer shows unacknowledged is the victim's. Held: SIGKILL. Not:
    // it goes on (SIGCONT) and the next chunk tries again.
    let victim = workers.remove(0);
    let pid = victim.0.as_ref().expect("running").id() as libc::pid_t;
    let mut next = 4500;
    let mut tries = 0;
    let held = loop {
        assert!(next < 9_500, "never caught the victim holding an input");
        let delay = Duration::from_millis(2 + (tries * 7) % 30);
        rt.block_on(async {
            let stop = async {
                tokio::time::sleep(delay).await;
                // SAFETY: a signal to a child this test spawned and has not
                // reaped.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
            };
            tokio::join!(publish(&js, "in", &expected[next..next + 500]), stop);
        });
        next += 500;
        tries += 1;
        let held = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut previous = u64::MAX;
            loop {
                let info = consumer_info(&js, "IN", "work").await;
                let now = info.num_ack_pending as u64;
                if info.num_pending == 0 && now == previous {
                    return now;
                }
                assert!(
                    Instant::now() < deadline,
                    "the other workers never finished what they took"
                );
                previous = now;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        if held > 0 {
            break held;
        }
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    };
    let killed = kill(victim);
    assert!(!killed.success(), "the worker was killed, not finished");
    println!("killed a worker holding {held} unacknowledged inputs (try {tries})");
    workers.push(worker(&flow, &args));
    for payloads in expected[next..].chunks(500) {
        rt.block_on(publish(&js, "in", payloads));
        std::thread::sleep(Duration::from_millis(50));
    }
    let outputs: Vec<Output> = workers
        .into_iter()
        .map(|w| finish(w, Duration::from_secs(90)))
        .collect();
    for output in &outputs {
        let (stdout, stderr) = text(output);
        assert!(
            output.status.success(),
            "worker failed:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("stopped: idle timeout"), "{stdout}");
    }
    let redelivered: u64 = outputs
        .iter()
        .map(|output| connector_count(&text(output).0, "input", "redelivered"))
        .sum();
    assert!(
        redelivered > 0,
        "the killed worker held no unacked input: nothing was redelivered"
    );
    let stored = rt.block_on(read_stream(&js, "OUT"));
    assert_eq!(stored.len(), 10_000, "every output stored once");
    let ids: BTreeSet<&str> = stored.iter().filter_map(|s| s.id.as_deref()).collect();
    assert_eq!(ids.len(), 10_000, "distinct Nats-Msg-Id per output");
    let payloads: BTreeSet<String> = stored.iter().map(|s| s.payload.clone()).collect();
    let wanted: BTreeSet<String> = expected.iter().map(|p| p.to_uppercase()).collect();
    assert_eq!(payloads, wanted);
    let info = rt.block_on(consumer_info(&js, "IN", "work"));
    assert_eq!(info.num_ack_pending, 0, "every input acknowledged");
    assert_eq!(info.num_pending, 0);
}

/// The server is killed and restarted on the same store while a worker
/// drains a backlog: the restart lands with thousands of inputs still to
/// process (checked); the worker reconnects and resumes; inputs published
/// after the restart are processed too; nothing is lost or doubled.
#[test]
fn server_restart_resumes_with_nothing_lost() {
    let Setup {
        mut server,
        dir,
        rt,
        js,
    } = Setup::new(&[], None);
    let url = server.url();
    let flow = in_out_flow(
        &dir,
        &server,
        "bundled:uppercase",
        PROCESSOR,
        "work",
        "ack_wait_ms = 2000",
        "",
    );
    const BACKLOG: usize = 6000;
    let expected: Vec<String> = (0..BACKLOG + 300).map(|i| format!("r-{i:05}")).collect();
    rt.block_on(publish(&js, "in", &expected[..BACKLOG]));
    let child = worker(&flow, &["--idle-timeout", "10"]);
    rt.block_on(until("first outputs", Duration::from_secs(30), || async {
        count(&js, "OUT").await >= 300
    }));
    let out_at_restart = rt.block_on(count(&js, "OUT")) as usize;
    drop(js);
    server.restart();
    println!("restarted with {out_at_restart} of {BACKLOG} outputs in");
    assert!(
        BACKLOG - out_at_restart >= 1000,
        "the restart landed with only {} inputs left to process",
        BACKLOG - out_at_restart
    );
    let js = rt.block_on(context(&url, None));
    rt.block_on(publish(&js, "in", &expected[BACKLOG..]));
    let output = finish(child, Duration::from_secs(60));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let stored = rt.block_on(read_stream(&js, "OUT"));
    let payloads: Vec<String> = stored.iter().map(|s| s.payload.clone()).collect();
    let wanted: Vec<String> = expected.iter().map(|p| p.to_uppercase()).collect();
    assert_eq!(payloads.len(), expected.len(), "{stdout}");
    assert_eq!(
        payloads.iter().collect::<BTreeSet<_>>(),
        wanted.iter().collect::<BTreeSet<_>>()
    );
}

/// SIGTERM while an aggregator holds inputs: the worker exits 0 within
/// seconds, stores nothing half-done, and hands the held inputs back; the
/// next worker aggregates every one of them exactly once.
#[test]
fn sigterm_hands_back_what_an_aggregator_holds() {
    let Setup {
        server,
        dir,
        rt,
        js,
    } = Setup::new(&[], None);
    let flow = in_out_flow(
        &dir,
        &server,
        "bundled:aggregator",
        AGGREGATOR,
        "agg",
        "",
        "",
    );
    let inputs: Vec<String> = (0..100).map(|i| format!("m{i:03}")).collect();
    rt.block_on(publish(&js, "in", &inputs));
    let first = worker(&flow, &[]);
    rt.block_on(until(
        "all 100 inputs held",
        Duration::from_secs(30),
        || async {
            try_consumer_info(&js, "IN", "agg")
                .await
                .is_some_and(|info| info.num_ack_pending == 100)
        },
    ));
    let asked = Instant::now();
    signal(&first, libc::SIGTERM);
    let output = finish(first, Duration::from_secs(10));
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "exit after SIGTERM: {stdout}\n{stderr}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stopped within seconds"
    );
    assert!(stdout.contains("stopped: signal"), "{stdout}");
    assert_eq!(
        rt.block_on(count(&js, "OUT")),
        0,
        "no partial aggregate stored"
    );

    // Handed back (nak'd), not left to time out: the consumer's ack wait is
    // 30 s, and the next worker gets all 100 at once, so it goes idle (2 s)
    // and ends well before that.
    let started = Instant::now();
    let second = worker(&flow, &["--idle-timeout", "2"]);
    let output = finish(second, Duration::from_secs(30));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stdout.contains("elements: 100 in, 1 delivered"),
        "{stdout}\n{stderr}"
    );
    let stored = rt.block_on(read_stream(&js, "OUT"));
    assert_eq!(stored.len(), 1, "one aggregate at the end of the stream");
    let mut chunks: Vec<String> = stored[0]
        .payload
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    chunks.sort();
    assert_eq!(chunks, inputs, "every held input aggregated exactly once");
    let info = rt.block_on(consumer_info(&js, "IN", "agg"));
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
}

/// A NATS source on the test server's `IN` (subject `in`) with consumer
/// `consumer`, created when missing, and `settings` added.
async fn open_source(
    server: &Server,
    consumer: &str,
    settings: &[(&str, &str)],
) -> Box<dyn torvyn_engine::connect::SourceConnector> {
    use torvyn_engine::connect::{Connector, ConnectorSpec, Connectors};
    let mut spec = ConnectorSpec::new(
        "nats",
        [
            ("url", server.url()),
            ("stream", "IN".into()),
            ("subject", "in".into()),
            ("consumer", consumer.into()),
            ("create", "true".into()),
        ],
    );
    for (key, value) in settings {
        spec.settings.insert(key.to_string(), value.to_string());
    }
    match Connectors::builtin()
        .open("input", torvyn_engine::Interface::Source, &spec)
        .await
        .expect("source opened")
    {
        Connector::Source(source) => source,
        Connector::Sink(_) => panic!("a source was asked for"),
    }
}

/// What a shutdown does to an idle worker: its fetch, waiting on an open
/// pull request, is dropped, and a message arrives for that request. The
/// source's `stop` receives it and hands it back, so the next worker gets it
/// at once, not after the consumer's ack wait (30 s): it is the message a
/// stopped aggregator worker would otherwise leave behind.
#[test]
fn a_fetch_dropped_at_a_stop_loses_nothing() {
    use torvyn_engine::connect::{Fetched, SourceConnector};

    let Setup {
        server,
        dir: _dir,
        rt,
        js,
    } = Setup::new(&[], None);
    rt.block_on(async {
        let mut first: Box<dyn SourceConnector> =
            open_source(&server, "drop", &[("fetch_wait_ms", "3000")]).await;
        // The stream is empty: the fetch waits on a pull the server holds
        // for 3 s, and is given up after 300 ms, as at a shutdown.
        let dropped = tokio::time::timeout(Duration::from_millis(300), first.fetch(10)).await;
        assert!(dropped.is_err(), "nothing to fetch yet: {dropped:?}");
        publish(&js, "in", &["late".to_string()]).await;
        until(
            "the message delivered to the open pull",
            Duration::from_secs(2),
            || async {
                try_consumer_info(&js, "IN", "drop")
                    .await
                    .is_some_and(|info| info.num_ack_pending == 1)
            },
        )
        .await;
        first.stop().await.expect("stopped");
        drop(first);

        let mut second = open_source(&server, "drop", &[("fetch_wait_ms", "200")]).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut got = Vec::new();
        while got.is_empty() && Instant::now() < deadline {
            if let Fetched::Inputs(inputs) = second.fetch(10).await.expect("fetched") {
                got = inputs;
            }
        }
        let payloads: Vec<&[u8]> = got.iter().map(|input| &input.element.payload[..]).collect();
        assert_eq!(
            payloads,
            [&b"late"[..]],
            "handed back, not left to the ack wait"
        );
        let handles: Vec<u64> = got.iter().map(|input| input.handle).collect();
        second.ack(&handles).await.expect("acked");
    });
}

/// An ack "confirmed" by an answer that only says nobody listens is not
/// confirmed. A server shutting down stops JetStream (its consumers stop
/// taking acks) before it closes the clients' connections: an ack sent in
/// that moment is answered by the server's "no responders" status, which
/// async-nats' `double_ack` counts as a confirmation. A worker saving its
/// state at a stop then told the state stood for inputs whose acks were
/// lost (CI: `restarts.rs`, round 3, 5 of 10 acks lost). Here the consumer
/// is deleted under a delivered message: its ack must fail, not pass.
#[test]
fn an_ack_answered_by_no_responders_is_not_confirmed() {
    use torvyn_engine::connect::Fetched;

    let Setup {
        server,
        dir: _dir,
        rt,
        js,
    } = Setup::new(&[], None);
    rt.block_on(async {
        let mut source = open_source(
            &server,
            "gone",
            &[("fetch_wait_ms", "200"), ("answer_timeout_ms", "300")],
        )
        .await;
        publish(&js, "in", &["one".to_string()]).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.is_empty() && Instant::now() < deadline {
            if let Fetched::Inputs(inputs) = source.fetch(10).await.expect("fetched") {
                got = inputs;
            }
        }
        assert_eq!(got.len(), 1, "the message delivered");
        let stream = js.get_stream("IN").await.expect("stream IN");
        stream
            .delete_consumer("gone")
            .await
            .expect("consumer deleted");
        let confirmed = source.ack_confirmed(&[got[0].handle]).await;
        let error = confirmed.expect_err("no consumer took the ack: it is not confirmed");
        assert!(
            error.to_string().contains("did not confirm the ack"),
            "{error}"
        );
    });
}

/// Keyed state: each worker bound to one partition subject
/// (`--partition`) aggregates exactly the inputs of its key, in order, as
/// one process reading every partition does.
#[test]
fn partitioned_aggregates_equal_one_process() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let js = rt.block_on(context(&server.url(), None));
    rt.block_on(make_stream(&js, "PARTS", &["parts.*"]));
    let mut by_key: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for i in 0..400 {
        let key = if i % 3 == 0 { "a" } else { "b" };
        let payload = format!("{key}{:03}", i);
        rt.block_on(publish(
            &js,
            &format!("parts.{key}"),
            std::slice::from_ref(&payload),
        ));
        by_key.entry(key).or_default().push(payload);
    }
    let partitioned = nats_flow(
        dir.path(),
        "partitioned.toml",
        &server.url(),
        "bundled:aggregator",
        AGGREGATOR,
        "stream = \"PARTS\"\nsubject = \"parts.{partition}\"\nconsumer = \"agg-{partition}\"\ncreate = true",
        "stream = \"AGG\"\nsubject = \"agg.{partition}\"\ncreate = true\nstream_subjects = \"agg.*\"",
    );
    let workers: Vec<Worker> = ["a", "b"]
        .iter()
        .map(|p| worker(&partitioned, &["--partition", p, "--idle-timeout", "2"]))
        .collect();
    let single = nats_flow(
        dir.path(),
        "single.toml",
        &server.url(),
        "bundled:aggregator",
        AGGREGATOR,
        "stream = \"PARTS\"\nsubject = \"parts.*\"\nconsumer = \"agg-all\"\ncreate = true",
        "stream = \"ONE\"\nsubject = \"one\"\ncreate = true",
    );
    let one = worker(&single, &["--idle-timeout", "2"]);
    for child in workers.into_iter().chain([one]) {
        let output = finish(child, Duration::from_secs(30));
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stdout}\n{stderr}");
    }
    let chunks = |payload: &str| -> Vec<String> {
        payload
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    };
    let single = rt.block_on(read_stream(&js, "ONE"));
    assert_eq!(single.len(), 1);
    let single_chunks = chunks(&single[0].payload);
    let partitioned = rt.block_on(read_stream(&js, "AGG"));
    assert_eq!(partitioned.len(), 2, "one aggregate per partition");
    for stored in &partitioned {
        let mine = chunks(&stored.payload);
        let key = &mine[0][..1];
        let same_key: Vec<String> = single_chunks
            .iter()
            .filter(|c| c.starts_with(key))
            .cloned()
            .collect();
        assert_eq!(
            mine, same_key,
            "partition {key} equals one process's view of key {key}"
        );
        assert_eq!(&mine, &by_key[key], "in publish order");
    }
}

/// `--metrics` serves Prometheus text with per-node and per-connector
/// numbers; a scrape over HTTP sees the flow's counts.
#[test]
fn metrics_are_served_over_http() {
    let Setup {
        server,
        dir,
        rt,
        js,
    } = Setup::new(&[], None);
    let flow = in_out_flow(
        &dir,
        &server,
        "bundled:uppercase",
        PROCESSOR,
        "work",
        "",
        "",
    );
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let child = worker(&flow, &["--metrics", &address]);
    let payloads: Vec<String> = (0..50).map(|i| format!("x{i}")).collect();
    rt.block_on(publish(&js, "in", &payloads));
    let scrape = || common::metrics_page(&address).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut response = scrape();
    while !response.contains(r#"torvyn_sink_stored_total{flow="main",node="output"} 50"#) {
        assert!(
            Instant::now() < deadline,
            "metrics never showed 50 stored:\n{response}"
        );
        std::thread::sleep(Duration::from_millis(100));
        response = scrape();
    }
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    for line in [
        r#"torvyn_node_elements_in_total{flow="main",node="stage",role="processor"} 50"#,
        r#"torvyn_node_elements_out_total{flow="main",node="stage",role="processor"} 50"#,
        r#"torvyn_node_call_seconds_count{flow="main",node="stage",role="processor"} 50"#,
        r#"torvyn_sink_duplicates_total{flow="main",node="output"} 0"#,
        r#"torvyn_source_dead_lettered_total{flow="main",node="input"} 0"#,
        r#"torvyn_node_recycled_total{flow="main",node="stage",role="processor"} 0"#,
        // Read at the scrape: one instance (the stage), no buffer held
        // between batches.
        "torvyn_engine_instances 1",
        "torvyn_engine_guest_buffer_bytes 0",
    ] {
        assert!(
            response.lines().any(|l| l == line),
            "missing `{line}` in:\n{response}"
        );
    }
    assert!(
        response.contains("torvyn_source_ack_pending{"),
        "{response}"
    );
    for gauge in ["process_resident_memory_bytes", "process_open_fds"] {
        let value: u64 = response
            .lines()
            .find_map(|line| line.strip_prefix(gauge)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no `{gauge}` in:\n{response}"));
        assert!(value > 0, "{gauge} {value}");
    }
    signal(&child, libc::SIGTERM);
    let output = finish(child, Duration::from_secs(10));
    assert!(output.status.success());
}

/// SIGTERM while the worker is still compiling its components (the
/// Python stage takes seconds): the worker stops cleanly once it can,
/// exit 0 and its summary, instead of dying by the signal.
#[test]
fn sigterm_while_compiling_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guests/out/python-processor.wasm");
    assert!(python.exists(), "build the guests first: guests/build.sh");
    let flow = dir.path().join("flow.toml");
    std::fs::write(
        &flow,
        common::stdio_flow("py", python.to_str().unwrap(), PROCESSOR),
    )
    .unwrap();
    let child = Worker(Some(
        Command::new(TORVYN)
            .args(["run", flow.to_str().unwrap(), "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let output = finish(child, Duration::from_secs(120));
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "{:?}\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stderr.contains("stopped: signal"), "{stdout}\n{stderr}");
}

/// A server that requires a user and a password: given in the URL
/// (`nats://alice:PASSWORD@host:port`, percent-encoded) and as settings
/// (`user`, `password_env`), both work; a wrong password is refused naming
/// the URL without it; at `--log trace` nothing the worker prints shows the
/// password (the client library's own events printed it with the URL).
#[test]
fn user_and_password_in_the_url_or_as_settings() {
    const PASSWORD: &str = "pw:Zq7@x9";
    const IN_URL: &str = "pw%3AZq7%40x9";
    let server = Server::start(&["--user", "alice", "--pass", PASSWORD]);
    let rt = runtime();
    let js = rt.block_on(async {
        let client = async_nats::ConnectOptions::new()
            .user_and_password("alice".into(), PASSWORD.into())
            .connect(server.url())
            .await
            .expect("the test connects");
        jetstream::new(client)
    });
    rt.block_on(make_stream(&js, "IN", &["in"]));
    let dir = tempfile::tempdir().unwrap();
    let flow = |name: &str, url: &str, credentials: &str| {
        nats_flow(
            dir.path(),
            name,
            url,
            "bundled:uppercase",
            PROCESSOR,
            &format!("stream = \"IN\"\nsubject = \"in\"\nconsumer = \"work\"\ncreate = true\n{credentials}"),
            &format!("stream = \"OUT\"\nsubject = \"out\"\ncreate = true\n{credentials}"),
        )
    };
    let run = |flow: &std::path::Path, password: &str| {
        let output = Command::new(TORVYN)
            .args(["run", "--quiet", "--idle-timeout", "1", "--log", "trace"])
            .arg(flow)
            .env("TORVYN_TEST_NATS_PASSWORD", password)
            .output()
            .expect("torvyn runs");
        let (stdout, stderr) = text(&output);
        for secret in [PASSWORD, IN_URL, "Zq7"] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "the password shows in the output:\n{stdout}\n{stderr}"
            );
        }
        (output, stdout, stderr)
    };
    let in_url = flow(
        "in-url.toml",
        &format!("nats://alice:{IN_URL}@127.0.0.1:{}", server.port),
        "",
    );
    let as_settings = flow(
        "as-settings.toml",
        &server.url(),
        "user = \"alice\"\npassword_env = \"TORVYN_TEST_NATS_PASSWORD\"",
    );
    let mut published = 0;
    for flow in [&in_url, &as_settings] {
        let payloads: Vec<String> = (0..5).map(|i| format!("u{published}-{i}")).collect();
        rt.block_on(publish(&js, "in", &payloads));
        published += 5;
        let (output, stdout, stderr) = run(flow, PASSWORD);
        assert!(
            output.status.success(),
            "{}:\n{stdout}\n{stderr}",
            flow.display()
        );
        assert_eq!(rt.block_on(count(&js, "OUT")), published, "{stdout}");
    }
    let (output, stdout, stderr) = run(&as_settings, "not-the-password");
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to {}", server.url()))
            && stderr.contains("authorization violation"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
}

/// A worker started while its server is down (restarting as the worker
/// starts) keeps trying its first connection for `connect_wait_ms` and
/// serves once the server is back; it used to exit 1 at once.
#[test]
fn a_worker_started_while_its_server_restarts_waits_for_it() {
    // A server that wants a token, the worker reading it from a file: the
    // file is gone before the server is back, and the worker still
    // connects (its credentials are read once, not at every try).
    let secret = "t0ken-read-once";
    let mut setup = Setup::new(&["--auth", secret], Some(secret));
    let token_file = setup.dir.path().join("nats.token");
    std::fs::write(&token_file, secret).unwrap();
    let token = format!("token_file = {:?}", token_file.display().to_string());
    let flow = in_out_flow(
        &setup.dir,
        &setup.server,
        "bundled:uppercase",
        PROCESSOR,
        "work",
        &token,
        &token,
    );
    let inputs: Vec<String> = (0..3).map(|i| format!("w{i}")).collect();
    setup.rt.block_on(publish(&setup.js, "in", &inputs));
    setup.server.stop_gracefully();
    let started = worker(&flow, &["--idle-timeout", "2", "--log", "debug"]);
    std::thread::sleep(Duration::from_millis(1_000));
    std::fs::remove_file(&token_file).unwrap();
    std::thread::sleep(Duration::from_millis(1_000));
    setup.server.launch();
    let output = finish(started, Duration::from_secs(60));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("connecting: trying again"),
        "the worker never waited for the server:\n{stderr}"
    );
    assert_eq!(connector_count(&stdout, "output", "stored"), 3, "{stdout}");
}

/// A server that requires a token: the right one (from the variable the
/// flow file names) works; a wrong one is an error naming the URL and
/// never the secret, exit 1.
#[test]
fn token_from_the_environment_and_wrong_token_refused() {
    let secret = "s3cret-token-4711";
    let Setup {
        server,
        dir,
        rt,
        js,
    } = Setup::new(&["--auth", secret], Some(secret));
    let token = "token_env = \"TORVYN_TEST_NATS_TOKEN\"";
    let flow = in_out_flow(
        &dir,
        &server,
        "bundled:uppercase",
        PROCESSOR,
        "work",
        token,
        token,
    );
    let payloads: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    rt.block_on(publish(&js, "in", &payloads));
    let run = |token: Option<&str>| {
        let mut command = Command::new(TORVYN);
        command
            .args(["run", "--quiet", "--idle-timeout", "1"])
            .arg(&flow)
            .env_remove("TORVYN_TEST_NATS_TOKEN");
        if let Some(token) = token {
            command.env("TORVYN_TEST_NATS_TOKEN", token);
        }
        let started = Instant::now();
        let output = command.output().expect("torvyn runs");
        (output, started.elapsed())
    };
    let (output, _) = run(Some(secret));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(rt.block_on(count(&js, "OUT")), 10);

    let (output, took) = run(Some("wrong-token-0815"));
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        took < Duration::from_secs(10),
        "refused within seconds: {took:?}"
    );
    assert!(
        stderr.contains(&format!("cannot connect to {}", server.url())),
        "names the URL: {stderr}"
    );
    assert!(stderr.to_lowercase().contains("authorization"), "{stderr}");
    assert!(
        !stderr.contains("wrong-token-0815") && !stderr.contains(secret),
        "{stderr}"
    );

    let (output, _) = run(None);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("the environment variable `TORVYN_TEST_NATS_TOKEN` is not set"),
        "{stderr}"
    );
}

/// Nobody listening: an error naming the URL within seconds, exit 1. A
/// stream that does not exist (no `create`): an error naming it.
#[test]
fn unreachable_server_and_missing_stream_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let flow = nats_flow(
        dir.path(),
        "flow.toml",
        &url,
        "bundled:uppercase",
        PROCESSOR,
        "stream = \"IN\"\nsubject = \"in\"\nconsumer = \"work\"",
        "subject = \"out\"",
    );
    let started = Instant::now();
    let output = Command::new(TORVYN).arg("run").arg(&flow).output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "node `input` (nats connector): cannot connect to {url}"
        )),
        "{stderr}"
    );

    let server = Server::start(&[]);
    let flow = nats_flow(
        dir.path(),
        "flow.toml",
        &server.url(),
        "bundled:uppercase",
        PROCESSOR,
        "stream = \"NOPE\"\nsubject = \"in\"\nconsumer = \"work\"",
        "subject = \"out\"",
    );
    let output = Command::new(TORVYN).arg("run").arg(&flow).output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("stream `NOPE` not found") && stderr.contains("create = true"),
        "{stderr}"
    );
}

/// What a run with dead-lettering on left behind.
struct DeadLetterRun {
    stdout: String,
    stored: Vec<String>,
    dead: Vec<Stored>,
    consumer: jetstream::consumer::Info,
}

/// Publishes `payloads` to a stream whose consumer retries a failing
/// message `max_deliver` times, then dead-letters it; runs one worker of
/// `component` (with `args`) until idle.
fn run_with_dead_letters(
    component: &str,
    max_deliver: u32,
    payloads: &[String],
    args: &[&str],
) -> DeadLetterRun {
    let Setup {
        server,
        dir,
        rt,
        js,
    } = Setup::new(&[], None);
    let retries =
        format!("max_deliver = {max_deliver}\nnak_delay_ms = 100\ndead_letter = \"dead\"");
    let flow = in_out_flow(&dir, &server, component, PROCESSOR, "work", &retries, "");
    rt.block_on(publish(&js, "in", payloads));
    let mut args = args.to_vec();
    args.extend(["--idle-timeout", "2"]);
    let output = finish(worker(&flow, &args), Duration::from_secs(30));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    DeadLetterRun {
        stdout,
        stored: rt
            .block_on(read_stream(&js, "OUT"))
            .into_iter()
            .map(|s| s.payload)
            .collect(),
        dead: rt.block_on(read_stream(&js, "IN_DEAD")),
        consumer: rt.block_on(consumer_info(&js, "IN", "work")),
    }
}

/// A poison message traps the processor on every delivery: it is retried
/// `max_deliver` times (a fresh instance each time), then dead-lettered
/// with the trap named; every other message gets through.
#[test]
fn poison_message_is_retried_then_dead_lettered() {
    let payloads: Vec<String> = ["ok-1", "!poison", "ok-2"].map(String::from).to_vec();
    let run = run_with_dead_letters("bundled:uppercase-or-trap", 3, &payloads, &[]);
    assert!(
        run.stdout
            .contains("failed inputs: 3; instances replaced: 3"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stored, ["OK-1", "OK-2"]);
    assert_eq!(run.dead.len(), 1, "{:?}", run.dead);
    assert_eq!(run.dead[0].payload, "!poison");
    let error = &run.dead[0].headers["Torvyn-Error"];
    assert!(
        error.contains("trap") && error.contains("unreachable"),
        "{error}"
    );
    assert_eq!(run.dead[0].headers["Torvyn-Origin"], "IN:2");
    assert_eq!(
        (run.consumer.num_ack_pending, run.consumer.num_pending),
        (0, 0)
    );
}

/// Lines in, lines out: a file source through a component into a file
/// sink, and stdin through to stdout (the report then goes to stderr).
#[test]
fn file_and_stdio_connectors_move_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "alpha\nbeta\r\ngamma").unwrap();
    let flow = |source: &str, sink: &str| {
        format!(
            r#"[[component]]
name = "upper"
path = "bundled:uppercase"
[flow.main.nodes.input]
interface = "torvyn:streaming/source"
{source}
[flow.main.nodes.upper]
component = "upper"
interface = "torvyn:streaming/processor"
[flow.main.nodes.output]
interface = "torvyn:streaming/sink"
{sink}
[[flow.main.edges]]
from = {{ node = "input" }}
to = {{ node = "upper" }}
[[flow.main.edges]]
from = {{ node = "upper" }}
to = {{ node = "output" }}
"#
        )
    };
    let files = dir.path().join("files.toml");
    std::fs::write(
        &files,
        flow(
            "connector = \"file\"\npath = \"in.txt\"",
            "connector = \"file\"\npath = \"out.txt\"",
        ),
    )
    .unwrap();
    let output = Command::new(TORVYN)
        .arg("run")
        .arg(&files)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("stopped: every source ended"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "ALPHA\nBETA\nGAMMA\n"
    );

    let stdio = dir.path().join("stdio.toml");
    std::fs::write(
        &stdio,
        flow("connector = \"stdin\"", "connector = \"stdout\""),
    )
    .unwrap();
    let mut child = spawn(
        Command::new(TORVYN)
            .arg("run")
            .arg(&stdio)
            .stdin(Stdio::piped()),
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\n")
        .unwrap();
    let output = finish(Worker(Some(child)), Duration::from_secs(30));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, "ONE\nTWO\n", "only data on stdout");
    assert!(stderr.contains("elements: 2 in, 2 delivered"), "{stderr}");

    // A setting the kind does not know is named with its line.
    std::fs::write(
        &files,
        flow(
            "connector = \"file\"\npath = \"in.txt\"\npaht = \"x\"",
            "connector = \"file\"\npath = \"out.txt\"",
        ),
    )
    .unwrap();
    let output = Command::new(TORVYN)
        .arg("run")
        .arg(&files)
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("node `input` (file connector): setting `paht` (line 8): unknown"),
        "{stderr}"
    );
}

/// A message too big for the engine's limits (here: the fuel a call may
/// spend, which host copies are charged to) is dead-lettered with the
/// limit named, and the messages around it get through.
#[test]
fn a_message_over_the_limits_is_dead_lettered_with_the_limit_named() {
    let big = "x".repeat(256 * 1024);
    let payloads = vec!["small".to_string(), big.clone(), "after".to_string()];
    let run = run_with_dead_letters("bundled:uppercase", 2, &payloads, &["--fuel", "20000"]);
    assert_eq!(run.stored, ["SMALL", "AFTER"]);
    assert_eq!(run.dead.len(), 1);
    assert_eq!(run.dead[0].payload.len(), big.len());
    let error = &run.dead[0].headers["Torvyn-Error"];
    assert!(error.contains("fuel exhausted"), "{error}");
}

/// The de-duplication itself, deterministically: every input delivered a
/// second time (its consumer deleted and made again, so all 100 come back)
/// produces the same outputs with the same `Nats-Msg-Id`s; the server
/// stores none of them again and says so (100 duplicates in the report).
#[test]
fn redelivered_inputs_store_no_output_twice() {
    let Setup {
        server,
        dir,
        rt,
        js,
    } = Setup::new(&[], None);
    let flow = in_out_flow(
        &dir,
        &server,
        "bundled:uppercase",
        PROCESSOR,
        "work",
        "",
        "",
    );
    let payloads: Vec<String> = (0..100).map(|i| format!("d{i}")).collect();
    rt.block_on(publish(&js, "in", &payloads));
    let duplicates = |stdout: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("output") && l.contains(" nats "))
            .unwrap_or_else(|| panic!("no sink connector line in:\n{stdout}"));
        line.split_whitespace().nth(7).unwrap().parse().unwrap()
    };
    let first = finish(
        worker(&flow, &["--idle-timeout", "1"]),
        Duration::from_secs(30),
    );
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "{stdout}\n{stderr}");
    assert_eq!(duplicates(&stdout), 0, "{stdout}");
    assert_eq!(rt.block_on(count(&js, "OUT")), 100);

    rt.block_on(async {
        js.get_stream("IN")
            .await
            .unwrap()
            .delete_consumer("work")
            .await
            .unwrap()
    });
    let second = finish(
        worker(&flow, &["--idle-timeout", "1"]),
        Duration::from_secs(30),
    );
    let (stdout, stderr) = text(&second);
    assert!(second.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("elements: 100 in, 100 delivered"),
        "{stdout}"
    );
    assert_eq!(duplicates(&stdout), 100, "{stdout}");
    assert_eq!(rt.block_on(count(&js, "OUT")), 100, "nothing stored twice");
}

/// `--state-bucket`: a counting aggregator (exporting torvyn:state) told to
/// stop keeps its count in a JetStream key-value bucket, and the inputs it
/// counted are acknowledged once the bucket has it (not handed back); the
/// next worker restores the count, and the one aggregate at the end of the
/// stream counts every input exactly once. The bucket's key is removed
/// then: the count was emitted.
#[test]
fn a_counters_state_survives_sigterm_in_a_key_value_bucket() {
    let Setup {
        server,
        dir,
        rt,
        js,
    } = Setup::new(&[], None);
    let flow = in_out_flow(
        &dir,
        &server,
        "bundled:counter",
        AGGREGATOR,
        "count",
        "",
        "",
    );
    let first_inputs: Vec<String> = (0..30).map(|i| format!("a{i}")).collect();
    rt.block_on(publish(&js, "in", &first_inputs));
    let first = worker(&flow, &["--state-bucket", "STATE"]);
    rt.block_on(until(
        "all 30 inputs held",
        Duration::from_secs(30),
        || async {
            try_consumer_info(&js, "IN", "count")
                .await
                .is_some_and(|info| info.num_ack_pending == 30)
        },
    ));
    signal(&first, libc::SIGTERM);
    let output = finish(first, Duration::from_secs(10));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("state: 0 restored at start, 1 saved at stop"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(rt.block_on(count(&js, "OUT")), 0, "nothing emitted yet");
    let info = rt.block_on(consumer_info(&js, "IN", "count"));
    assert_eq!(
        (info.num_ack_pending, info.num_pending),
        (0, 0),
        "the counted inputs are acked, not handed back"
    );
    let stored = rt.block_on(async {
        let bucket = js.get_key_value("STATE").await.expect("the bucket exists");
        bucket.get("main.stage").await.expect("key read")
    });
    assert_eq!(
        stored.as_deref(),
        Some(&30u64.to_le_bytes()[..]),
        "the count, as the component saved it"
    );

    let second_inputs: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    rt.block_on(publish(&js, "in", &second_inputs));
    let second = worker(&flow, &["--state-bucket", "STATE", "--idle-timeout", "2"]);
    let output = finish(second, Duration::from_secs(30));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("state: 1 restored at start, 0 saved at stop"),
        "{stdout}\n{stderr}"
    );
    let outputs = rt.block_on(read_stream(&js, "OUT"));
    let payloads: Vec<&str> = outputs.iter().map(|o| o.payload.as_str()).collect();
    assert_eq!(payloads, ["50"], "one run's total over both workers");
    let info = rt.block_on(consumer_info(&js, "IN", "count"));
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
    let left = rt.block_on(async {
        let bucket = js.get_key_value("STATE").await.expect("the bucket exists");
        bucket.get("main.stage").await.expect("key read")
    });
    assert_eq!(left, None, "the emitted count's state is removed");
}

/// What a 2.10+ server offers — several filter subjects on one consumer,
/// consumer metadata, stream compression — works on such a server; on an
/// older one each is refused naming the setting and the server's version
/// (the server would ignore the field, and the setting would silently do
/// nothing). On any server a consumer that exists with other limits than
/// the node sets is named, not used as if it had them. CI runs this on
/// 2.9.10 and on 2.15.
#[test]
fn current_server_features_work_there_and_older_servers_are_named() {
    let setup = Setup::new(&[], None);
    let url = setup.server.url();
    let version = setup.js.client().server_info().version.clone();
    let (major, minor) = {
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    };
    let current = (major, minor) >= (2, 10);
    setup.rt.block_on(async {
        make_stream(&setup.js, "MULTI", &["multi.*"]).await;
        for (subject, payload) in [
            ("multi.a", "from a"),
            ("multi.b", "from b"),
            ("multi.c", "from c"),
        ] {
            publish(&setup.js, subject, &[payload.to_string()]).await;
        }
    });
    let run = |name: &str, source: &str, sink: &str| {
        let flow = nats_flow(
            setup.dir.path(),
            name,
            &url,
            "bundled:uppercase",
            PROCESSOR,
            source,
            sink,
        );
        let output = Command::new(TORVYN)
            .arg("run")
            .arg(&flow)
            .args(["--idle-timeout", "1"])
            .output()
            .unwrap();
        let (_, stderr) = text(&output);
        (output.status.code(), stderr)
    };
    let multi =
        "stream = \"MULTI\"\nsubject = \"multi.a, multi.b\"\nconsumer = \"ab\"\ncreate = true";
    let metadata = "consumer_metadata = \"team=orders, tier=gold\"";
    let compressed = "stream = \"ZOUT\"\nsubject = \"zout\"\ncreate = true\ncompression = \"s2\"";
    if current {
        let (code, stderr) = run("current.toml", &format!("{multi}\n{metadata}"), compressed);
        assert_eq!(code, Some(0), "nats-server {version}: {stderr}");
        setup.rt.block_on(async {
            let mut stored: Vec<String> = read_stream(&setup.js, "ZOUT")
                .await
                .into_iter()
                .map(|s| s.payload)
                .collect();
            stored.sort();
            assert_eq!(
                stored,
                ["FROM A", "FROM B"],
                "the two filtered subjects only"
            );
            let info = consumer_info(&setup.js, "MULTI", "ab").await;
            assert_eq!(info.config.filter_subjects, ["multi.a", "multi.b"]);
            assert_eq!(
                info.config.metadata.get("tier").map(String::as_str),
                Some("gold")
            );
            let zout = setup
                .js
                .get_stream("ZOUT")
                .await
                .unwrap()
                .get_info()
                .await
                .unwrap();
            assert_eq!(
                zout.config.compression,
                Some(jetstream::stream::Compression::S2)
            );
        });
    } else {
        for (name, source, sink, key) in [
            ("multi.toml", multi.to_string(), "subject = \"out\"", "subject"),
            (
                "metadata.toml",
                format!("stream = \"IN\"\nsubject = \"in\"\nconsumer = \"m\"\ncreate = true\n{metadata}"),
                "subject = \"out\"",
                "consumer_metadata",
            ),
            (
                "compressed.toml",
                "stream = \"IN\"\nsubject = \"in\"\nconsumer = \"c\"\ncreate = true".to_string(),
                compressed,
                "compression",
            ),
        ] {
            let (code, stderr) = run(name, &source, sink);
            assert_eq!(code, Some(1), "{name} on nats-server {version}: {stderr}");
            assert!(
                stderr.contains(&format!("setting `{key}`"))
                    && stderr.contains("needs nats-server 2.10 or later")
                    && stderr.contains(&format!("runs {version}")),
                "{name}: {stderr}"
            );
        }
    }
    // Limits the node sets that the existing consumer does not have.
    let created = "stream = \"IN\"\nsubject = \"in\"\nconsumer = \"limits\"\ncreate = true";
    let (code, stderr) = run("limits.toml", created, "subject = \"out\"");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run(
        "other-limits.toml",
        &format!("{created}\nack_wait_ms = 5000"),
        "subject = \"out\"",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("setting `ack_wait_ms`")
            && stderr.contains("consumer `limits` of stream `IN` exists with ack_wait_ms = 30000"),
        "{stderr}"
    );
}
