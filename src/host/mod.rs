//! The host side of the contract: buffers, mutable buffers, flow contexts,
//! the buffer allocator and capability queries.
//!
//! Every instance has its own [`HostState`]: handle tables holding the
//! resources its guest can see, a byte budget for the buffers the guest
//! allocates, and counters of the bytes copied across the guest boundary.
//!
//! The host knows the store it lives in only through `HostView` (as
//! wasmtime-wasi knows its embedder through `WasiView`), and links itself
//! with one `add_to_linker`. One file per WIT interface holds both of its
//! halves: the generated trait impls, and the functions linked by hand
//! over them where the generated signatures cost an allocation and a copy
//! per call (measured against their transition floors by `torvyn bench`):
//!
//! - `types.rs` (`torvyn:streaming/types`): `buffer.read` and `read-all`
//!   return the buffer's bytes as a shared `Bytes` slice, copied once, into
//!   the guest; the flow context's identifiers return its shared strings;
//!   `mutable-buffer.write`, `append` and `set-content-type` read the
//!   guest's bytes where they lie in its memory;
//! - `buffer_allocator.rs` (`torvyn:streaming/buffer-allocator`);
//! - `capability_query.rs` (`torvyn:capabilities/capability-query`):
//!   `has-capability` reads the name where it lies.
//!
//! Both halves do their work through the same [`HostState`] methods
//! (`state.rs`): one body per function. `resources.rs` holds the resource
//! types, `totals.rs` the engine-wide counters, `limits.rs` the caps.

mod buffer_allocator;
mod capabilities;
mod capability_query;
mod limits;
mod linker;
mod resources;
mod state;
#[cfg(test)]
mod tests;
mod totals;
mod types;
mod view;

pub use capabilities::Capabilities;
pub(crate) use limits::cut_guest_message;
pub use limits::{
    BUFFER_OVERHEAD_BYTES, HOST_COPY_BYTES_PER_FUEL, MAX_CAPABILITY_NAME_BYTES,
    MAX_CONTENT_TYPE_BYTES, MAX_GUEST_MESSAGE_BYTES,
};
pub(crate) use linker::{add_to_linker, add_to_linker_instance};
pub use resources::{Buffer, FlowContext, MutableBuffer};
pub use state::HostState;
pub use totals::{CopyStats, EngineTotals};
pub(crate) use view::HostView;
