//! `torvyn:streaming/buffer-allocator`: the guest's new mutable buffers,
//! charged to its budget.

use wasmtime::component::{HasSelf, LinkerInstance, Resource};

use super::resources::Contents;
use super::{Buffer, HostState, HostView, MutableBuffer};
use crate::bindings::buffer_allocator;
use crate::bindings::types::BufferError;

/// Links `torvyn:streaming/buffer-allocator` into `instance`.
pub(super) fn add_to_linker_instance<T: HostView>(
    instance: &mut LinkerInstance<'_, T>,
) -> wasmtime::Result<()> {
    buffer_allocator::add_to_linker_instance::<T, HasSelf<HostState>>(instance, T::host)
}

impl buffer_allocator::Host for HostState {
    fn allocate(
        &mut self,
        capacity_hint: u64,
    ) -> wasmtime::Result<Result<Resource<MutableBuffer>, BufferError>> {
        // The budget bounds the request; memory comes with the first write
        // (which reserves the hint, up to `EAGER_RESERVE_BYTES`).
        self.push_mutable(capacity_hint, Contents::Owned(Vec::new()))
    }

    fn clone_into_mutable(
        &mut self,
        source: Resource<Buffer>,
    ) -> wasmtime::Result<Result<Resource<MutableBuffer>, BufferError>> {
        let bytes = self.buffers.get(&source)?.bytes.clone();
        self.push_mutable(bytes.len() as u64, Contents::Shared(bytes))
    }
}
