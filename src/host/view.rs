//! [`HostView`]: all the contract's host functions know of the store they
//! are linked into.

use super::HostState;

/// What the contract's host functions need of a store's data: the
/// instance's [`HostState`]. The engine's store data implements it; the
/// host knows nothing else of it (its limiter, WASI context, extensions),
/// the way wasmtime-wasi's functions see their embedder only through
/// `WasiView`.
pub(crate) trait HostView: Send + 'static {
    /// The instance's contract state.
    fn host(&mut self) -> &mut HostState;
    /// The same, to read while guest memory is borrowed from the store.
    fn host_ref(&self) -> &HostState;
}
