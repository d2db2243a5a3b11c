//! Host bindings for `acme:downstream/stage` from `wit/` (with `deps/`),
//! the contract's imports served by torvyn-engine's own host, WASI's by
//! wasmtime-wasi's; and the guest component, made from `guest/stage.wat`
//! and the same WIT.

use std::path::{Path, PathBuf};

use torvyn_build::wit_parser::Resolve;

const WORLD: &str = "acme:downstream/stage";

fn main() {
    if let Err(error) = generate().and_then(|()| guest()) {
        eprintln!("{error}");
        std::process::exit(1);
    }
}

fn generate() -> Result<(), String> {
    torvyn_build::Builder::new("wit")
        .world(WORLD)
        .torvyn_host("torvyn_engine")
        .with(
            "wasi:clocks/wall-clock@0.2.12",
            "torvyn_engine::wasmtime_wasi::p2::bindings::clocks::wall_clock",
        )
        .compile()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn guest() -> Result<(), String> {
    println!("cargo:rerun-if-changed=guest/stage.wat");
    let mut resolve = Resolve::default();
    for (name, text) in torvyn_build::CONTRACT_WIT {
        resolve
            .push_source(&format!("torvyn-contract/{name}"), text)
            .map_err(|e| format!("{e:#}"))?;
    }
    torvyn_build::load_wit(&mut resolve, Path::new("wit")).map_err(|e| e.to_string())?;
    let packages: Vec<_> = resolve.packages.iter().map(|(id, _)| id).collect();
    let world = resolve
        .select_world(&packages, Some(WORLD))
        .map_err(|e| format!("{e:#}"))?;
    let mut module = wat::parse_file("guest/stage.wat").map_err(|e| format!("{e:#}"))?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(|e| format!("{e:#}"))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| format!("the guest does not build: {e:#}"))?;
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    std::fs::write(out.join("stage.wasm"), component).map_err(|e| e.to_string())
}
