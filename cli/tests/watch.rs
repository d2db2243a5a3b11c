//! `torvyn run --watch`: a component file replaced under a running flow
//! changes its outputs from the next element on; SIGHUP checks at once and
//! upgrades nothing that did not change; a broken new file leaves the
//! running version serving.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{free_port, Running};

const TORVYN: &str = env!("CARGO_BIN_EXE_torvyn");

/// Each line of `reader`, as it comes, on a channel.
fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

/// Waits (up to 30 s) for a line `wanted` accepts; every line seen is kept
/// in `seen` for the failure message.
fn wait_for(
    lines: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                seen.push(line.clone());
                if wanted(&line) {
                    return line;
                }
            }
            Err(_) => panic!("no such line within 30 s; seen: {seen:#?}"),
        }
    }
}

/// The Prometheus exposition at `address`.
fn scrape(address: &str) -> String {
    common::metrics_page(address).expect("metrics listening")
}

/// Replaces `path` as an editor or a build does: a new file renamed over it.
fn replace(path: &std::path::Path, bytes: &[u8]) {
    let next = path.with_extension("next");
    std::fs::write(&next, bytes).unwrap();
    std::fs::rename(&next, path).unwrap();
}

#[test]
fn a_replaced_component_file_changes_the_outputs_of_a_running_flow() {
    let dir = tempfile::tempdir().unwrap();
    let step = dir.path().join("step.wasm");
    std::fs::write(&step, torvyn_fixtures::uppercase_processor()).unwrap();
    let flow = dir.path().join("Torvyn.toml");
    let text = common::stdio_flow("step", "step.wasm", "torvyn:streaming/processor");
    std::fs::write(&flow, text).unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(TORVYN)
        .args(["run", flow.to_str().unwrap(), "--watch", "--batch", "1"])
        .args(["--metrics", &metrics])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    let pid = child.id() as libc::pid_t;
    let mut running = Running(Some(child));
    let (mut seen_out, mut seen_err) = (Vec::new(), Vec::new());
    let mut send = |line: &str| {
        writeln!(input, "{line}").unwrap();
        input.flush().unwrap();
    };

    send("one");
    assert_eq!(wait_for(&out, &mut seen_out, |_| true), "ONE");

    // SIGHUP: checked at once; nothing changed, so nothing is upgraded (and
    // the process is not ended by the signal).
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    wait_for(&err, &mut seen_err, |l| l.contains("watch: SIGHUP"));
    send("two");
    assert_eq!(wait_for(&out, &mut seen_out, |_| true), "TWO");

    // A new version: from the next element on, its outputs.
    replace(&step, &torvyn_fixtures::passthrough_processor());
    wait_for(&err, &mut seen_err, |l| {
        l.contains("watch: node `step`: new version of `step`") && l.contains("queued for 1 flow")
    });
    send("three");
    assert_eq!(wait_for(&out, &mut seen_out, |_| true), "three");

    // A broken one: named, and the running version keeps serving.
    replace(&step, b"not wasm");
    let refused = wait_for(&err, &mut seen_err, |l| {
        l.contains("watch: component `step`")
    });
    assert!(
        refused.contains("not a WebAssembly file") && refused.contains("keeps serving"),
        "{refused}"
    );
    send("four");
    assert_eq!(wait_for(&out, &mut seen_out, |_| true), "four");
    // The metrics count the upgrade that took over, not the file refused
    // before it reached the flow.
    let scraped = scrape(&metrics);
    for line in [
        r#"torvyn_node_upgrades_total{flow="main",node="step",role="processor"} 1"#,
        r#"torvyn_node_upgrades_refused_total{flow="main",node="step",role="processor"} 0"#,
    ] {
        assert!(
            scraped.lines().any(|l| l == line),
            "no `{line}` in:\n{scraped}"
        );
    }

    drop(input);
    let status = running.0.take().unwrap().wait().unwrap();
    let rest: Vec<String> = err.iter().collect();
    seen_err.extend(rest);
    let stderr = seen_err.join("\n");
    assert!(status.success(), "{stderr}");
    assert!(out.iter().next().is_none(), "{seen_out:?}");
    assert!(stderr.contains("elements: 4 in, 4 delivered"), "{stderr}");
    assert!(
        stderr.contains("upgrades: 1 applied, 0 refused by the flow, 1 not handed over"),
        "{stderr}"
    );
    assert!(
        stderr.contains("upgrade: node `step` after 2 inputs; carried: nothing"),
        "{stderr}"
    );
}
