//! The `torvyn` binary end to end: output and exit codes.

use std::process::Command;

fn torvyn(args: &[&str]) -> (i32, String, String) {
    torvyn_with_env(args, &[])
}

/// Runs `torvyn` with extra variables in its own (the host process's) environment.
fn torvyn_with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_torvyn"))
        .args(args)
        .envs(env.iter().copied())
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
    let started = std::time::Instant::now();
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
    // `elements: 500 delivered, 0 dropped; bytes: B; R elements/s; fuel: F; errors: 0`
    let summary = out.lines().next().unwrap();
    let fields: Vec<&str> = summary.split([';', ',']).map(str::trim).collect();
    assert_eq!(
        &fields[..2],
        ["elements: 500 delivered", "0 dropped"],
        "{summary}"
    );
    let bytes: usize = (0..500).map(|n| format!("ELEMENT {n}").len()).sum();
    assert_eq!(fields[2], format!("bytes: {bytes}"), "{summary}");
    let rate: f64 = fields[3].trim_end_matches(" elements/s").parse().unwrap();
    // The rate is the 500 elements over the run's own time, which the
    // process's lifetime contains: a rate in the wrong unit (per ms, per
    // µs) or over the wrong count lands outside.
    let process = started.elapsed().as_secs_f64();
    assert!(
        rate.is_finite() && 500.0 / rate <= process,
        "{rate} elements/s would take {} s, the process ran {process} s: {summary}",
        500.0 / rate
    );
    let fuel: u64 = fields[4].trim_start_matches("fuel: ").parse().unwrap();
    // Every stage of every element used fuel: far more than one per element.
    assert!(fuel > 500 * 4 * 100, "{summary}");
    assert_eq!(fields[5], "errors: 0");
    // The per-node report: each stage saw the 500 elements.
    let nodes: Vec<Vec<&str>> = out
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().take(4).collect())
        .collect();
    assert_eq!(
        nodes,
        [
            ["source", "source", "500", "500"],
            ["processor-1", "processor", "500", "500"],
            ["processor-2", "processor", "500", "500"],
            ["sink", "sink", "500", "500"],
        ]
    );
    // And from above: the run took at least its calls' time. At least half
    // of each stage's 500 calls took its median (p50, printed rounded
    // down), so the run took at least 250 × the sum of the medians: a rate
    // in the wrong unit or over the wrong count lands above it.
    let p50_seconds: f64 = out
        .lines()
        .skip(2)
        .map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            // `… fuel p50 p99`, each time `N ns`, `N µs`, `N ms` or `-`.
            let p50 = &columns[columns.len() - 4..columns.len() - 2];
            let value: f64 = p50[0].parse().unwrap_or(0.0);
            value
                * match p50[1] {
                    "ns" => 1e-9,
                    "µs" => 1e-6,
                    "ms" => 1e-3,
                    unit => panic!("unit `{unit}` in {line}"),
                }
        })
        .sum();
    assert!(p50_seconds > 0.0, "no call times: {out}");
    assert!(
        500.0 / rate >= 250.0 * p50_seconds,
        "{rate} elements/s means {} s, but the calls took at least {} s: {out}",
        500.0 / rate,
        250.0 * p50_seconds
    );
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
fn bundled_lists_every_component_and_deadline_ms_ends_a_slow_call() {
    let (code, out, _) = torvyn(&["bundled"]);
    assert_eq!(code, 0);
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for name in [
        "bundled:counting-source",
        "bundled:uppercase",
        "bundled:filter",
        "bundled:router",
        "bundled:aggregator",
        "bundled:wasi-printer",
    ] {
        assert!(names.contains(&name), "{name} missing from: {out}");
    }
    // Every listed component loads.
    for name in &names {
        let (code, _, err) = torvyn(&["inspect", name]);
        assert_eq!(code, 0, "{name}: {err}");
    }
    // A 100 ms deadline ends a WASI sleeper's 10 s nap at once.
    let started = std::time::Instant::now();
    let (code, _, err) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--processor",
        "bundled:sleeper",
        "--sink",
        "bundled:recording-sink",
        "--config",
        "3",
        "--deadline-ms",
        "100",
        "--quiet",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("component `processor-1`, function `process`: deadline exceeded"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
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
    let (code, _, err) = torvyn(&["run", "--source", "x"]);
    assert_eq!(code, 2, "usage errors exit with 2");
    assert!(err.contains("--sink"), "the missing option is named: {err}");
    let (code, _, err) = torvyn(&["inspect", "bundled:nothing"]);
    assert_eq!(code, 3);
    assert!(err.contains("no bundled component `nothing`"), "{err}");

    // A file that is no WebAssembly: one line naming the path given and
    // what the file is not (not the parser's byte-per-line dump).
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, [0xab, 0xca, 0xbb, 0x86, 0x01, 0x02]).unwrap();
    let junk = junk.display().to_string();
    let (code, _, err) = torvyn(&["run", "--source", &junk, "--sink", "bundled:recording-sink"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!(
            "error: {junk}: cannot compile component `source`: not a WebAssembly file: \
             it starts with ab ca bb 86, WebAssembly with 00 61 73 6d (`\\0asm`)\n"
        )
    );
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"").unwrap();
    let (code, _, err) = torvyn(&["inspect", &empty.display().to_string()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!(
            "error: {}: cannot compile component `empty`: not a WebAssembly file: it is empty\n",
            empty.display()
        )
    );
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
    assert!(
        err.contains("--flows"),
        "the usage error names the option: {err}"
    );

    // `--print` with copies: each copy's elements, named by its index.
    let (code, out, err) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--sink",
        "bundled:recording-sink",
        "--config",
        "2",
        "--flows",
        "3",
        "--print",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let printed: Vec<&str> = out
        .lines()
        .take_while(|l| !l.starts_with("flow 0:"))
        .collect();
    let expected: Vec<String> = (0..3)
        .flat_map(|copy| {
            (0..2).map(move |n| format!("flow {copy} [sink] #{n:<5} text/plain   \"element {n}\""))
        })
        .collect();
    assert_eq!(printed, expected, "{out}");
}

fn example_flow() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/flows/token-stream.toml")
        .display()
        .to_string()
}

#[test]
fn run_takes_a_flow_file_prints_elements_and_reports_every_node() {
    let (code, out, err) = torvyn(&["run", &example_flow(), "--print", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..4],
        &[
            r#"[sink] #0     application/octet-stream "element 1element 2element 4element 5""#,
            r#"[sink] #1     application/octet-stream "element 7element 8element 10element 11""#,
            r#"[sink] #2     application/octet-stream "element 13element 14element 16element 17""#,
            r#"[sink] #3     application/octet-stream "element 19element 20""#,
        ]
    );
    assert!(
        lines[4].starts_with("elements: 4 delivered, 8 dropped; bytes: 134;"),
        "{}",
        lines[4]
    );
    // The per-node report, upstream first: name, role, in, out, dropped, errors.
    let rows: Vec<Vec<&str>> = lines[6..]
        .iter()
        .map(|l| l.split_whitespace().take(6).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["source", "source", "22", "22", "0", "0"],
            ["filter", "filter", "22", "14", "8", "0"],
            ["aggregator", "aggregator", "14", "4", "0", "0"],
            ["sink", "sink", "4", "4", "0", "0"],
        ]
    );
}

#[test]
fn the_linear_shortcut_takes_a_config_per_stage() {
    // source: 9 elements; dropper: every 4th dropped; sink: default.
    let (code, out, err) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--processor",
        "bundled:dropper",
        "--sink",
        "bundled:recording-sink",
        "--config",
        "9",
        "--config",
        "4",
        "--config",
        "100",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("elements: 6 delivered, 3 dropped;"),
        "{out}"
    );
    let (code, _, err) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--sink",
        "bundled:recording-sink",
        "--config",
        "9",
        "--config",
        "4",
        "--config",
        "100",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("3 --config values for 2 stages"), "{err}");
    let (code, _, err) = torvyn(&[
        "run",
        &example_flow(),
        "--source",
        "bundled:counting-source",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        "error: give either a flow file or --source/--processor/--sink, not both\n"
    );
}

#[test]
fn wasi_grants_reach_the_guest_only_when_given() {
    let printer = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--source",
            "bundled:counting-source",
            "--processor",
            "bundled:wasi-printer",
            "--sink",
            "bundled:recording-sink",
            "--config",
            "3",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        torvyn(&args)
    };
    let (code, out, err) = printer(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("element 0"),
        "stdout not granted, yet printed: {out}"
    );
    let (code, out, err) = printer(&["--inherit-stdio"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("element 0\nelement 1\nelement 2\n"),
        "{out}"
    );

    let (code, _, err) = printer(&["--env", "NO_EQUALS_SIGN"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected KEY=VALUE"), "{err}");
    let (code, _, err) = printer(&["--dir", "/tmp"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected HOST::GUEST"), "{err}");
    let (code, _, err) = printer(&["--dir", "/no/such/dir::/data:ro"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/no/such/dir is not a directory"), "{err}");
}

#[test]
fn log_trace_shows_every_node_call() {
    let (code, _, err) = torvyn(&["run", &example_flow(), "--quiet", "--log", "trace"]);
    assert_eq!(code, 0, "{err}");
    let calls = err
        .lines()
        .filter(|l| l.contains("node{") && l.contains("close"))
        .count();
    // 22 filter calls, 14 ingests, 4 pushes (pulls are timed, not spanned).
    assert_eq!(calls, 22 + 14 + 4, "{err}");
    // Each call ran inside its span: a span never entered while its guest
    // ran (created, then closed around an un-instrumented call) closes with
    // no busy time.
    let never_entered: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("node{") && l.contains("close") && l.contains("time.busy=0.00ns"))
        .collect();
    assert!(never_entered.is_empty(), "{never_entered:#?}");
    // Each span names the flow, the node, its role and the node's own
    // numbering of the element: the filter's 22 in order, then the others.
    let fields: Vec<String> = err
        .lines()
        .filter(|l| l.contains("node{") && l.contains("close"))
        .map(|l| {
            let start = l.find("node{").unwrap();
            let end = l[start..].find('}').unwrap() + start + 1;
            l[start..end].to_string()
        })
        .collect();
    for (node, role, count) in [
        ("filter", "filter", 22),
        ("aggregator", "aggregator", 14),
        ("sink", "sink", 4),
    ] {
        let seen: Vec<&String> = fields
            .iter()
            .filter(|f| f.contains(&format!("node={node} ")))
            .collect();
        let expected: Vec<String> = (0..count)
            .map(|n| format!("node{{flow=main node={node} role=\"{role}\" sequence={n}}}"))
            .collect();
        assert_eq!(seen, expected.iter().collect::<Vec<_>>(), "{node}");
    }
}

/// source → uppercase → sink of 5 elements with fuel (300) too small for
/// the processor's first call, and `extra` arguments.
fn starved(extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "run",
        "--source",
        "bundled:counting-source",
        "--processor",
        "bundled:uppercase",
        "--sink",
        "bundled:recording-sink",
        "--config",
        "5",
        "--fuel",
        "300",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    torvyn(&args)
}

/// `--log warn`: a call that poisons its instance is one `warn` event
/// naming the component, the function and the cause, before the error.
#[test]
fn log_warn_shows_the_poisoning_event() {
    let (code, _, err) = starved(&["--log", "warn"]);
    assert_eq!(code, 1, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].ends_with(
            " WARN torvyn_engine::instance::call: instance poisoned component=\"processor-1\" \
             function=\"process\" cause=component `processor-1`, function `process`: fuel exhausted"
        ),
        "{err}"
    );
    assert_eq!(
        lines[1],
        "error: component `processor-1`, function `process`: fuel exhausted"
    );
}

#[test]
fn a_bad_flow_file_is_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flow.toml");
    let text = std::fs::read_to_string(example_flow()).unwrap().replace(
        "interface = \"torvyn:filtering/filter\"",
        "interfac = \"torvyn:filtering/filter\"",
    );
    std::fs::write(&path, text).unwrap();
    let (code, _, err) = torvyn(&["run", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    // One line: the flow, the file, the node, the key and its line, then
    // what is expected there (no `caused by:` lines: the parser's error is
    // the message).
    assert_eq!(err.lines().count(), 1, "{err}");
    let line = text_line_of(&std::fs::read_to_string(&path).unwrap(), "interfac =");
    assert!(
        err.starts_with(&format!(
            "error: flow `main`: {}: node `filter`: unknown field `interfac` (line {line}), \
             expected one of `component`, `interface`,",
            path.display()
        )),
        "{err}"
    );
}

/// The 1-based number of the first line of `text` starting with `start`.
fn text_line_of(text: &str, start: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(start))
        .expect("the line is there")
        + 1
}

#[test]
fn the_host_environment_never_leaks_into_a_wasi_guest() {
    let processor = real_guest("rust-processor-wasip2");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--source",
            "bundled:counting-source",
            "--processor",
            processor.as_str(),
            "--sink",
            "bundled:recording-sink",
            "--config",
            "2",
            "--print",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        torvyn_with_env(&args, &[("SUFFIX", "-from-host-process")])
    };
    // The guest appends $SUFFIX when it sees one: the host's stays out...
    let (code, out, err) = run(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(r#""ELEMENT 0""#) && !out.contains("from-host"),
        "{out}"
    );
    // ...and a granted one comes in.
    let (code, out, err) = run(&["--env", "SUFFIX=-granted"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""ELEMENT 0-granted""#), "{out}");
}

/// Runs `torvyn` under a pseudo-terminal (`script`, from util-linux),
/// where a progress bar would show, and returns what the terminal got.
fn torvyn_on_a_terminal(args: &[&str]) -> String {
    let command = std::iter::once(env!("CARGO_BIN_EXE_torvyn").to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .output()
        .expect("`script` (util-linux) runs the tool under a terminal");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn quiet_hides_the_progress_bar() {
    let args = |quiet: bool| {
        let mut args = vec![
            "run",
            "--source",
            "bundled:counting-source",
            "--sink",
            "bundled:recording-sink",
            "--config",
            "20000",
            "--count",
            "20000",
        ];
        if quiet {
            args.push("--quiet");
        }
        args
    };
    let shown = torvyn_on_a_terminal(&args(false));
    // The bar's template: "... {pos} elements ({per_sec})".
    assert!(
        shown.contains(" elements ("),
        "no progress bar on a terminal: {shown}"
    );
    let quiet = torvyn_on_a_terminal(&args(true));
    assert!(
        !quiet.contains(" elements ("),
        "--quiet still showed a bar: {quiet}"
    );
    assert!(quiet.contains("elements: 20000 delivered"), "{quiet}");
}

/// `--flow NAME` picks one flow of a file with several (in `run` and
/// `check`); without it `run` names the choices; an unknown name is named.
#[test]
fn flow_name_chooses_among_a_file_s_flows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.toml");
    let text = std::fs::read_to_string(example_flow()).unwrap()
        + "\n[flow.short.nodes.numbers]\ncomponent = \"token-source\"\n\
           interface = \"torvyn:streaming/source\"\nconfig = \"3\"\n\
           [flow.short.nodes.out]\ncomponent = \"output-sink\"\n\
           interface = \"torvyn:streaming/sink\"\n\
           [[flow.short.edges]]\nfrom = { node = \"numbers\" }\nto = { node = \"out\" }\n";
    std::fs::write(&path, text).unwrap();
    let file = path.to_str().unwrap();
    let (code, out, err) = torvyn(&["run", file, "--flow", "short", "--print", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let printed: Vec<&str> = out.lines().take(3).collect();
    assert_eq!(
        printed,
        [
            "[out] #0     text/plain   \"element 0\"",
            "[out] #1     text/plain   \"element 1\"",
            "[out] #2     text/plain   \"element 2\"",
        ]
    );
    assert!(
        out.lines()
            .nth(3)
            .unwrap()
            .starts_with("elements: 3 delivered, 0 dropped;"),
        "{out}"
    );
    let (code, out, err) = torvyn(&["run", file, "--flow", "main", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("elements: 4 delivered, 8 dropped;"),
        "{out}"
    );
    let (code, _, err) = torvyn(&["run", file, "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!(
            "error: flow `{file}`: the file has several flows (main, short); choose one with --flow\n"
        )
    );
    let (code, _, err) = torvyn(&["run", file, "--flow", "shrot"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no flow `shrot` (flows: main, short)"),
        "{err}"
    );
    let (code, out, err) = torvyn(&["check", file, "--flow", "short"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("ok: 2 nodes checked\n"), "{out}");
}

/// `--fuel` too small for one call: exit 1, the error names the stage and
/// its function, and the per-node report of what ran comes first.
#[test]
fn fuel_exhaustion_exits_1_with_the_node_report() {
    let (code, out, err) = starved(&[]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        err,
        "error: component `processor-1`, function `process`: fuel exhausted\n"
    );
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().take(6).collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["source", "source", "1", "1", "0", "0"],
            vec!["processor-1", "processor", "1", "0", "0", "1"],
            vec!["sink", "sink", "0", "0", "0", "0"],
        ],
        "{out}"
    );
}

/// `--count N` with two sources into one sink: N elements exactly, taken
/// from the sources in turn, a source found exhausted costing nothing.
#[test]
fn count_is_exact_over_two_sources() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two-sources.toml");
    std::fs::write(
        &path,
        r#"[[component]]
name = "numbers"
path = "bundled:counting-source"
[[component]]
name = "sink"
path = "bundled:recording-sink"
[flow.main.nodes.short]
component = "numbers"
interface = "torvyn:streaming/source"
config = "2"
[flow.main.nodes.long]
component = "numbers"
interface = "torvyn:streaming/source"
config = "100"
[flow.main.nodes.out]
component = "sink"
interface = "torvyn:streaming/sink"
[[flow.main.edges]]
from = { node = "short" }
to = { node = "out" }
[[flow.main.edges]]
from = { node = "long" }
to = { node = "out" }
"#,
    )
    .unwrap();
    let (code, out, err) = torvyn(&[
        "run",
        path.to_str().unwrap(),
        "--count",
        "6",
        "--print",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let printed: Vec<&str> = out.lines().take_while(|l| l.starts_with('[')).collect();
    let expected: Vec<String> = [
        "element 0",
        "element 0",
        "element 1",
        "element 1",
        "element 2",
        "element 3",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| format!("[out] #{i:<5} text/plain   \"{p}\""))
    .collect();
    assert_eq!(printed, expected);
    assert!(out.contains("elements: 6 delivered, 0 dropped;"), "{out}");
}

/// `--dir HOST::GUEST[:ro]` and `--env` as the guest sees them (through
/// `invoke` of the WASI probe): nothing by default; a read-only directory
/// refuses a `mkdir` (WASI's `not-permitted`, case 31) and leaves the host
/// folder as it was; a writable one takes it.
#[test]
fn granted_dirs_and_env_reach_the_guest_read_only_or_not() {
    let read_only = tempfile::tempdir().unwrap();
    let writable = tempfile::tempdir().unwrap();
    let probe = |call: &str, extra: &[&str]| {
        let mut args = vec!["invoke", "bundled:wasi-probe", call];
        args.extend_from_slice(extra);
        let (code, out, err) = torvyn(&args);
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    };
    let ro = format!("{}::/data:ro", read_only.path().display());
    let rw = format!("{}::/data", writable.path().display());
    assert_eq!(probe("preopens()", &[]), "[]");
    assert_eq!(probe("preopens()", &["--dir", &ro]), r#"["/data"]"#);
    assert_eq!(probe(r#"mkdir("made")"#, &["--dir", &ro]), "31");
    assert!(!read_only.path().join("made").exists());
    assert_eq!(probe(r#"mkdir("made")"#, &["--dir", &rw]), "-1");
    assert!(writable.path().join("made").is_dir());
    assert_eq!(probe("env()", &[]), "[]");
    assert_eq!(probe("env()", &["--env", "A=1"]), r#"[("A", "1")]"#);
}

/// A guest's trap is printed with the guest's frames under the error: the
/// function it trapped in, named.
#[test]
fn a_trap_prints_the_guests_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let recursion = dir.path().join("recursion.wasm");
    std::fs::write(&recursion, torvyn_fixtures::faults::unbounded_recursion()).unwrap();
    let (code, _, err) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--processor",
        recursion.to_str().unwrap(),
        "--sink",
        "bundled:recording-sink",
        "--config",
        "3",
        "--quiet",
    ]);
    assert_eq!(code, 1, "{err}");
    let mut lines = err.lines();
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("error: component `processor-1`, function `process`: trap: "),
        "{err}"
    );
    assert!(!first.contains("backtrace"), "{err}");
    let rest: Vec<&str> = lines.collect();
    assert!(
        rest.iter().any(|line| line.contains("wasm backtrace")),
        "{err}"
    );
    assert!(rest.iter().any(|line| line.contains("recurse")), "{err}");
}
