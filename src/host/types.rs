//! `torvyn:streaming/types`: buffers, mutable buffers and flow contexts.
//! The generated host traits, each a thin forward to [`HostState`], and
//! the functions linked by hand over them (`read`, `read-all`, the flow
//! identifiers, `write`, `append`, `set-content-type`): the generated
//! signatures cost an allocation and a copy per call there.

use std::time::Instant;

use wasmtime::component::{HasSelf, LinkerInstance, Resource, WasmList, WasmStr};
use wasmtime::StoreContextMut;

use super::limits::MAX_CONTENT_TYPE_BYTES;
use super::resources::{write_into, FlowId, WriteAt};
use super::{Buffer, FlowContext, HostState, HostView, MutableBuffer};
use crate::bindings::types::{self, BufferError};

type ReadResult = wasmtime::Result<(bytes::Bytes,)>;
type TextResult = wasmtime::Result<(std::sync::Arc<str>,)>;
type WriteResult = wasmtime::Result<(Result<(), BufferError>,)>;

/// Links `torvyn:streaming/types` into `instance`: the generated functions,
/// then the direct ones over them (its linker must allow shadowing).
pub(super) fn add_to_linker_instance<T: HostView>(
    instance: &mut LinkerInstance<'_, T>,
) -> wasmtime::Result<()> {
    types::add_to_linker_instance::<T, HasSelf<HostState>>(instance, T::host)?;
    shadow(instance)
}

impl types::Host for HostState {}

impl types::HostBuffer for HostState {
    fn size(&mut self, this: Resource<Buffer>) -> wasmtime::Result<u64> {
        Ok(self.buffers.get(&this)?.bytes.len() as u64)
    }

    fn content_type(&mut self, this: Resource<Buffer>) -> wasmtime::Result<String> {
        Ok(self.buffers.get(&this)?.content_type.clone())
    }

    // `read` and `read-all` are linked directly (below, returning shared
    // bytes); these serve the same through the generated
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
    // `write`, `append` and `set-content-type` are linked directly
    // (below, reading the guest's bytes where they lie); these
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
    // The three identifier getters are linked directly
    // (below, returning the shared strings); these serve the same
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

/// The direct functions, over the generated ones in `types`.
fn shadow<T: HostView>(types: &mut LinkerInstance<'_, T>) -> wasmtime::Result<()> {
    types.func_wrap(
        "[method]buffer.read",
        |mut store: StoreContextMut<'_, T>,
         (this, offset, len): (Resource<Buffer>, u64, u64)|
         -> ReadResult { Ok((store.data_mut().host().read_shared(&this, offset, len)?,)) },
    )?;
    types.func_wrap(
        "[method]buffer.read-all",
        |mut store: StoreContextMut<'_, T>, (this,): (Resource<Buffer>,)| -> ReadResult {
            Ok((store.data_mut().host().read_shared(&this, 0, u64::MAX)?,))
        },
    )?;
    for (name, which) in [
        ("[method]flow-context.trace-id", FlowId::Trace),
        ("[method]flow-context.span-id", FlowId::Span),
        ("[method]flow-context.flow-id", FlowId::Flow),
    ] {
        types.func_wrap(
            name,
            move |mut store: StoreContextMut<'_, T>,
                  (this,): (Resource<FlowContext>,)|
                  -> TextResult {
                Ok((store.data_mut().host().flow_identifier(&this, which)?,))
            },
        )?;
    }
    types.func_wrap(
        "[method]mutable-buffer.write",
        |store: StoreContextMut<'_, T>,
         (this, offset, bytes): (Resource<MutableBuffer>, u64, WasmList<u8>)| {
            write_guest_bytes(store, &this, WriteAt::Offset(offset), &bytes)
        },
    )?;
    types.func_wrap(
        "[method]mutable-buffer.append",
        |store: StoreContextMut<'_, T>, (this, bytes): (Resource<MutableBuffer>, WasmList<u8>)| {
            write_guest_bytes(store, &this, WriteAt::End, &bytes)
        },
    )?;
    types.func_wrap(
        "[method]mutable-buffer.set-content-type",
        |mut store: StoreContextMut<'_, T>, (this, text): (Resource<MutableBuffer>, WasmStr)| {
            // Checked, then copied to the stack (at most 256 bytes), so the
            // host state can be changed while nothing borrows guest memory.
            let mut copy = [0u8; MAX_CONTENT_TYPE_BYTES];
            let len = {
                let text = text.to_str(&store)?;
                HostState::check_content_type_len(text.len())?;
                copy[..text.len()].copy_from_slice(text.as_bytes());
                text.len()
            };
            let text = std::str::from_utf8(&copy[..len]).expect("copied from a `str`");
            store.data_mut().host().set_content_type_str(&this, text)
        },
    )?;
    Ok(())
}

/// `write`/`append`: the buffer's vector is lent out, the guest's bytes are
/// copied into it straight from guest memory, and it is given back.
fn write_guest_bytes<T: HostView>(
    mut store: StoreContextMut<'_, T>,
    this: &Resource<MutableBuffer>,
    at: WriteAt,
    bytes: &WasmList<u8>,
) -> WriteResult {
    let (mut data, offset) = match store.data_mut().host().open_write(this, at, bytes.len())? {
        Ok(opened) => opened,
        Err(error) => return Ok((Err(error),)),
    };
    write_into(&mut data, offset, bytes.as_le_slice(&store));
    store.data_mut().host().close_write(this, data)?;
    Ok((Ok(()),))
}
