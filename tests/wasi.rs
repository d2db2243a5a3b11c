//! Components importing WASI 0.2 run with nothing granted unless the
//! engine's configuration grants it.

mod common;

use torvyn_engine::{EngineConfig, Error, WasmEngine, WasmtimeEngine};

fn probe(config: EngineConfig) -> torvyn_engine::WasmtimeInstance {
    let engine = WasmtimeEngine::new(config).unwrap();
    let component = common::compile(&engine, "wasi-probe", &torvyn_fixtures::wasi_probe());
    assert!(component
        .imports()
        .iter()
        .any(|i| i.starts_with("wasi:cli/environment")));
    engine.instantiate(&component).unwrap()
}

#[test]
fn a_wasi_guest_gets_no_environment_and_no_files_by_default() {
    // The host process does have environment variables; the guest must not see them.
    assert!(std::env::vars().count() > 0);
    let mut guest = probe(EngineConfig::builder().build().unwrap());
    assert_eq!(guest.invoke("env-count()").unwrap(), "0");
    assert_eq!(guest.invoke("preopen-count()").unwrap(), "0");
}

#[test]
fn what_is_granted_is_visible_and_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig::builder()
        .wasi_env("GREETING", "hello")
        .wasi_preopen(dir.path(), "/data", true)
        .build()
        .unwrap();
    let mut guest = probe(config);
    assert_eq!(guest.invoke("env-count()").unwrap(), "1");
    assert_eq!(guest.invoke("preopen-count()").unwrap(), "1");
    // The descriptors the guest dropped are gone from the table.
    assert_eq!(guest.guest_resources(), 0);
}

#[test]
fn a_missing_preopen_directory_is_a_config_error() {
    let err = EngineConfig::builder()
        .wasi_preopen("/definitely/not/here", "/data", true)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.contains("/definitely/not/here")),
        "{err}"
    );
}

#[test]
fn imports_nobody_provides_are_all_listed() {
    let engine = common::engine();
    match engine.compile("needy", &torvyn_fixtures::needs_unknown_imports()) {
        Err(Error::MissingImports { component, missing }) => {
            assert_eq!(component, "needy");
            assert_eq!(
                missing,
                ["acme:db/query", "wasi:http/outgoing-handler@0.2.0"]
            );
        }
        other => panic!("expected MissingImports, got {other:?}"),
    }
}
