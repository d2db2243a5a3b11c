//! The bindings compiled into the crate are the ones `wit/` generates now:
//! editing a WIT file and building again must regenerate them.

#[test]
fn compiled_bindings_match_the_wit_folder() {
    let in_use = include_str!(concat!(env!("OUT_DIR"), "/bindings.rs"));
    let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
    let fresh = torvyn_build::Builder::new(wit)
        .with("torvyn:streaming/types@0.1.0.buffer", "crate::host::Buffer")
        .with(
            "torvyn:streaming/types@0.1.0.mutable-buffer",
            "crate::host::MutableBuffer",
        )
        .with(
            "torvyn:streaming/types@0.1.0.flow-context",
            "crate::host::FlowContext",
        )
        .emit_rerun_if_changed(false)
        .generate()
        .unwrap();
    assert!(
        fresh.source == in_use,
        "OUT_DIR/bindings.rs is stale: build.rs did not re-run"
    );
}
