//! `torvyn run --state-dir`: a stage's state (torvyn:state) carried across
//! a stop of a service, on one machine. Stdin in, stdout out: which inputs
//! reach which run is the test's to say.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Running};

const TORVYN: &str = env!("CARGO_BIN_EXE_torvyn");

/// stdin → `count` (the component at `counter`) → stdout.
fn flow_file(dir: &Path, counter: &str) -> std::path::PathBuf {
    let path = dir.join("Torvyn.toml");
    let text = common::stdio_flow("count", counter, "torvyn:aggregation/aggregator");
    std::fs::write(&path, text).unwrap();
    path
}

/// `torvyn run FLOW ARGS...` fed `lines` on stdin, stdin then closed.
fn run_to_end(flow: &Path, args: &[&str], lines: &str) -> Output {
    let mut child = Command::new(TORVYN)
        .arg("run")
        .arg(flow)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let mut running = Running(Some(child));
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.0.as_mut().unwrap().try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running after 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    running.0.take().unwrap().wait_with_output().unwrap()
}

/// The node's `torvyn_node_elements_in_total` from the metrics endpoint.
fn elements_in(address: &str, node: &str) -> Option<u64> {
    let response = common::metrics_page(address)?;
    let wanted = format!("node=\"{node}\"");
    response
        .lines()
        .find(|l| l.starts_with("torvyn_node_elements_in_total{") && l.contains(&wanted))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn lines(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("line {i}\n")).collect()
}

#[test]
fn a_stopped_counter_goes_on_from_its_saved_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    let flow = flow_file(dir.path(), "bundled:counter");

    // One uninterrupted run: the reference.
    let whole = run_to_end(&flow, &[], &lines(0, 8));
    assert!(whole.status.success());
    assert_eq!(String::from_utf8_lossy(&whole.stdout), "8\n");

    // The same inputs over two runs, the first stopped by SIGTERM once it
    // has counted its 5.
    let address = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(TORVYN)
        .arg("run")
        .arg(&flow)
        .args(["--state-dir", state_arg, "--metrics", &address])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut running = Running(Some(child));
    input.write_all(lines(0, 5).as_bytes()).unwrap();
    input.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while elements_in(&address, "count") != Some(5) {
        assert!(Instant::now() < deadline, "the counter never took its 5");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = running.0.as_ref().unwrap().id() as libc::pid_t;
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    // Bounded: stdin stays open, so a process that waited for its stdin
    // reader on the way out would never end.
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.0.as_mut().unwrap().try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "still running 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = running.0.take().unwrap().wait_with_output().unwrap();
    drop(input);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        "",
        "nothing emitted"
    );
    assert!(
        stderr.contains("state: 0 restored at start, 1 saved at stop"),
        "{stderr}"
    );
    let saved = state.join("main.count.state");
    assert_eq!(std::fs::read(&saved).unwrap(), 5u64.to_le_bytes());

    // A version that cannot take the state is refused, naming the key, and
    // the state stays for the one that can.
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let refused = run_to_end(
        &flow_file(&plain, "bundled:aggregator"),
        &["--state-dir", state_arg],
        "",
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("a state is stored under `main.count`")
            && stderr.contains("does not export torvyn:state/snapshot"),
        "{stderr}"
    );
    assert!(saved.exists());

    let second = run_to_end(&flow, &["--state-dir", state_arg], &lines(5, 8));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&whole.stdout),
        "the two runs count what the one did"
    );
    assert!(
        stderr.contains("state: 1 restored at start, 0 saved at stop"),
        "{stderr}"
    );
    assert!(!saved.exists(), "emitted at the end: nothing left to carry");
}
