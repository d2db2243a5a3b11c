//! A torvyn processor in Rust: emits an uppercased copy of every payload.
//!
//! Built with the `wasi` feature it also imports WASI 0.2
//! (`wasi:cli/environment`) and appends the value of the `SUFFIX`
//! environment variable, if the host grants one.

#[cfg(not(feature = "wasi"))]
wit_bindgen::generate!({
    path: "../../../wit/streaming.wit",
    world: "transform",
});

#[cfg(feature = "wasi")]
wit_bindgen::generate!({
    path: ["../../../wit/streaming.wit", "wit/wasi-environment.wit", "wit/with-wasi.wit"],
    world: "torvyn:rust-guest/transform-with-env",
    generate_all,
});

use exports::torvyn::streaming::processor::Guest;
use torvyn::streaming::buffer_allocator;
use torvyn::streaming::types::{OutputElement, ProcessError, ProcessResult, StreamElement};

struct Uppercase;

/// What to append to every payload: the `SUFFIX` variable, when granted.
#[cfg(feature = "wasi")]
fn suffix() -> Vec<u8> {
    wasi::cli::environment::get_environment()
        .into_iter()
        .find(|(key, _)| key == "SUFFIX")
        .map(|(_, value)| value.into_bytes())
        .unwrap_or_default()
}

#[cfg(not(feature = "wasi"))]
fn suffix() -> Vec<u8> {
    Vec::new()
}

impl Guest for Uppercase {
    fn process(input: StreamElement) -> Result<ProcessResult, ProcessError> {
        let mut data = input.payload.read_all();
        data.make_ascii_uppercase();
        data.extend(suffix());
        let fail = |e| ProcessError::Internal(format!("{e:?}"));
        let buffer = buffer_allocator::allocate(data.len() as u64).map_err(fail)?;
        buffer.append(&data).map_err(fail)?;
        let payload = buffer.freeze();
        Ok(ProcessResult::Emit(OutputElement {
            meta: input.meta,
            payload,
        }))
    }
}

export!(Uppercase);
