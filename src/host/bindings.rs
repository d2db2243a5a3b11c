//! The generated host traits of the contract's imports, each a thin
//! forward to [`HostState`].

use std::time::Instant;

use wasmtime::component::Resource;

use crate::bindings::buffer_allocator;
use crate::bindings::types::{self, BufferError};

use super::*;

impl types::Host for HostState {}

impl types::HostBuffer for HostState {
    fn size(&mut self, this: Resource<Buffer>) -> wasmtime::Result<u64> {
        Ok(self.buffers.get(&this)?.bytes.len() as u64)
    }

    fn content_type(&mut self, this: Resource<Buffer>) -> wasmtime::Result<String> {
        Ok(self.buffers.get(&this)?.content_type.clone())
    }

    // The engine links `read` and `read-all` directly (`crate::direct`,
    // returning shared bytes); these serve the same through the generated
    // signatures.
    fn read(&mut self, this: Resource<Buffer>, offset: u64, len: u64) -> wasmtime::Result<Vec<u8>> {
        Ok(self.read_shared(&this, offset, len)?.to_vec())
    }

    fn read_all(&mut self, this: Resource<Buffer>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.read_shared(&this, 0, u64::MAX)?.to_vec())
    }

    fn drop(&mut self, this: Resource<Buffer>) -> wasmtime::Result<()> {
        let charged = self.buffers.delete_with(this, |buffer| buffer.charged)?;
        self.release(charged);
        Ok(())
    }
}

impl types::HostMutableBuffer for HostState {
    // The engine links `write`, `append` and `set-content-type` directly
    // (`crate::direct`, reading the guest's bytes where they lie); these
    // serve the same through the generated signatures.
    fn write(
        &mut self,
        this: Resource<MutableBuffer>,
        offset: u64,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), BufferError>> {
        self.write_from(&this, WriteAt::Offset(offset), &bytes)
    }

    fn append(
        &mut self,
        this: Resource<MutableBuffer>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), BufferError>> {
        self.write_from(&this, WriteAt::End, &bytes)
    }

    fn size(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<u64> {
        Ok(self.mutable_buffers.get(&this)?.data.len() as u64)
    }

    fn capacity(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<u64> {
        Ok(self.mutable_buffers.get(&this)?.capacity)
    }

    fn set_content_type(
        &mut self,
        this: Resource<MutableBuffer>,
        content_type: String,
    ) -> wasmtime::Result<()> {
        self.set_content_type_str(&this, &content_type)
    }

    fn freeze(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<Resource<Buffer>> {
        let buffer = self.mutable_buffers.get_mut(&this)?;
        if buffer.spent {
            // Its bytes and budget charge already went to the first freeze.
            wasmtime::bail!("mutable-buffer.freeze: the buffer was frozen already");
        }
        // The budget charge moves with the bytes to the frozen buffer.
        let frozen = Buffer {
            bytes: buffer.data.take(),
            content_type: std::mem::take(&mut buffer.content_type),
            charged: std::mem::take(&mut buffer.charged),
        };
        buffer.spent = true;
        self.buffers.push(frozen)
    }

    fn drop(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<()> {
        let charged = self
            .mutable_buffers
            .delete_with(this, |buffer| buffer.charged)?;
        self.release(charged);
        Ok(())
    }
}

impl types::HostFlowContext for HostState {
    // The engine links the three identifier getters directly
    // (`crate::direct`, returning the shared strings); these serve the same
    // through the generated signatures.
    fn trace_id(&mut self, this: Resource<FlowContext>) -> wasmtime::Result<String> {
        Ok(self.flow_identifier(&this, FlowId::Trace)?.to_string())
    }

    fn span_id(&mut self, this: Resource<FlowContext>) -> wasmtime::Result<String> {
        Ok(self.flow_identifier(&this, FlowId::Span)?.to_string())
    }

    fn deadline_ns(&mut self, this: Resource<FlowContext>) -> wasmtime::Result<u64> {
        let remaining = self.flows.get(&this)?.deadline.map(|deadline| {
            // A passed deadline reports 1 ns, since 0 means "no deadline".
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_nanos();
            u64::try_from(left).unwrap_or(u64::MAX).max(1)
        });
        Ok(remaining.unwrap_or(0))
    }

    fn flow_id(&mut self, this: Resource<FlowContext>) -> wasmtime::Result<String> {
        Ok(self.flow_identifier(&this, FlowId::Flow)?.to_string())
    }

    fn drop(&mut self, this: Resource<FlowContext>) -> wasmtime::Result<()> {
        self.flows.delete(this)?;
        Ok(())
    }
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
