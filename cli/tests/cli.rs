//! The `torvyn` binary end to end: output and exit codes.

use std::process::Command;

fn torvyn(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_torvyn"))
        .args(args)
        .output()
        .expect("run torvyn");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn inspect_shows_typed_and_dynamic_paths_with_reasons() {
    let (code, out, _) = torvyn(&["inspect", "bundled:uppercase"]);
    assert_eq!(code, 0);
    assert!(out.contains("torvyn:streaming/processor@0.1.0"), "{out}");
    assert!(out.contains("processor  typed"), "{out}");
    assert!(
        out.contains("world: matches torvyn:streaming/transform@0.1.0"),
        "{out}"
    );

    let (code, out, _) = torvyn(&["inspect", "bundled:acme-uppercase"]);
    assert_eq!(code, 0);
    assert!(out.contains("acme:etl/processor@2.0.0"), "{out}");
    assert!(out.contains("dynamic (not the contract's package"), "{out}");
    assert!(out.contains("served as torvyn:streaming/types"), "{out}");
}

#[test]
fn inspect_reads_component_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sink.wasm");
    std::fs::write(&path, torvyn_fixtures::recording_sink()).unwrap();
    let (code, out, _) = torvyn(&["inspect", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("component sink "), "{out}");
    assert!(out.contains("torvyn:streaming/sink@0.1.0"), "{out}");
}

#[test]
fn run_prints_a_summary() {
    let (code, out, err) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--processor",
        "bundled:uppercase",
        "--processor",
        "bundled:acme-uppercase",
        "--sink",
        "bundled:recording-sink",
        "--config",
        "500",
        "--quiet",
        "--fuel",
        "10000000",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("elements: 500 delivered, 0 dropped; bytes: "),
        "{out}"
    );
    assert!(out.contains("errors: 0"), "{out}");
    assert!(!out.contains("fuel: 0;"), "{out}");
}

#[test]
fn run_stops_at_the_count() {
    let (code, out, _) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--sink",
        "bundled:recording-sink",
        "--config",
        "1000",
        "--count",
        "42",
        "--quiet",
    ]);
    assert_eq!(code, 0);
    assert!(out.starts_with("elements: 42 delivered"), "{out}");
}

#[test]
fn invoke_calls_by_name_with_wave() {
    let (code, out, _) = torvyn(&["invoke", "bundled:calculator", "add(40, 2)"]);
    assert_eq!((code, out.trim()), (0, "42"));
    let (code, out, _) = torvyn(&["invoke", "bundled:calculator", "shout(\"hi\")"]);
    assert_eq!((code, out.trim()), (0, "\"HI\""));
}

#[test]
fn failures_are_one_line_with_documented_exit_codes() {
    let (code, _, err) = torvyn(&["invoke", "bundled:calculator", "nope()"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "error: component `calculator`: cannot call `nope()`: no exported function `nope`"
    );
    let (code, _, err) = torvyn(&["inspect", "/no/such/file.wasm"]);
    assert_eq!(code, 3);
    assert!(
        err.starts_with("error: cannot read /no/such/file.wasm\n  caused by: "),
        "{err}"
    );
    let (code, _, _) = torvyn(&["run", "--source", "x"]);
    assert_eq!(code, 2, "usage errors exit with 2");
    let (code, _, err) = torvyn(&["inspect", "bundled:nothing"]);
    assert_eq!(code, 3);
    assert!(err.contains("no bundled component `nothing`"), "{err}");
}

/// A component built by a real toolchain (`guests/build.sh`).
fn real_guest(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guests/out")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the guests first with guests/build.sh",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

#[test]
fn the_commands_work_on_real_toolchain_components() {
    let (code, out, _) = torvyn(&["inspect", &real_guest("rust-processor")]);
    assert_eq!(code, 0);
    assert!(out.contains("torvyn:streaming/processor@0.1.0"), "{out}");
    assert!(out.contains("processor  typed"), "{out}");

    let (code, out, err) = torvyn(&[
        "run",
        "--source",
        &real_guest("c-source"),
        "--processor",
        &real_guest("rust-processor"),
        "--sink",
        &real_guest("c-sink"),
        "--config",
        "250",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("elements: 250 delivered, 0 dropped"),
        "{out}"
    );

    // A C function called by name; its result in WAVE.
    let (code, out, err) = torvyn(&["invoke", &real_guest("c-sink"), "complete()"]);
    assert_eq!((code, out.trim()), (0, "ok"), "{err}");
}

#[test]
fn run_with_flows_runs_copies_concurrently_and_reports_each() {
    let (code, out, err) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--processor",
        "bundled:uppercase",
        "--sink",
        "bundled:recording-sink",
        "--config",
        "300",
        "--flows",
        "8",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 9, "{out}");
    let bytes: usize = (0..300).map(|n| format!("ELEMENT {n}").len()).sum();
    for (flow, line) in lines[..8].iter().enumerate() {
        assert!(
            line.starts_with(&format!(
                "flow {flow}: elements: 300 delivered, 0 dropped; bytes: {bytes};"
            )),
            "{line}"
        );
    }
    assert!(
        lines[8].starts_with("total: 8 flows, 2400 elements delivered;"),
        "{}",
        lines[8]
    );
    let (code, _, err) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--sink",
        "bundled:recording-sink",
        "--flows",
        "0",
    ]);
    assert_eq!(code, 2, "{err}");
}
