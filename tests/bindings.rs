//! The bindings compiled into the crate are the ones `wit/` generates now:
//! editing a WIT file and building again must regenerate them.

mod build_script {
    include!("../build.rs");

    pub fn generate() -> torvyn_build::Generated {
        builder().emit_rerun_if_changed(false).generate().unwrap()
    }
}

#[test]
fn compiled_bindings_match_the_wit_folder() {
    let in_use = include_str!(concat!(env!("OUT_DIR"), "/bindings.rs"));
    let fresh = build_script::generate();
    assert!(
        fresh.source == in_use,
        "OUT_DIR/bindings.rs is stale: build.rs did not re-run"
    );
    assert_eq!(fresh.wit_files.len(), 6);
}

/// Bindings generated for the engine's host (`torvyn_host`) check, where
/// they are compiled, that their `torvyn-build` matches this engine: the
/// versions compared as Cargo would (the `compile_fail` doc test of
/// `__check_build_version!` shows the build failing).
#[test]
fn generated_bindings_check_the_engine_version() {
    use torvyn_engine::__private::{compatible, VERSION};
    assert!(compatible(VERSION, VERSION));
    assert!(compatible("0.1.0", "0.1.7"));
    assert!(!compatible("0.1.0", "0.2.0"));
    assert!(!compatible("0.1.0", "0.10.0"));
    assert!(compatible("1.2.0", "1.9.1"));
    assert!(!compatible("1.2.0", "2.0.0"));
    // A folder whose world imports the contract, as a user's does.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stage.wit"),
        "package acme:stage@0.1.0;\nworld stage {\n  import torvyn:streaming/types@0.1.0;\n  \
         export torvyn:streaming/processor@0.1.0;\n}\n",
    )
    .unwrap();
    let generated = torvyn_build::Builder::new(dir.path())
        .torvyn_host("torvyn_engine")
        .emit_rerun_if_changed(false)
        .generate()
        .expect("the contract generates");
    assert!(
        generated.source.contains(&format!(
            "torvyn_engine::__check_build_version!(\"{VERSION}\");"
        )),
        "{}",
        &generated.source[..200]
    );
    // The contract's own folder under `torvyn_host`: the contract twice,
    // an error that says so (wit-parser panicked).
    let twice = torvyn_build::Builder::new(concat!(env!("CARGO_MANIFEST_DIR"), "/wit"))
        .torvyn_host("torvyn_engine")
        .emit_rerun_if_changed(false)
        .generate()
        .expect_err("the contract twice");
    assert!(twice.to_string().contains("is defined twice"), "{twice}");
}
