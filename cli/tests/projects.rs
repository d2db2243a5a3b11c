//! Torvyn projects as their authors write them (issue 19): component
//! directories in the runtime's layout, every key of the project file,
//! `torvyn check`, and `--format json`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn torvyn(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_torvyn"))
        .args(args)
        .output()
        .expect("torvyn runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The Torvyn runtime's `examples/token-streaming/Torvyn.toml`, as its
/// authors wrote it: every component path is the component's project
/// directory.
const TOKEN_STREAMING: &str = r#"[torvyn]
name = "token-streaming"
version = "0.1.0"
contract_version = "0.1.0"
description = "AI token streaming pipeline with content filtering"

[[component]]
name = "token-source"
path = "components/token-source"

[[component]]
name = "content-filter"
path = "components/content-filter"

[[component]]
name = "sentence-aggregator"
path = "components/sentence-aggregator"

[[component]]
name = "output-sink"
path = "components/output-sink"

[flow.main]
description = "Tokens -> Filter -> Aggregate -> Output"

[flow.main.nodes.source]
component = "token-source"
interface = "torvyn:streaming/source"

[flow.main.nodes.filter]
component = "content-filter"
interface = "torvyn:filtering/filter"
config = "blocked_word"

[flow.main.nodes.aggregator]
component = "sentence-aggregator"
interface = "torvyn:aggregation/aggregator"

[flow.main.nodes.sink]
component = "output-sink"
interface = "torvyn:streaming/sink"

[[flow.main.edges]]
from = { node = "source", port = "output" }
to = { node = "filter", port = "input" }

[[flow.main.edges]]
from = { node = "filter", port = "output" }
to = { node = "aggregator", port = "input" }

[[flow.main.edges]]
from = { node = "aggregator", port = "output" }
to = { node = "sink", port = "input" }
"#;

/// A component project in the runtime's layout: `components/DIR/Cargo.toml`
/// (package `package`) and, for each `(target, profile)`, the built
/// `target/TARGET/PROFILE/PACKAGE.wasm` (cargo's `_` for `-`).
fn component_project(
    root: &Path,
    dir: &str,
    package: &str,
    builds: &[(&str, &str)],
    bytes: &[u8],
) -> PathBuf {
    let project = root.join("components").join(dir);
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n"
        ),
    )
    .unwrap();
    for (target, profile) in builds {
        let out = project.join("target").join(target).join(profile);
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(
            out.join(format!("{}.wasm", package.replace('-', "_"))),
            bytes,
        )
        .unwrap();
    }
    project
}

/// The token-streaming project with the bundled fixtures built into each
/// component's target folder, in several of the layouts cargo leaves.
fn token_streaming(root: &Path) -> PathBuf {
    component_project(
        root,
        "token-source",
        "token-source",
        &[("wasm32-wasip2", "release")],
        &torvyn_fixtures::counting_source(),
    );
    component_project(
        root,
        "content-filter",
        "content-filter",
        &[("wasm32-wasip1", "release")],
        &torvyn_fixtures::modulo_filter(),
    );
    component_project(
        root,
        "sentence-aggregator",
        "sentence-aggregator",
        &[("wasm32-unknown-unknown", "release")],
        &torvyn_fixtures::concat_aggregator(),
    );
    component_project(
        root,
        "output-sink",
        "output-sink",
        &[("wasm32-wasip2", "debug")],
        &torvyn_fixtures::recording_sink(),
    );
    let file = root.join("Torvyn.toml");
    std::fs::write(&file, TOKEN_STREAMING).unwrap();
    file
}

/// The same flow with every component named by its `.wasm` file: what the
/// directory layout must resolve to.
fn by_files(root: &Path) -> PathBuf {
    let text = TOKEN_STREAMING
        .replace(
            "components/token-source\"",
            "components/token-source/target/wasm32-wasip2/release/token_source.wasm\"",
        )
        .replace(
            "components/content-filter\"",
            "components/content-filter/target/wasm32-wasip1/release/content_filter.wasm\"",
        )
        .replace(
            "components/sentence-aggregator\"",
            "components/sentence-aggregator/target/wasm32-unknown-unknown/release/sentence_aggregator.wasm\"",
        )
        .replace(
            "components/output-sink\"",
            "components/output-sink/target/wasm32-wasip2/debug/output_sink.wasm\"",
        );
    let file = root.join("by-files.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn a_project_in_the_runtime_layout_runs_unmodified() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_streaming(dir.path());
    let (code, out, err) = torvyn(&["run", file.to_str().unwrap(), "--print", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let (code, expected, err) = torvyn(&[
        "run",
        by_files(dir.path()).to_str().unwrap(),
        "--print",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let elements = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with('['))
            .map(String::from)
            .collect()
    };
    // The counting source's default is 10 elements (0 to 9); the filter
    // drops every third (its config has no number: default 3); sentences of
    // four.
    assert_eq!(
        elements(&out),
        [
            r#"[sink] #0     application/octet-stream "element 1element 2element 4element 5""#,
            r#"[sink] #1     application/octet-stream "element 7element 8""#,
        ],
        "{out}"
    );
    assert_eq!(elements(&out), elements(&expected));
}

#[test]
fn a_project_directory_chooses_its_newest_build_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_streaming(dir.path());
    // An older debug build of the source that stops after 2 elements (a
    // different component): the release build beside it is newer.
    let source = dir.path().join("components/token-source");
    let old = source.join("target/wasm32-wasip1/debug");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(
        old.join("token_source.wasm"),
        torvyn_fixtures::uppercase_processor(),
    )
    .unwrap();
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(old.join("token_source.wasm"))
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    let (code, _, err) = torvyn(&["run", file.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: component `token-source`")
            && err.contains("chose ")
            && err.contains("wasm32-wasip2/release/token_source.wasm (the newest of 2"),
        "{err}"
    );
    // Made newest, the other build is chosen (and it is no source).
    std::fs::File::options()
        .write(true)
        .open(old.join("token_source.wasm"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    let (code, _, err) = torvyn(&["run", file.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("wasm32-wasip1/debug/token_source.wasm (the newest of 2"),
        "{err}"
    );
}

#[test]
fn an_unbuilt_project_directory_names_itself_and_its_build() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_streaming(dir.path());
    let target = dir.path().join("components/content-filter/target");
    std::fs::remove_dir_all(&target).unwrap();
    let (code, out, err) = torvyn(&["run", file.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("component `content-filter`")
            && err.contains("components/content-filter is a directory with no built component")
            && err.contains("`cargo component build --release --target wasm32-wasip2`"),
        "{err}"
    );
}

#[test]
fn a_core_module_carrying_its_wit_is_made_a_component_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("upper.wasm");
    std::fs::write(&module, torvyn_fixtures::uppercase_core_module()).unwrap();
    let (code, out, err) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--processor",
        module.to_str().unwrap(),
        "--sink",
        "bundled:recording-sink",
        "--config",
        "2",
        "--print",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""ELEMENT 1""#), "{out}");
    // A core module without its WIT cannot be: said with the path.
    let bare = dir.path().join("bare.wasm");
    std::fs::write(&bare, wat::parse_str("(module)").unwrap()).unwrap();
    let (code, _, err) = torvyn(&["inspect", bare.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}: a core WebAssembly module, not a component",
            bare.display()
        )),
        "{err}"
    );
    // Not WebAssembly at all: named, with what it starts with, on one line.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, [0xab, 0xca, 0xbb, 0x86, 1, 2, 3]).unwrap();
    let (code, _, err) = torvyn(&["inspect", junk.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "error: {}: cannot compile component `junk`: not a WebAssembly file: it starts with ab ca bb 86, WebAssembly with 00 61 73 6d (`\\0asm`)",
            junk.display()
        )
    );
}

/// A project file using every key of the runtime's schema.
const EVERY_KEY: &str = r#"[torvyn]
name = "every-key"
version = "0.1.0"
contract_version = "0.1.0"
description = "every key"
authors = ["A <a@example.com>"]
license = "Apache-2.0"

[[component]]
name = "numbers"
path = "components/numbers"
language = "rust"
config = "7"

[[component]]
name = "upper"
path = "components/upper"
language = "rust"
build_command = "mkdir -p out && cp prebuilt/upper.wasm out/upper.wasm"

[[component]]
name = "grower"
path = "components/grower"

[[component]]
name = "sink"
path = "components/sink"
config = "100"

[build]
release = true
extra_args = ["--locked"]
target = "wasm32-wasip1"

[test]
timeout_seconds = 30
fixtures_dir = "tests/fixtures"

[flow.main]
description = "numbers -> upper -> grower -> sink"
scheduling_policy = "priority"
default_queue_depth = 8
backpressure = { default_queue_depth = 8, backpressure_policy = "block-producer" }

[flow.main.nodes.source]
component = "numbers"
interface = "torvyn:streaming/source"
priority = 7

[flow.main.nodes.upper]
component = "upper"
interface = "torvyn:streaming/processor"
fuel_budget = 1000000

[flow.main.nodes.grower]
component = "grower"
interface = "torvyn:streaming/processor"
max_memory = "64MiB"

[flow.main.nodes.sink]
component = "sink"
interface = "torvyn:streaming/sink"

[[flow.main.edges]]
from = { node = "source", port = "output" }
to = { node = "upper", port = "input" }
queue_depth = 2
backpressure = { backpressure_policy = "block-producer" }

[[flow.main.edges]]
from = { node = "upper", port = "output" }
to = { node = "grower", port = "input" }

[[flow.main.edges]]
from = { node = "grower", port = "output" }
to = { node = "sink", port = "input" }

[runtime]
worker_threads = 2
max_memory_per_component = "64MiB"
compilation_cache_dir = ".torvyn/cache"

[runtime.scheduling]
policy = "weighted-fair"
default_priority = 5

[runtime.backpressure]
default_queue_depth = 64
backpressure_policy = "block-producer"

[security]
default_capability_policy = "deny-all"

[observability]
tracing_enabled = false

[registry]
default = "https://registry.example.com"
"#;

fn every_key_project(root: &Path, text: &str) -> PathBuf {
    component_project(
        root,
        "numbers",
        "numbers",
        &[("wasm32-wasip1", "release")],
        &torvyn_fixtures::counting_source(),
    );
    // Built by its build_command (`--build`), from a prebuilt file.
    let upper = component_project(root, "upper", "upper", &[], &[]);
    std::fs::create_dir_all(upper.join("prebuilt")).unwrap();
    std::fs::write(
        upper.join("prebuilt/upper.wasm"),
        torvyn_fixtures::uppercase_processor(),
    )
    .unwrap();
    // Grows its memory by 1 MiB per call, traps when refused; passes on
    // nothing (`drop`), so the sink sees no element from it.
    component_project(
        root,
        "grower",
        "grower",
        &[("wasm32-wasip1", "release")],
        &torvyn_fixtures::hostile::many_memories(1, 16),
    );
    component_project(
        root,
        "sink",
        "sink",
        &[("wasm32-wasip1", "release")],
        &torvyn_fixtures::recording_sink(),
    );
    let file = root.join("Torvyn.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn every_key_of_the_project_file_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let file = every_key_project(dir.path(), EVERY_KEY);
    let file = file.to_str().unwrap();
    // The build_command's output is not there until it runs.
    let (code, _, err) = torvyn(&["run", file, "--quiet"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("component `upper`")
            && err.contains(
                "its build_command `mkdir -p out && cp prebuilt/upper.wasm out/upper.wasm` writes"
            )
            && err.contains("out/upper.wasm, which is not there"),
        "{err}"
    );
    // `--build` runs it (in the component's directory), then the flow runs.
    let (code, out, err) = torvyn(&["run", file, "--build", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("building component `upper`"), "{err}");
    let report = json(out.trim());
    // [component] config "7": the source (no config of its own) makes 7.
    assert_eq!(report["nodes"][0]["elements_out"], 7, "{report}");
    // node fuel_budget: only `upper` is metered.
    let fuel: Vec<u64> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["fuel"].as_u64().unwrap())
        .collect();
    assert!(
        fuel[1] > 0 && fuel[0] == 0 && fuel[2] == 0 && fuel[3] == 0,
        "{fuel:?}"
    );
    assert!(report["fuel"].as_u64().unwrap() > 0, "{report}");
    // compilation_cache_dir: the compiled components are kept there.
    let cache = dir.path().join(".torvyn/cache");
    assert!(
        std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0) > 0,
        "nothing cached in {}",
        cache.display()
    );

    // A node's max_memory: 4 MiB refuses the grower's 4th MiB.
    let small = EVERY_KEY.replace("max_memory = \"64MiB\"", "max_memory = \"4MiB\"");
    let small_file = every_key_project(dir.path(), &small);
    let (code, _, err) = torvyn(&["run", small_file.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        "error: component `grower`, function `process`: memory limit reached (linear memory \
         growth from 3211264 to 4259840 bytes refused: the instance's memories would hold \
         4259840 bytes, limit 4194304)\n"
    );
    // max_memory_per_component does the same for every component.
    let small = EVERY_KEY.replace("max_memory = \"64MiB\"\n", "").replace(
        "max_memory_per_component = \"64MiB\"",
        "max_memory_per_component = \"4MiB\"",
    );
    let small_file = every_key_project(dir.path(), &small);
    let (code, _, err) = torvyn(&["run", small_file.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        "error: component `grower`, function `process`: memory limit reached (linear memory \
         growth from 3211264 to 4259840 bytes refused: the instance's memories would hold \
         4259840 bytes, limit 4194304)\n"
    );
    // A node's fuel_budget too small for one call.
    let starved = EVERY_KEY.replace("fuel_budget = 1000000", "fuel_budget = 10");
    let starved_file = every_key_project(dir.path(), &starved);
    let (code, _, err) = torvyn(&["run", starved_file.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        "error: component `upper`, function `process`: fuel exhausted\n"
    );
    // [runtime] default_fuel_per_invocation meters every node.
    let metered = EVERY_KEY.replace(
        "worker_threads = 2",
        "worker_threads = 2\ndefault_fuel_per_invocation = 5000000",
    );
    let metered_file = every_key_project(dir.path(), &metered);
    let (code, out, err) = torvyn(&["run", metered_file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let report = json(out.trim());
    for node in report["nodes"].as_array().unwrap() {
        assert!(node["fuel"].as_u64().unwrap() > 0, "{node}");
    }
}

#[test]
fn values_this_engine_cannot_honour_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    // The line of `needle` in `text` (1-based), as errors name it.
    let line = |text: &str, needle: &str| {
        text[..text.find(needle).unwrap_or_else(|| panic!("{needle}"))]
            .matches('\n')
            .count()
            + 1
    };
    let refused = |text: String, expected: &[&str]| {
        let file = every_key_project(dir.path(), &text);
        let (code, _, err) = torvyn(&["check", file.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        let (code, out, _) = torvyn(&["check", file.to_str().unwrap(), "--format", "json"]);
        assert_eq!(code, 1);
        let problem = json(out.trim())["problems"][0]["problem"]
            .as_str()
            .unwrap()
            .to_string();
        for part in expected {
            assert!(problem.contains(part), "expected `{part}` in: {problem}");
        }
    };
    let text = EVERY_KEY.replace(
        "backpressure = { backpressure_policy = \"block-producer\" }",
        "backpressure = { backpressure_policy = \"drop-oldest\" }",
    );
    let at = line(&text, "\"drop-oldest\"");
    refused(
        text,
        &[
            &format!("backpressure_policy `drop-oldest` (line {at})"),
            "never drops an element",
        ],
    );
    let text = EVERY_KEY.replace("priority = 7", "priority = 11");
    let at = line(&text, "priority = 11");
    refused(
        text,
        &["node `source`", &format!("`priority` (line {at}) is 11")],
    );
    let text = EVERY_KEY.replace(
        "scheduling_policy = \"priority\"",
        "scheduling_policy = \"fifo\"",
    );
    let at = line(&text, "\"fifo\"");
    refused(text, &[&format!("scheduling policy `fifo` (line {at})")]);
    let text = EVERY_KEY.replace("fuel_budget = 1000000", "fuel_bugdet = 1000000");
    let at = line(&text, "fuel_bugdet");
    refused(text, &[&format!("unknown field `fuel_bugdet` (line {at})")]);
    let text = EVERY_KEY.replace("queue_depth = 2\n", "queue_dpeth = 2\n");
    let at = line(&text, "queue_dpeth");
    refused(text, &["queue_dpeth", &format!("line {at}")]);
    let text = EVERY_KEY.replace("timeout_seconds = 30", "timeout_seconds = 30\n[tset]");
    refused(text, &["tset"]);
    let text = EVERY_KEY.replace("max_memory = \"64MiB\"", "max_memory = \"64 parsecs\"");
    let at = line(&text, "64 parsecs");
    refused(
        text,
        &[
            &format!("`max_memory` (line {at})"),
            "unknown unit `parsecs`",
        ],
    );
}

#[test]
fn check_finds_every_problem_run_would_refuse_without_running_a_stage() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_streaming(dir.path());
    let (code, out, err) = torvyn(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("ok: 4 nodes checked\n"), "{out}");
    assert!(
        out.contains("node source           source     typed"),
        "{out}"
    );

    // Four problems at once: an unbuilt directory, a node whose component
    // lacks its role, a file that is no WebAssembly, an import nobody serves.
    std::fs::remove_dir_all(dir.path().join("components/content-filter/target")).unwrap();
    let wrong_role = dir.path().join("components/sentence-aggregator/target/wasm32-unknown-unknown/release/sentence_aggregator.wasm");
    std::fs::write(&wrong_role, torvyn_fixtures::uppercase_processor()).unwrap();
    let junk = dir
        .path()
        .join("components/output-sink/target/wasm32-wasip2/debug/output_sink.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let source = dir
        .path()
        .join("components/token-source/target/wasm32-wasip2/release/token_source.wasm");
    std::fs::write(
        &source,
        torvyn_fixtures::foreign::uppercase_processor_in("acme:etl@2.0.0"),
    )
    .unwrap();
    let (code, out, err) = torvyn(&["check", file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 1, "{err}");
    let report = json(out.trim());
    assert_eq!(report["kind"], "check");
    assert_eq!(report["schema"], 1);
    assert_eq!(report["ok"], false);
    let problems: Vec<(String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["place"].as_str().unwrap().to_string(),
                p["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |place: &str, text: &str| {
        problems
            .iter()
            .any(|(p, problem)| p == place && problem.contains(text))
    };
    assert!(
        has(
            "component `content-filter`",
            "is a directory with no built component"
        ),
        "{problems:#?}"
    );
    assert!(
        has(
            "flow `main`, node `aggregator`",
            "does not export torvyn:aggregation/aggregator"
        ),
        "{problems:#?}"
    );
    assert!(
        has(
            "component `output-sink`",
            "not a WebAssembly file: it starts with 6e 6f 74 20"
        ),
        "{problems:#?}"
    );
    assert!(
        has(
            "flow `main`, node `source`",
            "does not export torvyn:streaming/source"
        ),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(err.contains("4 problems found"), "{err}");
    // Text: each problem on its line with the file and the place.
    let (code, out, _) = torvyn(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(": component `") || l.contains(": flow `"))
        .collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines.iter().all(|l| l.starts_with(file.to_str().unwrap())),
        "{out}"
    );
}

#[test]
fn json_reports_of_run_and_inspect_parse_with_their_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_streaming(dir.path());
    let (code, out, err) = torvyn(&["run", file.to_str().unwrap(), "--print", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (n, element) in lines[..2].iter().enumerate() {
        assert_eq!(element["kind"], "element");
        assert_eq!(element["schema"], 1);
        assert_eq!(element["copy"], 0);
        assert_eq!(element["sink"], "sink");
        assert_eq!(element["sequence"], n as u64);
        assert_eq!(element["content_type"], "application/octet-stream");
    }
    assert_eq!(lines[1]["payload"], "element 7element 8");
    let run = &lines[2];
    assert_eq!(run["kind"], "run");
    assert_eq!(run["flow"], "main");
    assert_eq!(run["copies"], 1);
    assert_eq!(run["delivered"], 2);
    assert_eq!(run["dropped"], 4);
    assert_eq!(run["bytes"], 54);
    assert_eq!(run["fuel"], serde_json::Value::Null);
    assert_eq!(run["error"], serde_json::Value::Null);
    let rows: Vec<(String, String, u64, u64, u64)> = run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().into(),
                n["role"].as_str().unwrap().into(),
                n["elements_in"].as_u64().unwrap(),
                n["elements_out"].as_u64().unwrap(),
                n["dropped"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("source".into(), "source".into(), 10, 10, 0),
            ("filter".into(), "filter".into(), 10, 6, 4),
            ("aggregator".into(), "aggregator".into(), 6, 2, 0),
            ("sink".into(), "sink".into(), 2, 2, 0),
        ]
    );
    assert!(run["nodes"][1]["p50_ns"].as_u64().unwrap() > 0, "{run}");
    assert_eq!(run["per_copy"][0]["delivered"], 2);

    // --flows: per copy, nodes summed.
    let (code, out, err) = torvyn(&[
        "run",
        file.to_str().unwrap(),
        "--flows",
        "3",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let run = json(out.trim());
    assert_eq!(run["copies"], 3);
    assert_eq!(run["delivered"], 6);
    assert_eq!(run["per_copy"].as_array().unwrap().len(), 3);
    assert_eq!(run["nodes"][1]["dropped"], 12);

    // A failed run still writes its document, with the error.
    let (code, out, err) = torvyn(&[
        "run",
        "--source",
        "bundled:counting-source",
        "--sink",
        "bundled:recording-sink",
        "--fuel",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{err}");
    let failed = json(out.trim());
    assert_eq!(failed["delivered"], 0);
    assert_eq!(
        failed["error"],
        "component `source`, function `init`: fuel exhausted"
    );

    let (code, out, err) = torvyn(&["inspect", "bundled:acme-uppercase", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let inspect = json(out.trim());
    assert_eq!(inspect["kind"], "inspect");
    assert_eq!(inspect["sha256"].as_str().unwrap().len(), 64);
    let export = inspect["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == "processor")
        .unwrap_or_else(|| panic!("{inspect}"));
    assert_eq!(export["path"], "dynamic");
    assert!(
        export["reason"]
            .as_str()
            .unwrap()
            .contains("not the contract's package"),
        "{export}"
    );
    assert!(inspect["imports"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["provider"] != "missing"));
}

/// Every key of `EVERY_KEY` (the runtime's whole schema) is either shown to
/// take effect by a test named here, or is one of the keys the README's
/// project-file table says are accepted without effect. A key added to the
/// schema and to `EVERY_KEY` must be classified here, and a key said to be
/// accepted must be written so in the README.
#[test]
fn every_key_is_shown_to_work_or_listed_as_accepted() {
    /// How a key is accounted for.
    enum Shown {
        /// Its effect is asserted by this test (found by name in the tests).
        By(&'static str),
        /// The README lists it as accepted with no effect here (the row's
        /// text, found in the README, says why).
        Accepted(&'static str),
    }
    use Shown::{Accepted, By};
    const EVERY: &str = "every_key_of_the_project_file_is_honoured";
    let table: &[(&str, Shown)] = &[
        (
            "torvyn.*",
            Accepted("`[torvyn]`, descriptions | informative"),
        ),
        ("component.name", By(EVERY)),
        ("component.path", By(EVERY)),
        ("component.language", Accepted("`[[component]] language`")),
        ("component.config", By(EVERY)),
        ("component.build_command", By(EVERY)),
        (
            "build.release",
            By("the_build_keys_name_the_default_build_command"),
        ),
        (
            "build.extra_args",
            By("the_build_keys_name_the_default_build_command"),
        ),
        (
            "build.target",
            By("the_build_keys_name_the_default_build_command"),
        ),
        (
            "test.*",
            Accepted(
                "`[test]`, `[security]`, `[observability]`, `[registry]` | accepted, not used",
            ),
        ),
        ("flow.description", Accepted("descriptions | informative")),
        (
            "flow.scheduling_policy",
            Accepted("then accepted: the driver forwards each element depth-first"),
        ),
        (
            "flow.default_queue_depth",
            By("a_flow_file_runs_with_its_components_configs_and_queue_depth"),
        ),
        (
            "flow.backpressure",
            By("values_this_engine_cannot_honour_are_refused_with_their_line"),
        ),
        ("node.component", By(EVERY)),
        ("node.interface", By(EVERY)),
        (
            "node.priority",
            Accepted("node `priority` (1–10), flow `scheduling_policy`, `[runtime.scheduling]`"),
        ),
        ("node.fuel_budget", By(EVERY)),
        ("node.max_memory", By(EVERY)),
        ("edge.from", By(EVERY)),
        ("edge.to", By(EVERY)),
        (
            "edge.queue_depth",
            By("an_edge_queue_depth_bounds_its_source_on_the_async_driver"),
        ),
        (
            "edge.backpressure",
            By("values_this_engine_cannot_honour_are_refused_with_their_line"),
        ),
        (
            "runtime.worker_threads",
            By("worker_threads_sets_the_tokio_workers_of_flow_copies"),
        ),
        ("runtime.max_memory_per_component", By(EVERY)),
        ("runtime.compilation_cache_dir", By(EVERY)),
        (
            "runtime.scheduling.*",
            Accepted("`[runtime.scheduling]` | checked"),
        ),
        (
            "runtime.backpressure.*",
            By("values_this_engine_cannot_honour_are_refused_with_their_line"),
        ),
        ("security.*", Accepted("`[security]`")),
        ("observability.*", Accepted("`[observability]`")),
        ("registry.*", Accepted("`[registry]`")),
    ];
    // The keys of EVERY_KEY, named as in the table.
    let value: toml::Table = toml::from_str(EVERY_KEY).unwrap();
    let mut keys = Vec::new();
    for (section, inner) in &value {
        match (section.as_str(), inner) {
            ("component", toml::Value::Array(components)) => {
                for component in components {
                    keys.extend(
                        component
                            .as_table()
                            .unwrap()
                            .keys()
                            .map(|k| format!("component.{k}")),
                    );
                }
            }
            ("flow", toml::Value::Table(flows)) => {
                for flow in flows.values() {
                    for (key, value) in flow.as_table().unwrap() {
                        match key.as_str() {
                            "nodes" => {
                                for node in value.as_table().unwrap().values() {
                                    keys.extend(
                                        node.as_table()
                                            .unwrap()
                                            .keys()
                                            .map(|k| format!("node.{k}")),
                                    );
                                }
                            }
                            "edges" => {
                                for edge in value.as_array().unwrap() {
                                    keys.extend(
                                        edge.as_table()
                                            .unwrap()
                                            .keys()
                                            .map(|k| format!("edge.{k}")),
                                    );
                                }
                            }
                            _ => keys.push(format!("flow.{key}")),
                        }
                    }
                }
            }
            (_, toml::Value::Table(table)) => {
                for (key, value) in table {
                    match value {
                        toml::Value::Table(_) => keys.push(format!("{section}.{key}.*")),
                        _ => keys.push(format!("{section}.{key}")),
                    }
                }
            }
            _ => keys.push(section.clone()),
        }
    }
    // The README and the book's chapters.
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/src");
    let readme: String = std::fs::read_dir(docs)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .chain([
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap(),
        ])
        .collect();
    let tests: String = ["cli/tests/projects.rs", "tests/flows.rs"]
        .iter()
        .map(|file| {
            std::fs::read_to_string(format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        })
        .collect();
    for key in &keys {
        let (_, shown) = table
            .iter()
            .find(|(name, _)| {
                name == key
                    || name
                        .strip_suffix(".*")
                        .is_some_and(|section| key.starts_with(&format!("{section}.")))
            })
            .unwrap_or_else(|| {
                panic!("key `{key}` is neither shown to work nor listed as accepted")
            });
        match shown {
            By(test) => assert!(
                tests.contains(&format!("fn {test}()")),
                "key `{key}`: no test `{test}`"
            ),
            Accepted(row) => assert!(
                readme.contains(row),
                "key `{key}`: neither the README nor docs/src says `{row}`"
            ),
        }
    }
    assert!(keys.len() > 30, "{keys:?}");
}

/// `[build]`'s `target`, `release` and `extra_args` make the build command
/// an unbuilt project directory is named with.
#[test]
fn the_build_keys_name_the_default_build_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = every_key_project(dir.path(), EVERY_KEY);
    std::fs::remove_dir_all(dir.path().join("components/numbers/target")).unwrap();
    let (code, _, err) = torvyn(&["run", file.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("`cargo component build --release --target wasm32-wasip1 --locked`"),
        "{err}"
    );
    let debug = EVERY_KEY.replace("release = true", "release = false");
    let file = every_key_project(dir.path(), &debug);
    std::fs::remove_dir_all(dir.path().join("components/numbers/target")).unwrap();
    let (_, _, err) = torvyn(&["run", file.to_str().unwrap(), "--quiet"]);
    assert!(
        err.contains("`cargo component build --target wasm32-wasip1 --locked`"),
        "{err}"
    );
}

/// `[runtime] worker_threads` sets how many tokio workers run `--flows`
/// copies: the process has that many more threads with 6 than with 1.
#[test]
fn worker_threads_sets_the_tokio_workers_of_flow_copies() {
    let threads = |workers: usize| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Torvyn.toml");
        std::fs::write(
            &file,
            format!(
                r#"[[component]]
name = "numbers"
path = "bundled:counting-source"
config = "1000000000"

[[component]]
name = "sink"
path = "bundled:recording-sink"
config = "1000000000"

[flow.main.nodes.source]
component = "numbers"
interface = "torvyn:streaming/source"

[flow.main.nodes.sink]
component = "sink"
interface = "torvyn:streaming/sink"

[[flow.main.edges]]
from = {{ node = "source", port = "output" }}
to = {{ node = "sink", port = "input" }}

[runtime]
worker_threads = {workers}
"#
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_torvyn"))
            .args([
                "run",
                file.to_str().unwrap(),
                "--build",
                "--flows",
                "2",
                "--quiet",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        // Wait until the flows run (the build and compile done), then read
        // the process's thread count.
        let status = format!("/proc/{}/status", child.id());
        let started = std::time::Instant::now();
        let mut most = 0;
        while started.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let Ok(text) = std::fs::read_to_string(&status) else {
                break;
            };
            let count: usize = text
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .map(|n| n.trim().parse().unwrap())
                .unwrap_or(0);
            most = most.max(count);
            if started.elapsed() > std::time::Duration::from_secs(3) {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
        (most, stderr)
    };
    let ((one, err_one), (six, err_six)) = (threads(1), threads(6));
    assert!(
        six >= one + 5,
        "threads with 1 worker: {one} ({err_one}), with 6: {six} ({err_six})"
    );
    assert!(
        six >= one + 5,
        "threads with 1 worker: {one}, with 6: {six}"
    );
}

/// A node's `recycle_after_elements`: the grower (1 MiB more memory a call)
/// under a 4 MiB `max_memory`, refused at its 4th element alone, serves all
/// 7 when recycled every 2; the JSON report counts the replacements.
#[test]
fn a_recycled_node_stays_within_its_memory() {
    let dir = tempfile::tempdir().unwrap();
    let text = EVERY_KEY.replace(
        "max_memory = \"64MiB\"",
        "max_memory = \"4MiB\"\nrecycle_after_elements = 2",
    );
    let file = every_key_project(dir.path(), &text);
    let (code, out, err) = torvyn(&["run", file.to_str().unwrap(), "--build", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let report = json(out.trim());
    let grower = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["name"] == "grower")
        .unwrap()
        .clone();
    assert_eq!(grower["elements_in"], 7, "{grower}");
    // Replaced before its 3rd, 5th and 7th element.
    assert_eq!(grower["recycled"], 3, "{grower}");
}
