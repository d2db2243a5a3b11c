//! Runs the guest component through torvyn-engine with the host's
//! `acme:units/convert` and WASI's clocks, and prints each output; exits 1
//! when an output is not what the guest and the host should make.

use torvyn_engine::wasmtime::component::HasSelf;
use torvyn_engine::{
    ComponentInvoker, Element, EngineConfig, ProcessOutcome, StoreState, WasmEngine, WasmtimeEngine,
};

/// The generated bindings (`OUT_DIR/bindings.rs`).
#[allow(missing_docs, clippy::all, dead_code)]
mod bindings {
    torvyn_engine::include_bindings!("bindings");
}

use bindings::stage::acme::units::{convert, types};

/// The host side of `acme:units/convert`: counts its calls.
#[derive(Debug, Default)]
struct Tagger {
    calls: u64,
}

impl types::Host for Tagger {}

impl convert::Host for Tagger {
    fn tag(&mut self, text: String) -> torvyn_engine::wasmtime::Result<String> {
        self.calls += 1;
        Ok(format!("[{}] {}", self.calls, text.to_uppercase()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = WasmtimeEngine::with_host_imports(
        EngineConfig::builder().build()?,
        &["acme:units/convert", "acme:units/types"],
        |imports| {
            imports.state::<Tagger>();
            types::add_to_linker::<StoreState, HasSelf<Tagger>>(imports.linker(), |state| {
                state.extension::<Tagger>()
            })?;
            convert::add_to_linker::<StoreState, HasSelf<Tagger>>(imports.linker(), |state| {
                state.extension::<Tagger>()
            })
        },
    )?;
    let component = engine.compile(
        "stage",
        include_bytes!(concat!(env!("OUT_DIR"), "/stage.wasm")),
    )?;
    let mut instance = engine.instantiate(&component)?;
    for (sequence, word) in ["alpha", "beta", "gamma"].iter().enumerate() {
        let element = Element::new(sequence as u64, "text/plain", word.to_string());
        let ProcessOutcome::Emit(out) = instance.process(&element)? else {
            return Err(format!("element {sequence} was dropped").into());
        };
        let text = String::from_utf8_lossy(&out.payload).into_owned();
        println!("{word} -> {text}");
        let wanted = format!("[{}] {}", sequence + 1, word.to_uppercase());
        if text != wanted {
            return Err(format!("expected {wanted:?}, got {text:?}").into());
        }
    }
    let calls = instance.store_state().extension::<Tagger>().calls;
    println!("{calls} tags served by the host; the guest read the wall clock through WASI");
    Ok(())
}
