//! Components built by real toolchains (C, Rust, Python; `guests/build.sh`)
//! run through the engine: a mixed-language pipeline, and WASI guests with
//! nothing granted.

use std::path::PathBuf;
use std::sync::OnceLock;

use torvyn_engine::{
    CallPath, CompiledComponent, ComponentInvoker, Element, EngineConfig, Error, GuestError,
    Interface, Pipeline, ProcessOutcome, WasmEngine, WasmtimeEngine, WasmtimeInstance,
};

/// One engine for the whole file, so each (large) component compiles once.
fn engine() -> &'static WasmtimeEngine {
    static ENGINE: OnceLock<WasmtimeEngine> = OnceLock::new();
    ENGINE.get_or_init(|| WasmtimeEngine::new(EngineConfig::builder().build().unwrap()).unwrap())
}

fn guest(name: &str) -> CompiledComponent {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("guests/out/{name}.wasm"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the guests first with guests/build.sh",
            path.display()
        )
    });
    engine()
        .compile(name, &bytes)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn instance(name: &str) -> WasmtimeInstance {
    engine().instantiate(&guest(name)).unwrap()
}

#[test]
fn c_source_rust_processor_python_processor_c_sink() {
    let mut pipeline = Pipeline::new(
        instance("c-source"),
        vec![instance("rust-processor"), instance("python-processor")],
        instance("c-sink"),
    )
    .unwrap();
    // The C source reads its count, the C sink its pause interval.
    pipeline.init("300").unwrap();
    let mut seen = 0u64;
    let report = pipeline
        .run(|element| {
            assert_eq!(element.meta.sequence, seen);
            assert_eq!(element.meta.content_type, "text/plain");
            assert_eq!(element.payload, format!("C-ELEMENT {seen} +py").as_bytes());
            seen += 1;
        })
        .unwrap();
    assert_eq!((report.delivered, seen, report.pauses), (300, 300, 1));
    pipeline.teardown().unwrap();
    let (source, processors, sink) = pipeline.stages();
    let stages = std::iter::once(source)
        .chain(processors)
        .chain(std::iter::once(sink));
    for stage in stages {
        assert_eq!(stage.host().budget_in_use(), 0, "{}", stage.name());
    }
    // Every stage of every language takes the typed path.
    for name in ["c-source", "rust-processor", "python-processor", "c-sink"] {
        let component = guest(name);
        let role = [Interface::Source, Interface::Processor, Interface::Sink]
            .into_iter()
            .find(|i| component.path_for(*i).is_some())
            .unwrap();
        assert_eq!(component.path_for(role), Some(&CallPath::Typed), "{name}");
    }
}

#[test]
fn the_python_processor_without_wasi_imports_gives_the_same_output() {
    let stub = guest("python-processor-stub");
    assert!(stub.imports().iter().all(|i| !i.starts_with("wasi:")));
    let with_wasi = guest("python-processor");
    assert!(with_wasi.imports().iter().any(|i| i.starts_with("wasi:")));
    for component in [stub, with_wasi] {
        let mut processor = engine().instantiate(&component).unwrap();
        let out = processor
            .process(&Element::new(4, "text/plain", "abc"))
            .unwrap();
        assert_eq!(
            out,
            ProcessOutcome::Emit(Element::new(4, "text/plain", "abc +py"))
        );
    }
}

#[test]
fn a_wasi_guest_reads_no_environment_unless_granted() {
    // Built for wasm32-unknown-unknown, the same source imports no WASI.
    assert!(guest("rust-processor")
        .imports()
        .iter()
        .all(|i| !i.starts_with("wasi:")));
    let component = guest("rust-processor-wasip2");
    assert!(component
        .imports()
        .iter()
        .any(|i| i.starts_with("wasi:cli/environment")));
    // Nothing granted: the guest finds no SUFFIX. (That the host process's
    // own SUFFIX does not leak in is checked in a child process, by the CLI
    // tests: setting it here would race the other test threads.)
    let mut denied = engine().instantiate(&component).unwrap();
    let out = denied.process(&Element::new(0, "", "abc")).unwrap();
    assert_eq!(out, ProcessOutcome::Emit(Element::new(0, "", "ABC")));

    let granting = WasmtimeEngine::new(
        EngineConfig::builder()
            .wasi_env("SUFFIX", "-granted")
            .build()
            .unwrap(),
    )
    .unwrap();
    let bytes = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("guests/out/rust-processor-wasip2.wasm"),
    )
    .unwrap();
    let mut granted = granting
        .instantiate(&granting.compile("rust-processor-wasip2", &bytes).unwrap())
        .unwrap();
    let out = granted.process(&Element::new(0, "", "abc")).unwrap();
    assert_eq!(
        out,
        ProcessOutcome::Emit(Element::new(0, "", "ABC-granted"))
    );
}

#[test]
fn guest_errors_from_a_c_sink_map_to_the_library_error() {
    let mut sink = instance("c-sink");
    sink.init("10").unwrap();
    sink.push(&Element::new(0, "", "a")).unwrap();
    match sink.push(&Element::new(7, "", "b")) {
        Err(Error::Guest {
            error: GuestError::InvalidInput(message),
            site,
        }) => {
            assert_eq!(message, "sequence out of order");
            assert_eq!(site.component, "c-sink");
        }
        other => panic!("expected invalid-input, got {other:?}"),
    }
}

/// Which side keeps the Python stage's memory (issue 33): componentize-py
/// 0.25.1 keeps the copy of every `list<u8>` argument it lowers for a call
/// to an imported function. Two reproductions of 10,000 calls each
/// (`guests/python/leak/`): one allocates a buffer and drops it, one also
/// appends 1 KiB to it. The host holds nothing after either (no resource,
/// no budget); the first's linear memory stays flat, the second's grows by
/// about the bytes it appended. When a componentize-py release stops
/// keeping them, this test fails: the README's note on it goes then.
#[test]
fn componentize_py_keeps_the_bytes_of_every_list_argument() {
    const CALLS: u64 = 10_000;
    let grown = |name: &str| {
        let mut instance = instance(name);
        let element = |i| Element::new(i, "text/plain", "x");
        instance.process(&element(0)).unwrap();
        let before = instance.memory_bytes();
        for i in 1..=CALLS {
            assert_eq!(instance.process(&element(i)).unwrap(), ProcessOutcome::Drop);
        }
        assert_eq!(
            instance.guest_resources(),
            0,
            "{name}: the host holds a resource"
        );
        assert_eq!(
            instance.host().budget_in_use(),
            0,
            "{name}: the host holds bytes"
        );
        instance.memory_bytes() - before
    };
    let allocates = grown("python-allocates");
    let appends = grown("python-appends");
    assert!(
        allocates <= 65_536,
        "allocating alone grew {allocates} bytes"
    );
    // Memory comes in 64 KiB pages and the heap starts with some room: at
    // least half of what was appended shows as growth.
    assert!(
        appends as u64 >= CALLS * 1024 / 2,
        "appending 1 KiB {CALLS} times grew {appends} bytes: componentize-py no longer keeps \
         its arguments (update the README's note)"
    );
}

/// What a windowed aggregator gives for a few folds, a merge and an emit.
fn window_calls(instance: &mut WasmtimeInstance) -> Vec<String> {
    let window = torvyn_engine::window::Window::new(1_000, 2_000).unwrap();
    let a = instance
        .fold(None, &Element::new(0, "", "5 apples"))
        .unwrap();
    let a = instance
        .fold(Some(&a), &Element::new(1, "", "x 7"))
        .unwrap();
    let b = instance.fold(None, &Element::new(2, "", "30")).unwrap();
    let merged = instance.merge(&a, &b).unwrap();
    [&a, &b, &merged]
        .into_iter()
        .map(|state| {
            let out = instance.emit("sensor-7", window, state).unwrap();
            String::from_utf8(out.payload.to_vec()).unwrap()
        })
        .collect()
}

#[test]
fn a_rust_windowed_aggregator_answers_as_the_wat_fixture_does() {
    let rust = guest("rust-windowed");
    assert_eq!(rust.path_for(Interface::Windowed), Some(&CallPath::Typed));
    let mut rust = engine().instantiate(&rust).unwrap();
    let fixture = engine()
        .compile("wat", &torvyn_fixtures::windowed_count_sum())
        .unwrap();
    let mut fixture = engine().instantiate(&fixture).unwrap();
    let answers = window_calls(&mut rust);
    assert_eq!(
        answers,
        [
            "sensor-7 1000 2 12",
            "sensor-7 1000 1 30",
            "sensor-7 1000 3 42"
        ]
    );
    assert_eq!(answers, window_calls(&mut fixture));
    // A state it cannot read is the guest's own error, named.
    let error = rust
        .fold(Some(&[1, 2, 3]), &Element::new(3, "", "1"))
        .unwrap_err();
    assert!(matches!(error, Error::Guest { .. }), "{error}");
    assert!(error.to_string().contains("3 bytes, not 16"), "{error}");
}
