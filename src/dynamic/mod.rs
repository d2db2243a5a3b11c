//! The dynamic path: stream-stage exports the typed bindings do not know
//! (another major version, another package with the same shapes) called
//! with `wasmtime::component::Val`s.
//!
//! Shapes are matched structurally and by name when the component is
//! compiled ([`plan_interface`]): records by field name, variants and enums
//! by case name, `borrow<buffer>`/`borrow<flow-context>` to the host's own
//! resources. Anything the host cannot fill or read is refused there, with
//! the function and the path inside the type. At instantiation each function
//! gets its argument `Val`s built once ([`DynamicExport`]); a call only
//! overwrites the scalar and string leaves, then turns the result `Val`s
//! into the very types the typed bindings return, so everything after the
//! call is shared with the typed path.
//!
//! `plan.rs` is the compile-time half (shapes checked, plans made);
//! `call.rs` the call-time half (plans bound to an instance, `Val`s filled
//! and read), with `windowed.rs` for `torvyn:windowing`'s state and window
//! arguments and `decode.rs` for the results read.

mod call;
mod decode;
mod plan;
mod windowed;

pub(crate) use call::DynamicExport;
pub(crate) use decode::drop_handles;
pub(crate) use plan::{plan_interface, InterfacePlan};
