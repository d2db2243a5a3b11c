//! The engine: configuration checks, the compile cache, pre-instantiation.

mod common;

use torvyn_engine::{ComponentInvoker, Element, EngineConfig, Error, WasmEngine, WasmtimeEngine};

#[test]
fn invalid_configurations_are_refused_with_the_reason() {
    let cases = [
        (
            EngineConfig::builder().fuel_per_call(Some(0)),
            "fuel_per_call",
        ),
        (
            EngineConfig::builder().call_deadline(Some(std::time::Duration::from_micros(10))),
            "shorter than the epoch tick",
        ),
        (
            EngineConfig::builder().max_memory_bytes(1000),
            "below one wasm page",
        ),
        (
            EngineConfig::builder().max_stack_bytes(1),
            "max_stack_bytes",
        ),
        (
            EngineConfig::builder()
                .allocation(torvyn_engine::Allocation::Pooling { max_instances: 0 }),
            "max_instances",
        ),
    ];
    for (builder, expected) in cases {
        match builder.build() {
            Err(Error::Config(message)) => assert!(message.contains(expected), "{message}"),
            other => panic!("expected a config error about {expected}, got {other:?}"),
        }
    }
}

#[test]
fn garbage_bytes_are_a_compile_error_naming_the_component() {
    let engine = common::engine();
    let error = engine.compile("junk", b"\0asm not really").unwrap_err();
    // wasmparser's reason, where it stopped (not a magic dump: the file
    // starts as WebAssembly does), printed once: the cause is the error's
    // source, not repeated in its message.
    let mut chain = vec![error.to_string()];
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        chain.push(inner.to_string());
        cause = inner.source();
    }
    assert_eq!(
        chain,
        [
            "cannot compile component `junk`",
            "failed to parse WebAssembly module",
            "unknown binary version: 0x746f6e20 (at offset 0x4)"
        ]
    );
    match &error {
        Error::Compile {
            component, detail, ..
        } => {
            assert_eq!(component, "junk");
            assert_eq!(detail, "");
            assert_eq!(error.to_string(), "cannot compile component `junk`");
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
    assert_eq!(error.kind(), torvyn_engine::ErrorKind::Compile);
}

#[test]
fn the_same_bytes_compile_once_per_engine() {
    let engine = common::engine();
    let bytes = torvyn_fixtures::uppercase_processor();
    let a = common::compile(&engine, "a", &bytes);
    let b = common::compile(&engine, "b", &bytes);
    assert_eq!(a.digest(), b.digest());
    let stats = engine.cache_stats();
    assert_eq!((stats.compiled, stats.memory_hits), (1, 1));
    // Each keeps its own name for errors.
    assert_eq!(b.name(), "b");
}

/// The memory cache shares compiled code only while a component made from
/// it lives: a process that upgrades a stage again and again (`--watch`)
/// does not keep every version it ever ran.
#[test]
fn compiled_code_is_freed_with_the_last_component_of_it() {
    let engine = common::engine();
    let bytes = torvyn_fixtures::uppercase_processor();
    let first = common::compile(&engine, "first", &bytes);
    let instance = engine.instantiate(&first).expect("instantiates");
    drop(first);
    // Still alive through the instance: shared.
    let second = common::compile(&engine, "second", &bytes);
    assert_eq!(engine.cache_stats().compiled, 1);
    drop((second, instance));
    // Gone: compiled again.
    let _third = common::compile(&engine, "third", &bytes);
    let stats = engine.cache_stats();
    assert_eq!((stats.compiled, stats.memory_hits), (2, 1));
}

#[test]
fn the_disk_cache_serves_other_engines_and_refuses_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        EngineConfig::builder()
            .cache_dir(dir.path())
            .build()
            .unwrap()
    };
    let bytes = torvyn_fixtures::uppercase_processor();

    let first = WasmtimeEngine::new(config()).unwrap();
    let component = common::compile(&first, "upper", &bytes);
    assert_eq!(first.cache_stats().compiled, 1);
    let artifact = dir.path().join(format!("{}.cwasm", component.digest()));
    assert!(artifact.exists());

    let second = WasmtimeEngine::new(config()).unwrap();
    let cached = common::compile(&second, "upper", &bytes);
    assert_eq!(second.cache_stats().disk_hits, 1);
    assert_eq!(second.cache_stats().compiled, 0);
    let mut instance = second.instantiate(&cached).unwrap();
    assert_eq!(
        instance.process(&Element::new(0, "", "ok")).unwrap(),
        torvyn_engine::ProcessOutcome::Emit(Element::new(0, "", "OK"))
    );

    // A file the cache did not write is never loaded: it is recompiled and
    // replaced. One byte changed in the artifact (past the magic and the
    // 32-byte tag) is caught by the HMAC, not by a length check.
    let mut altered = std::fs::read(&artifact).unwrap();
    let last = altered.len() - 1;
    altered[last] ^= 0x40;
    std::fs::write(&artifact, &altered).unwrap();
    let third = WasmtimeEngine::new(config()).unwrap();
    common::compile(&third, "upper", &bytes);
    let stats = third.cache_stats();
    assert_eq!((stats.disk_hits, stats.compiled), (0, 1));
    assert_eq!(stats.refused.len(), 1, "{:?}", stats.refused);
    assert!(
        stats.refused[0].contains("fails its integrity check"),
        "{:?}",
        stats.refused
    );
    let fourth = WasmtimeEngine::new(config()).unwrap();
    common::compile(&fourth, "upper", &bytes);
    assert_eq!(
        fourth.cache_stats().disk_hits,
        1,
        "the replaced file is valid again"
    );
}

#[test]
fn one_component_gives_independent_instances() {
    let engine = common::engine();
    let source = common::compile(&engine, "source", &torvyn_fixtures::counting_source());
    let mut a = engine.instantiate(&source).unwrap();
    let mut b = engine.instantiate(&source).unwrap();
    a.init("2").unwrap();
    b.init("5").unwrap();
    let count =
        |i: &mut torvyn_engine::WasmtimeInstance| std::iter::from_fn(|| i.pull().unwrap()).count();
    assert_eq!((count(&mut a), count(&mut b)), (2, 5));
}
