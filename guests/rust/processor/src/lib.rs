//! A torvyn processor in Rust: emits an uppercased copy of every payload,
//! followed by the value of the `SUFFIX` environment variable if it has one.
//!
//! Built for `wasm32-unknown-unknown` it has no environment (and imports no
//! WASI); built for `wasm32-wasip2` std reads the environment through WASI,
//! so the component imports WASI 0.2 and sees only what the host grants.

wit_bindgen::generate!({
    path: "../../../wit/streaming.wit",
    world: "transform",
});

use exports::torvyn::streaming::processor::Guest;
use torvyn::streaming::buffer_allocator;
use torvyn::streaming::types::{OutputElement, ProcessError, ProcessResult, StreamElement};

struct Uppercase;

impl Guest for Uppercase {
    fn process(input: StreamElement) -> Result<ProcessResult, ProcessError> {
        let mut data = input.payload.read_all();
        data.make_ascii_uppercase();
        if let Ok(suffix) = std::env::var("SUFFIX") {
            data.extend(suffix.into_bytes());
        }
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
