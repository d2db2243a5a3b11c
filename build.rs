// Generates the typed host bindings of the Torvyn contract from `wit/`.
//
// Every world of `wit/` is generated; the contract's resources are mapped to
// the host types of `src/host.rs` so the generated traits speak in them.

/// The generator's configuration (also used by `tests/bindings.rs` to check
/// that the compiled bindings are current).
fn builder() -> torvyn_build::Builder {
    torvyn_build::Builder::new(concat!(env!("CARGO_MANIFEST_DIR"), "/wit"))
        .with("torvyn:streaming/types@0.1.0.buffer", "crate::host::Buffer")
        .with(
            "torvyn:streaming/types@0.1.0.mutable-buffer",
            "crate::host::MutableBuffer",
        )
        .with(
            "torvyn:streaming/types@0.1.0.flow-context",
            "crate::host::FlowContext",
        )
}

#[allow(dead_code)] // Also compiled into tests/bindings.rs, which has its own main.
fn main() {
    if let Err(error) = builder().compile() {
        // A build script reports errors by failing; the message names the WIT file and line.
        eprintln!("{error}");
        std::process::exit(1);
    }
}
