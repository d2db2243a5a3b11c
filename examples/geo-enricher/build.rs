//! Generates host bindings for the `acme:geo/enricher` world; the contract's
//! imports are served by torvyn-engine's own host implementation.

fn main() {
    let generated = torvyn_build::Builder::new("wit")
        .world("acme:geo/enricher")
        .torvyn_host("torvyn_engine")
        .compile();
    if let Err(error) = generated {
        eprintln!("{error}");
        std::process::exit(1);
    }
}
