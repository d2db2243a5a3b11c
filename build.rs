//! Generates the typed host bindings of the Torvyn contract from `wit/`.
//!
//! Every world of `wit/` is generated; the contract's resources are mapped to
//! the host types of `src/host.rs` so the generated traits speak in them.

fn main() {
    let generated = torvyn_build::Builder::new("wit")
        .with("torvyn:streaming/types@0.1.0.buffer", "crate::host::Buffer")
        .with(
            "torvyn:streaming/types@0.1.0.mutable-buffer",
            "crate::host::MutableBuffer",
        )
        .with(
            "torvyn:streaming/types@0.1.0.flow-context",
            "crate::host::FlowContext",
        )
        .compile();
    if let Err(error) = generated {
        // A build script reports errors by failing; the message names the WIT file and line.
        eprintln!("{error}");
        std::process::exit(1);
    }
}
