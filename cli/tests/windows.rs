//! Windows over durable streams (issue 36), against a real `nats-server`:
//! 100,000 events over 1,000 keys, event times out of order by up to 2 s
//! and one in 200 later than the lateness allows, into tumbling 1 s and
//! sliding 5 s / 1 s windows (lateness 1 s). Three workers share
//! `partitions = 8` by lease; one is SIGKILLed mid-run and started again,
//! a fourth joins, the server restarts. Every (key, window) result equals
//! a reference the test computes from the input in each partition's order,
//! each is stored once, every late event is in its node's late subject.
//! Sessions: one worker alone, the server restarted under it, the same
//! checks.
//!
//! Why the results cannot depend on who ran what: the source is `ordered`
//! (a partition's new holder fetches nothing new until what its old holder
//! took has come again), so each partition's inputs are folded in their
//! stream order, as the reference takes them; the late ones are 20–30 s
//! behind. (Seen failing without it, on one core: a new holder worked
//! through its partition's backlog for the 3 s ack wait before the dead
//! one's inputs came again, and they came late: results one event short.)
//!
//! Bounded waits throughout; times printed, not asserted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::nats::*;
use torvyn_engine::window::{Window, WindowSpec};

const PARTITIONS: usize = 8;
const BASE_MS: i64 = 1_700_000_000_000;
const MAX_OUT_OF_ORDER_MS: i64 = 2_000;
const LATENESS_MS: u64 = 1_000;

/// One event: its index (in the payload after its value), key, event time
/// and value.
#[derive(Debug, Clone)]
struct Event {
    index: usize,
    key: usize,
    at: i64,
    value: u64,
}

impl Event {
    fn partition(&self) -> usize {
        self.key % PARTITIONS
    }

    fn key_name(&self) -> String {
        format!("k{:04}", self.key)
    }
}

/// `count` events over `keys` keys, ten per millisecond of true time, each
/// up to 2 s out of order; one in 200 (after the first 2,000) 20–30 s
/// late; then, per partition, one event an hour later that closes every
/// window before it (its own never close).
fn events(count: usize, keys: usize, seed: u64) -> Vec<Event> {
    let mut random = seed;
    let mut next = move |below: u64| {
        random = random
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (random >> 33) % below
    };
    let mut events: Vec<Event> = (0..count)
        .map(|index| {
            let true_ms = BASE_MS + index as i64 / 10;
            let behind = match (index > 2_000, next(200)) {
                (true, 0) => 20_000 + next(10_000),
                _ => next(MAX_OUT_OF_ORDER_MS as u64 + 1),
            };
            Event {
                index,
                key: next(keys as u64) as usize,
                at: true_ms - behind as i64,
                value: next(1_000),
            }
        })
        .collect();
    let closing_keys = (keys / PARTITIONS + 1) * PARTITIONS;
    for partition in 0..PARTITIONS {
        events.push(Event {
            index: count + partition,
            key: closing_keys + partition,
            at: BASE_MS + 3_600_000,
            value: 0,
        });
    }
    events
}

/// What a windowed node gives for `events`, each partition in its order:
/// `KEY START COUNT SUM` of every window the last watermark closed, and the
/// indices of the late events (every window of theirs closed when they
/// came). The watermark before an event is the latest event time before it
/// in its partition less the disorder, less 1; a window is closed once the
/// watermark reached its last time plus the lateness.
fn reference(events: &[Event], spec: &WindowSpec) -> (BTreeSet<String>, BTreeSet<usize>) {
    let mut results = BTreeSet::new();
    let mut late = BTreeSet::new();
    for partition in 0..PARTITIONS {
        let mut sums: BTreeMap<(String, Window), (u64, u64)> = BTreeMap::new();
        let mut latest: Option<i64> = None;
        let watermark = |latest: Option<i64>| latest.map(|l| l - MAX_OUT_OF_ORDER_MS - 1);
        for event in events.iter().filter(|e| e.partition() == partition) {
            let before = watermark(latest);
            let mut placed = 0;
            for window in spec.windows_of(event.at) {
                if before.is_some_and(|w| spec.closes_at(&window) <= w) {
                    continue;
                }
                let sum = sums.entry((event.key_name(), window)).or_default();
                *sum = (sum.0 + 1, sum.1 + event.value);
                placed += 1;
            }
            if placed == 0 {
                late.insert(event.index);
            }
            latest = Some(latest.map_or(event.at, |l| l.max(event.at)));
        }
        let last = watermark(latest).expect("every partition has events");
        for ((key, window), (count, sum)) in sums {
            if spec.closes_at(&window) <= last {
                results.insert(format!("{key} {} {count} {sum}", window.start_ms()));
            }
        }
    }
    (results, late)
}

/// Sessions of each key's on-time events (sorted; `gap` or less apart: one
/// session), as `KEY START COUNT SUM`; the late ones are those the
/// tumbling reference finds late (20–30 s behind: no session of theirs
/// can still be open).
fn session_reference(events: &[Event], gap: i64, late: &BTreeSet<usize>) -> BTreeSet<String> {
    let mut by_key: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for event in events.iter().filter(|e| !late.contains(&e.index)) {
        if event.at > BASE_MS + 3_000_000 {
            continue; // The closing events' sessions never close.
        }
        by_key
            .entry(event.key_name())
            .or_default()
            .push((event.at, event.value));
    }
    let mut results = BTreeSet::new();
    for (key, mut times) in by_key {
        times.sort_unstable();
        let mut session: Option<(i64, i64, u64, u64)> = None;
        for (at, value) in times {
            session = Some(match session {
                Some((start, last, count, sum)) if at - last <= gap => {
                    (start, at, count + 1, sum + value)
                }
                Some((start, _, count, sum)) => {
                    results.insert(format!("{key} {start} {count} {sum}"));
                    (at, at, 1, value)
                }
                None => (at, at, 1, value),
            });
        }
        if let Some((start, _, count, sum)) = session {
            results.insert(format!("{key} {start} {count} {sum}"));
        }
    }
    results
}

/// `flow.toml`: `EV` (subjects `ev.P`, a consumer per partition) into each
/// of `nodes` (name, `[window]` settings), each node's results to
/// `win.NAME` and its late events to `late.NAME` (stream `WIN`).
fn windows_flow(dir: &Path, url: &str, nodes: &[(&str, &str)]) -> PathBuf {
    let mut text = format!(
        r#"[[component]]
name = "count-sum"
path = "bundled:window-count"

[flow.main.nodes.input]
connector = "nats"
interface = "torvyn:streaming/source"
url = "{url}"
stream = "EV"
subject = "ev.{{partition}}"
stream_subjects = "ev.>"
consumer = "windows-{{partition}}"
create = true
key = "header:Key"
event_time = "header:Event-Ms"
ack_wait_ms = 3000
max_ack_pending = 200
ordered = true
"#
    );
    for (node, window) in nodes {
        for (sink, subject) in [("results", "win"), ("late", "late")] {
            text.push_str(&format!(
                r#"
[flow.main.nodes.{node}-{sink}]
connector = "nats"
interface = "torvyn:streaming/sink"
url = "{url}"
stream = "WIN"
subject = "{subject}.{node}"
stream_subjects = "win.>,late.>"
duplicate_window_ms = 600000
create = true
"#
            ));
        }
        text.push_str(&format!(
            r#"
[flow.main.nodes.{node}]
component = "count-sum"
interface = "torvyn:windowing/windowed-aggregator"

[flow.main.nodes.{node}.window]
{window}
allowed_lateness_ms = {LATENESS_MS}
max_out_of_order_ms = {MAX_OUT_OF_ORDER_MS}

[[flow.main.edges]]
from = {{ node = "input" }}
to = {{ node = "{node}" }}

[[flow.main.edges]]
from = {{ node = "{node}", port = "output" }}
to = {{ node = "{node}-results" }}

[[flow.main.edges]]
from = {{ node = "{node}", port = "late" }}
to = {{ node = "{node}-late" }}
"#
        ));
    }
    let path = dir.join("flow.toml");
    std::fs::write(&path, text).expect("flow file written");
    path
}

/// Publishes `events` to `ev.P`, headers `Key` and `Event-Ms`, payload
/// `VALUE #INDEX`, each under its own `Nats-Msg-Id` (a publish sent again
/// after a lost ack is stored once); a thousand at a time, acks awaited,
/// each thousand given 10 s and sent again (bounded) when it fails or
/// does not finish in time (a server restarting under it).
async fn publish_events(js: &jetstream::Context, events: &[Event]) {
    let mut js = js.clone();
    js.set_timeout(Duration::from_secs(2));
    for chunk in events.chunks(1_000) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let sent = tokio::time::timeout(Duration::from_secs(10), publish_chunk(&js, chunk));
            let error = match sent.await {
                Ok(Ok(())) => break,
                Ok(Err(error)) => error,
                Err(_) => "no answer within 10 s".to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "publishing failed for 60 s: {error}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn publish_chunk(js: &jetstream::Context, chunk: &[Event]) -> Result<(), String> {
    let mut acks = Vec::with_capacity(chunk.len());
    for event in chunk {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Key", event.key_name().as_str());
        headers.insert("Event-Ms", event.at.to_string().as_str());
        let message = jetstream::message::PublishMessage::build()
            .payload(format!("{} #{}", event.value, event.index).into())
            .headers(headers)
            .message_id(format!("ev-{}", event.index));
        let subject = format!("ev.{}", event.partition());
        acks.push(
            js.send_publish(subject, message)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    for ack in acks {
        ack.await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What `WIN` holds: per subject, the payloads (each once: a payload
/// stored twice under two ids fails the test).
async fn stored_outputs(js: &jetstream::Context) -> BTreeMap<String, BTreeSet<String>> {
    let stream = js.get_stream("WIN").await.expect("WIN exists");
    let state = stream.get_info().await.expect("WIN info").state;
    let mut by_subject: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sequence in state.first_sequence..=state.last_sequence {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let payload = String::from_utf8_lossy(&message.payload).into_owned();
        let subject = message.subject.to_string();
        let fresh = by_subject
            .entry(subject.clone())
            .or_default()
            .insert(payload.clone());
        assert!(fresh, "`{payload}` stored twice on {subject}");
    }
    by_subject
}

/// The late events' indices in what a late subject stored.
fn late_indices(stored: &BTreeMap<String, BTreeSet<String>>, subject: &str) -> BTreeSet<usize> {
    stored
        .get(subject)
        .map(|payloads| {
            payloads
                .iter()
                .map(|p| p.rsplit('#').next().unwrap().parse().expect("an index"))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts a node's stored results and late events against the reference.
fn assert_node(
    stored: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    expected: &BTreeSet<String>,
    late: &BTreeSet<usize>,
) {
    let empty = BTreeSet::new();
    let results = stored.get(&format!("win.{node}")).unwrap_or(&empty);
    let missing: Vec<_> = expected.difference(results).take(3).collect();
    let extra: Vec<_> = results.difference(expected).take(3).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{node}: {} results stored, {} expected; missing {missing:?}; not expected {extra:?}",
        results.len(),
        expected.len()
    );
    assert_eq!(
        &late_indices(stored, &format!("late.{node}")),
        late,
        "{node}: late events"
    );
}

/// Waits (bounded) until `WIN` holds `total` messages.
async fn until_stored(js: &jetstream::Context, total: u64, within: Duration) {
    until("every result and late event stored", within, || async {
        count(js, "WIN").await >= total
    })
    .await;
}

/// The lease TTL, 4 s: each partition drops itself when its lease's
/// renewal is 2/3 of it overdue, and a debug build on two cores with five
/// workers can starve a worker's lease loop for a second or more (shorter
/// TTLs made partitions drop and start again over and over).
const WORKER_ARGS: [&str; 6] = [
    "--partitions",
    "8",
    "--state-bucket",
    "WSTATE",
    "--lease-ttl",
    "4",
];

#[test]
fn windowed_counts_over_partitions_survive_a_kill_a_new_worker_and_a_server_restart() {
    let mut server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = runtime();
    let js = rt.block_on(context(&server.url(), None));
    let flow = windows_flow(
        dir.path(),
        &server.url(),
        &[
            ("tumbling", "kind = \"tumbling\"\nsize_ms = 1000"),
            (
                "sliding",
                "kind = \"sliding\"\nsize_ms = 5000\nslide_ms = 1000",
            ),
        ],
    );
    let events = events(100_000, 1_000, 36);
    let tumbling = WindowSpec::tumbling(1_000)
        .unwrap()
        .with_allowed_lateness(LATENESS_MS);
    let sliding = WindowSpec::sliding(5_000, 1_000)
        .unwrap()
        .with_allowed_lateness(LATENESS_MS);
    let (tumbling_results, tumbling_late) = reference(&events, &tumbling);
    let (sliding_results, sliding_late) = reference(&events, &sliding);
    assert!(
        tumbling_late.len() > 300 && sliding_late.len() > 300,
        "late events in the input"
    );
    let total =
        (tumbling_results.len() + tumbling_late.len() + sliding_results.len() + sliding_late.len())
            as u64;
    println!(
        "reference: tumbling {} results {} late; sliding {} results {} late",
        tumbling_results.len(),
        tumbling_late.len(),
        sliding_results.len(),
        sliding_late.len()
    );
    let started = Instant::now();
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&flow, &WORKER_ARGS)).collect();
    let (body, closers) = events.split_at(100_000);
    for (chunk, part) in body.chunks(10_000).enumerate() {
        rt.block_on(publish_events(&js, part));
        match chunk {
            2 => {
                // Killed with work in flight, and started again.
                let killed = workers.remove(0);
                println!("SIGKILL a worker {:?} in", started.elapsed());
                kill(killed);
                workers.push(worker(&flow, &WORKER_ARGS));
            }
            4 => {
                println!("a fourth worker {:?} in", started.elapsed());
                workers.push(worker(&flow, &WORKER_ARGS));
            }
            5 => {
                // While the fourth worker's rebalance may still be under
                // way (partitions being stopped, leases changing hands),
                // and away for longer than the lease TTL: every worker must
                // drop its partitions before any other may take them.
                // The outage must hit work in flight: inputs delivered to
                // partitions and not yet acknowledged.
                let in_flight: i64 = rt.block_on(async {
                    let mut in_flight = 0;
                    for partition in 0..PARTITIONS {
                        let name = format!("windows-{partition}");
                        if let Some(info) = try_consumer_info(&js, "EV", &name).await {
                            in_flight += info.num_ack_pending as i64;
                        }
                    }
                    in_flight
                });
                println!(
                    "server restart {:?} in, {in_flight} inputs in flight",
                    started.elapsed()
                );
                assert!(in_flight > 0, "the outage hits no input in flight");
                server.stop_gracefully();
                std::thread::sleep(Duration::from_secs(5));
                server.launch();
            }
            _ => {}
        }
    }
    rt.block_on(publish_events(&js, closers));
    rt.block_on(until_stored(&js, total, Duration::from_secs(300)));
    println!("all {total} stored {:?} in", started.elapsed());
    // Copies of results published again after the kill come within the ack
    // wait: give them the chance to show up as extra messages.
    std::thread::sleep(Duration::from_secs(4));
    let stored = rt.block_on(stored_outputs(&js));
    assert_node(&stored, "tumbling", &tumbling_results, &tumbling_late);
    assert_node(&stored, "sliding", &sliding_results, &sliding_late);
    assert_eq!(
        rt.block_on(count(&js, "WIN")),
        total,
        "nothing stored twice"
    );
    let mut watermarks = 0;
    for worker in workers {
        let stdout = stop(worker);
        assert!(
            stdout.contains("partition "),
            "a worker served nothing:\n{stdout}"
        );
        watermarks += stdout
            .lines()
            .filter(|line| line.starts_with("windowed tumbling: ") && line.ends_with(" ms"))
            .count();
    }
    assert!(
        watermarks > 0,
        "the workers' reports show their partitions' watermarks"
    );
}

#[test]
fn session_windows_in_one_worker_equal_sessions_cut_from_each_keys_times() {
    let mut server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = runtime();
    let js = rt.block_on(context(&server.url(), None));
    let gap = 400;
    let flow = windows_flow(
        dir.path(),
        &server.url(),
        &[
            ("sessions", &format!("kind = \"session\"\ngap_ms = {gap}")),
            ("tumbling", "kind = \"tumbling\"\nsize_ms = 1000"),
        ],
    );
    let events = events(10_000, 100, 7);
    let tumbling = WindowSpec::tumbling(1_000)
        .unwrap()
        .with_allowed_lateness(LATENESS_MS);
    let (tumbling_results, late) = reference(&events, &tumbling);
    let sessions = session_reference(&events, gap, &late);
    let total = (sessions.len() + tumbling_results.len() + 2 * late.len()) as u64;
    let one = worker(&flow, &WORKER_ARGS);
    let (first, rest) = events.split_at(5_000);
    rt.block_on(publish_events(&js, first));
    // The server restarted under the worker: its windows come back from the
    // bucket, its inputs in order.
    server.restart_gracefully();
    rt.block_on(publish_events(&js, rest));
    rt.block_on(until_stored(&js, total, Duration::from_secs(120)));
    std::thread::sleep(Duration::from_millis(500));
    let stored = rt.block_on(stored_outputs(&js));
    assert_node(&stored, "sessions", &sessions, &late);
    assert_node(&stored, "tumbling", &tumbling_results, &late);
    assert_eq!(
        rt.block_on(count(&js, "WIN")),
        total,
        "nothing stored twice"
    );
    stop(one);
}

#[test]
fn a_windowed_flow_from_nats_without_a_state_store_is_refused() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let flow = windows_flow(
        dir.path(),
        &server.url(),
        &[("tumbling", "kind = \"tumbling\"\nsize_ms = 1000")],
    );
    let output = finish(
        worker(&flow, &["--partition", "0"]),
        Duration::from_secs(60),
    );
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("--state-bucket") && stderr.contains("windowed"),
        "{stderr}"
    );
}

fn torvyn(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(TORVYN)
        .args(args)
        .output()
        .expect("torvyn runs");
    let (stdout, stderr) = text(&output);
    (output.status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn invoke_folds_merges_and_emits_through_the_contract() {
    let counts = "bundled:window-count";
    let (code, out, err) = torvyn(&["invoke", counts, "fold(none, \"5 apples\")"]);
    assert_eq!(
        (code, out.trim()),
        (0, "ok([1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])"),
        "{err}"
    );
    let folded = "some([1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])";
    let (code, out, _) = torvyn(&["invoke", counts, &format!("fold({folded}, \"7\")")]);
    assert_eq!(
        (code, out.trim()),
        (0, "ok([2, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0])")
    );
    let (code, out, _) = torvyn(&[
        "invoke",
        counts,
        "merge([2, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0])",
    ]);
    assert_eq!(
        (code, out.trim()),
        (0, "ok([3, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0])")
    );
    let (code, out, _) = torvyn(&[
        "invoke",
        counts,
        "emit({key: \"k7\", start-ms: 1000, end-ms: 2000}, [3, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0])",
    ]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            "ok({content-type: \"text/plain\", payload: \"k7 1000 3 42\"})"
        )
    );
    let (code, _, err) = torvyn(&[
        "invoke",
        counts,
        "emit({key: \"k\", start-ms: 5, end-ms: 5}, [])",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("window 5-5 is empty"), "{err}");
}

#[test]
fn check_validates_window_settings_by_name_and_line() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/flows/nats-windows.toml"
    );
    let (code, out, err) = torvyn(&["check", example]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("windowed-aggregator typed"), "{out}");
    let text = std::fs::read_to_string(example).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (from, to, named) in [
        (
            "slide_ms = 1000",
            "slide_ms = 7000",
            "`slide_ms` (7000) is longer than `size_ms` (5000)",
        ),
        (
            "kind = \"tumbling\"",
            "kind = \"hopping\"",
            "window kind `hopping`",
        ),
        (
            "size_ms = 1000\n",
            "size_ms = 1000\ngap_ms = 10\n",
            "`gap_ms`",
        ),
        (
            "max_out_of_order_ms = 2000\n\n[flow.main.nodes.sliding]",
            "idle_ms = 0\n\n[flow.main.nodes.sliding]",
            "`idle_ms`",
        ),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, text.replacen(from, to, 1)).unwrap();
        let (code, out, err) = torvyn(&["check", bad.to_str().unwrap()]);
        assert_eq!(code, 1, "{to}: {out}{err}");
        assert!(out.contains(named) && out.contains("line "), "{to}: {out}");
    }
}
