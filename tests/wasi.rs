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
    assert_eq!(guest.invoke("env()").unwrap(), "[]");
    assert_eq!(guest.invoke("preopen-count()").unwrap(), "0");
    assert_eq!(guest.invoke("preopens()").unwrap(), "[]");
    assert_eq!(
        guest.invoke(r#"mkdir("x")"#).unwrap(),
        "-2",
        "no directory to write in"
    );
    // Stdin is empty: closed at the first read (it would block on the host's).
    assert_eq!(guest.invoke("stdin-read()").unwrap(), "-1");
}

/// The `error-code` cases of wasi:filesystem that a refused write can be.
const NOT_PERMITTED: &str = "31";
const READ_ONLY: &str = "33";

#[test]
fn a_read_only_preopen_refuses_writes_and_a_writable_one_takes_them() {
    let read_only = tempfile::tempdir().unwrap();
    let mut guest = probe(
        EngineConfig::builder()
            .wasi_preopen(read_only.path(), "/data", true)
            .build()
            .unwrap(),
    );
    let refused = guest.invoke(r#"mkdir("made-by-guest")"#).unwrap();
    assert!(
        refused == NOT_PERMITTED || refused == READ_ONLY,
        "error case {refused}"
    );
    assert!(!read_only.path().join("made-by-guest").exists());

    let writable = tempfile::tempdir().unwrap();
    let mut guest = probe(
        EngineConfig::builder()
            .wasi_preopen(writable.path(), "/data", false)
            .build()
            .unwrap(),
    );
    assert_eq!(guest.invoke(r#"mkdir("made-by-guest")"#).unwrap(), "-1");
    assert!(writable.path().join("made-by-guest").is_dir());
    assert_eq!(guest.guest_resources(), 0);
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
    // Names and values exactly as granted, and the directory under its guest path.
    assert_eq!(guest.invoke("env()").unwrap(), r#"[("GREETING", "hello")]"#);
    assert_eq!(guest.invoke("preopen-count()").unwrap(), "1");
    assert_eq!(guest.invoke("preopens()").unwrap(), r#"["/data"]"#);
    // The descriptors the guest dropped are gone from the table.
    assert_eq!(guest.guest_resources(), 0);
}

#[test]
fn a_wasi_guest_has_no_network() {
    // A listener the guest would reach if it had any network at all.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let engine = common::engine();
    let component = common::compile(&engine, "net", &torvyn_fixtures::wasi_network_probe());
    assert!(component
        .imports()
        .iter()
        .any(|i| i.starts_with("wasi:sockets/tcp")));
    let mut guest = engine.instantiate(&component).unwrap();
    // error-code case 1: access-denied.
    assert_eq!(guest.invoke(&format!("connect({port})")).unwrap(), "1");
    assert_eq!(guest.guest_resources(), 0);
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "nothing may have connected");
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
