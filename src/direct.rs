//! Contract host functions linked by hand, where the generated signatures
//! cost an allocation and a copy per call (measured against their
//! transition floors by `torvyn bench`, README "Transition floors"):
//!
//! - `buffer.read` and `read-all` return the buffer's bytes as a shared
//!   `Bytes` slice, which the canonical ABI copies once, into the guest
//!   (the generated `Vec<u8>` result was an allocation and a second copy);
//! - the flow context's `trace-id`, `span-id` and `flow-id` return its shared
//!   strings (the generated `String` results were an allocation each);
//! - `mutable-buffer.write`, `append`, `set-content-type` and
//!   `has-capability` read the guest's bytes where they lie in its memory
//!   (the generated `Vec<u8>`/`String` parameters were lifted into a fresh
//!   allocation first).
//!
//! They shadow the generated functions in every linker the engine makes
//! (its own, and those serving the contract under another version), and
//! do their work through the same [`HostState`] methods as the generated
//! trait impls: one body per function.

use wasmtime::component::{LinkerInstance, Resource, WasmList, WasmStr};
use wasmtime::StoreContextMut;

use crate::bindings::types::BufferError;
use crate::host::{
    cut, write_into, Buffer, FlowContext, FlowId, HostState, MutableBuffer, WriteAt,
    MAX_CAPABILITY_NAME_BYTES, MAX_CONTENT_TYPE_BYTES,
};
use crate::store::StoreState;

type Context<'a> = StoreContextMut<'a, StoreState>;
type ReadResult = wasmtime::Result<(bytes::Bytes,)>;
type TextResult = wasmtime::Result<(std::sync::Arc<str>,)>;
type WriteResult = wasmtime::Result<(Result<(), BufferError>,)>;

/// Links the direct functions of `torvyn:streaming/types` into `types`,
/// an instance the generated functions were linked into (its linker must
/// allow shadowing).
pub(crate) fn shadow_types(types: &mut LinkerInstance<'_, StoreState>) -> wasmtime::Result<()> {
    types.func_wrap(
        "[method]buffer.read",
        |mut store: Context<'_>, (this, offset, len): (Resource<Buffer>, u64, u64)| -> ReadResult {
            Ok((store.data_mut().host.read_shared(&this, offset, len)?,))
        },
    )?;
    types.func_wrap(
        "[method]buffer.read-all",
        |mut store: Context<'_>, (this,): (Resource<Buffer>,)| -> ReadResult {
            Ok((store.data_mut().host.read_shared(&this, 0, u64::MAX)?,))
        },
    )?;
    for (name, which) in [
        ("[method]flow-context.trace-id", FlowId::Trace),
        ("[method]flow-context.span-id", FlowId::Span),
        ("[method]flow-context.flow-id", FlowId::Flow),
    ] {
        types.func_wrap(
            name,
            move |store: Context<'_>, (this,): (Resource<FlowContext>,)| -> TextResult {
                Ok((store.data().host.flow_identifier(&this, which)?,))
            },
        )?;
    }
    types.func_wrap(
        "[method]mutable-buffer.write",
        |store: Context<'_>,
         (this, offset, bytes): (Resource<MutableBuffer>, u64, WasmList<u8>)| {
            write_guest_bytes(store, &this, WriteAt::Offset(offset), &bytes)
        },
    )?;
    types.func_wrap(
        "[method]mutable-buffer.append",
        |store: Context<'_>, (this, bytes): (Resource<MutableBuffer>, WasmList<u8>)| {
            write_guest_bytes(store, &this, WriteAt::End, &bytes)
        },
    )?;
    types.func_wrap(
        "[method]mutable-buffer.set-content-type",
        |mut store: Context<'_>, (this, text): (Resource<MutableBuffer>, WasmStr)| {
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
            store.data_mut().host.set_content_type_str(&this, text)
        },
    )?;
    Ok(())
}

/// Links the direct `has-capability` into `capabilities` (its linker must
/// allow shadowing).
pub(crate) fn shadow_capabilities(
    capabilities: &mut LinkerInstance<'_, StoreState>,
) -> wasmtime::Result<()> {
    capabilities.func_wrap(
        "has-capability",
        |mut store: Context<'_>, (name,): (WasmStr,)| {
            // The whole name is looked up where it lies; only the part the
            // log keeps (at most 256 bytes) is copied out.
            let mut kept = [0u8; MAX_CAPABILITY_NAME_BYTES];
            let (granted, kept_len, cut_off) = {
                let name = name.to_str(&store)?;
                let granted = store.data().host.capabilities.granted(&name);
                let short = cut(&name, MAX_CAPABILITY_NAME_BYTES);
                kept[..short.len()].copy_from_slice(short.as_bytes());
                (granted, short.len(), short.len() < name.len())
            };
            let kept = std::str::from_utf8(&kept[..kept_len]).expect("copied from a `str`");
            store.data_mut().host.capabilities.log(kept, cut_off);
            Ok((granted,))
        },
    )
}

/// `write`/`append`: the buffer's vector is lent out, the guest's bytes are
/// copied into it straight from guest memory, and it is given back.
fn write_guest_bytes(
    mut store: Context<'_>,
    this: &Resource<MutableBuffer>,
    at: WriteAt,
    bytes: &WasmList<u8>,
) -> WriteResult {
    let (mut data, offset) = match store.data_mut().host.open_write(this, at, bytes.len())? {
        Ok(opened) => opened,
        Err(error) => return Ok((Err(error),)),
    };
    write_into(&mut data, offset, bytes.as_le_slice(&store));
    store.data_mut().host.close_write(this, data)?;
    Ok((Ok(()),))
}
