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
    assert_eq!(fresh.wit_files.len(), 5);
}
