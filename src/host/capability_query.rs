//! `torvyn:capabilities/capability-query`: which capabilities the engine
//! grants, and the log of what the guest asked. Its own state: a query
//! touches no buffer, handle or budget.

use wasmtime::component::{HasSelf, LinkerInstance, WasmStr};
use wasmtime::StoreContextMut;

use super::capabilities::Capabilities;
use super::limits::{cut, MAX_CAPABILITY_NAME_BYTES};
use super::HostView;
use crate::bindings::capability_query;

impl capability_query::Host for Capabilities {
    // Linked directly (below, reading the name where it lies); this
    // serves the same through the generated signature.
    fn has_capability(&mut self, name: String) -> wasmtime::Result<bool> {
        let kept = cut(&name, MAX_CAPABILITY_NAME_BYTES);
        self.log(kept, kept.len() < name.len());
        Ok(self.granted(&name))
    }
}

/// Links `torvyn:capabilities/capability-query` into `instance`: the
/// generated function, then the direct `has-capability` over it (its
/// linker must allow shadowing). On its own state: a query needs nothing
/// else of the host's.
pub(super) fn add_to_linker_instance<T: HostView>(
    capabilities: &mut LinkerInstance<'_, T>,
) -> wasmtime::Result<()> {
    capability_query::add_to_linker_instance::<T, HasSelf<Capabilities>>(capabilities, |state| {
        &mut state.host().capabilities
    })?;
    capabilities.func_wrap(
        "has-capability",
        |mut store: StoreContextMut<'_, T>, (name,): (WasmStr,)| {
            // The whole name is looked up where it lies; only the part the
            // log keeps (at most 256 bytes) is copied out.
            let mut kept = [0u8; MAX_CAPABILITY_NAME_BYTES];
            let (granted, kept_len, cut_off) = {
                let name = name.to_str(&store)?;
                let granted = store.data().host_ref().capabilities.granted(&name);
                let short = cut(&name, MAX_CAPABILITY_NAME_BYTES);
                kept[..short.len()].copy_from_slice(short.as_bytes());
                (granted, short.len(), short.len() < name.len())
            };
            let kept = std::str::from_utf8(&kept[..kept_len]).expect("copied from a `str`");
            store.data_mut().host().capabilities.log(kept, cut_off);
            Ok((granted,))
        },
    )
}
