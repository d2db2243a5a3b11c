//! `torvyn-wasi-adapter <path>`: writes the WASI preview1 → 0.2 reactor adapter.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: torvyn-wasi-adapter <output.wasm>");
        std::process::exit(2);
    };
    let adapter = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    if let Err(error) = std::fs::write(&path, adapter) {
        eprintln!("cannot write {path}: {error}");
        std::process::exit(1);
    }
}
