//! The scope of one guest call: what every contract function needs around
//! the guest, on either gate.

use bytes::Bytes;
use wasmtime::component::Resource;
use wasmtime::Store;

use crate::bindings::types::{ElementMetaParam, StreamElement};
use crate::component::CompiledComponent;
use crate::error::{Error, Result};
use crate::exports::Exports;
use crate::host::Buffer;
use crate::invoker::Element;
use crate::store::StoreState;

use super::failure::{classify, site};

/// Per-instance bookkeeping of calls (kept by the instance, lent to each
/// call's scope).
pub(super) struct CallState {
    /// Epoch ticks each call may run ([`NO_DEADLINE`](crate::store::NO_DEADLINE) without a deadline).
    pub(super) call_ticks: u64,
    /// Epoch ticks between the yields of an async call.
    pub(super) slice_ticks: u64,
    pub(super) poisoned: Option<String>,
    pub(super) fuel_consumed: u64,
    pub(super) fuel_total: u64,
}

/// The scope of one guest call, over disjoint parts of the instance. It
/// must be closed with [`Call::finish`]; dropped open, it means the call's
/// future was dropped mid-call: the instance is poisoned as cancelled and
/// what its guest held is released.
pub(crate) struct Call<'a> {
    pub(super) function: &'a str,
    pub(super) component: &'a CompiledComponent,
    pub(crate) store: &'a mut Store<StoreState>,
    pub(crate) exports: &'a mut Exports,
    pub(super) state: &'a mut CallState,
    pub(super) input: u32,
    pub(super) flow: u32,
    pub(super) lent: bool,
    pub(super) open: bool,
}

impl Call<'_> {
    /// The element as the guest receives it: the lent payload and flow
    /// context as borrows, the content type borrowed from `element`.
    pub(crate) fn stream_element<'e>(&self, element: &'e Element) -> StreamElement<'e> {
        StreamElement {
            meta: ElementMetaParam {
                sequence: element.meta.sequence,
                timestamp_ns: element.meta.timestamp_ns,
                content_type: &element.meta.content_type,
            },
            payload: Resource::new_borrow(self.input),
            context: Resource::new_borrow(self.flow),
        }
    }

    /// Closes the scope: records fuel, takes the payload back, and maps a
    /// failure (poisoning the instance) or a missing export.
    pub(crate) fn finish<R>(mut self, result: Option<wasmtime::Result<R>>) -> Result<R> {
        self.open = false;
        let limits = self.component.limits();
        if let Some(fuel) = limits.fuel_per_call {
            let guest = fuel.saturating_sub(self.store.get_fuel().unwrap_or(0));
            self.state.fuel_consumed = guest + self.store.data().host.copy_fuel_used();
            self.state.fuel_total += self.state.fuel_consumed;
        }
        self.unlend();
        match result {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(self.failed(error)),
            None => Err(self.not_exported()),
        }
    }

    /// Maps a failed call (poisoning the instance). Cold and out of line,
    /// as every failure path: the hot path stays a few dense cache lines.
    #[cold]
    #[inline(never)]
    fn failed(&mut self, error: wasmtime::Error) -> Error {
        let error = classify(
            self.store,
            self.component.limits(),
            site(self.component.name(), self.function),
            error,
        );
        self.poison(error.to_string());
        error
    }

    #[cold]
    #[inline(never)]
    fn not_exported(&self) -> Error {
        Error::NotExported {
            component: self.component.name().to_string(),
            // (Only contract functions are dispatched this way.)
            interface: crate::contract::interface_of(self.function)
                .map_or_else(|| self.function.to_string(), |i| i.to_string()),
        }
    }

    /// Releases the caller's payload right away instead of at the next call.
    fn unlend(&mut self) {
        if std::mem::take(&mut self.lent) {
            let input = Resource::<Buffer>::new_borrow(self.input);
            let _ = self
                .store
                .data_mut()
                .host()
                .set_buffer_bytes(&input, &Bytes::new());
        }
    }

    /// The call's future was dropped mid-call.
    #[cold]
    #[inline(never)]
    fn cancelled(&mut self) {
        let site = site(self.component.name(), self.function);
        self.unlend();
        self.poison(format!(
            "{site}: the call was cancelled before it returned (its future was dropped)"
        ));
    }

    #[cold]
    #[inline(never)]
    fn poison(&mut self, cause: String) {
        tracing::warn!(
            component = self.component.name(),
            function = self.function,
            %cause,
            "instance poisoned"
        );
        self.state.poisoned = Some(cause);
        self.store
            .data_mut()
            .host
            .release_guest_held(self.input, self.flow);
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        // A finished call's charge is published by its entry once the
        // outputs are taken (`settle`); a cancelled one's by the poisoning,
        // which releases what the guest held (`release_guest_held`).
        if self.open {
            self.cancelled();
        }
    }
}
