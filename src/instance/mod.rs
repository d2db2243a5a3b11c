//! A live wasmtime instance and its invoker.
//!
//! Every contract function is written once (`Body::<G>` in `body.rs`),
//! generic over the [`Gate`] that enters the guest: [`Blocking`] for the
//! sync [`ComponentInvoker`](crate::ComponentInvoker), [`Yielding`] for
//! [`AsyncComponentInvoker`](crate::AsyncComponentInvoker), whose entries
//! are generated from the contract's table (`crate::contract`). Around the
//! guest call, one [`Call`] scope (`call.rs`) does what both need: the poison
//! check, fuel, the epoch clock, lending the element, classifying failures
//! — and, should the call's future be dropped before it returns, poisoning
//! the instance and releasing what its guest held.
//!
//! Here: the instance itself in `wasmtime_instance.rs`; the call scope in
//! `call.rs`; the bodies in `body.rs` (recycling too); a failure's
//! classification in `failure.rs`; what recycling keeps in `renewal.rs`.

mod body;
mod call;
mod failure;
mod renewal;
mod wasmtime_instance;

pub(crate) use body::Body;
pub(crate) use failure::site;
pub use wasmtime_instance::WasmtimeInstance;
