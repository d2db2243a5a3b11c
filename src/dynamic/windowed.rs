//! The call-time half of the dynamic path for `torvyn:windowing`: the
//! state and window arguments written into the `Val`s bound once, the
//! results read into the typed bindings' types.

use wasmtime::component::Val;
use wasmtime::Store;

use super::call::{fill, DynamicExport};
use super::decode::{decode_bytes, decode_output, decode_result, set_bytes};
use super::plan::Slot;
use crate::bindings::types::{OutputElement, ProcessError};
use crate::gate::Gate;
use crate::invoker::Element;
use crate::store::StoreState;
use crate::window::Window;

/// What a call of the dynamic path gives: `None` when not exported.
type Called<T> = Option<wasmtime::Result<Result<T, ProcessError>>>;

impl DynamicExport {
    /// `windowed-aggregator.fold`.
    pub(crate) async fn fold<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        state: Option<&[u8]>,
        element: &Element,
    ) -> Called<Vec<u8>> {
        let f = self.func("fold")?;
        if let [first, second] = f.params.as_mut_slice() {
            *first = Val::Option(state.map(|state| {
                let mut list = Val::List(Vec::new());
                set_bytes(&mut list, state);
                Box::new(list)
            }));
            if let Some(slots) = &f.plan.element {
                fill(slots, second, element);
            }
        }
        let result = f
            .call::<G>(store)
            .await
            .and_then(|v| decode_result(store, v, decode_bytes));
        // The state's bytes are not kept between calls.
        if let Some(first) = f.params.first_mut() {
            *first = Val::Option(None);
        }
        Some(result)
    }

    /// `windowed-aggregator.merge`.
    pub(crate) async fn merge<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        earlier: &[u8],
        later: &[u8],
    ) -> Called<Vec<u8>> {
        let f = self.func("merge")?;
        if let [first, second] = f.params.as_mut_slice() {
            set_bytes(first, earlier);
            set_bytes(second, later);
        }
        let result = f
            .call::<G>(store)
            .await
            .and_then(|v| decode_result(store, v, decode_bytes));
        for param in &mut f.params {
            *param = Val::List(Vec::new());
        }
        Some(result)
    }

    /// `windowed-aggregator.emit`.
    pub(crate) async fn emit<G: Gate>(
        &mut self,
        store: &mut Store<StoreState>,
        key: &str,
        window: Window,
        state: &[u8],
    ) -> Called<OutputElement> {
        let f = self.func("emit")?;
        if let [first, second] = f.params.as_mut_slice() {
            if let Some(slots) = &f.plan.window {
                fill_window(slots, first, key, window);
            }
            set_bytes(second, state);
        }
        let result = f.call::<G>(store).await.and_then(|v| {
            decode_result(store, v, |store, ok| match ok {
                Some(output) => decode_output(store, output),
                None => Err(wasmtime::format_err!("emit returned no output element")),
            })
        });
        if let Some(state) = f.params.get_mut(1) {
            *state = Val::List(Vec::new());
        }
        Some(result)
    }
}

/// Writes `key`'s `window` into the argument built from its plan.
fn fill_window(slots: &[(String, Slot)], value: &mut Val, key: &str, window: Window) {
    let Val::Record(fields) = value else {
        return;
    };
    for ((_, slot), (_, value)) in slots.iter().zip(fields.iter_mut()) {
        match (slot, value) {
            (Slot::Key, Val::String(text)) => {
                text.clear();
                text.push_str(key);
            }
            (Slot::Start, value) => *value = Val::S64(window.start_ms()),
            (Slot::End, value) => *value = Val::S64(window.end_ms()),
            _ => {}
        }
    }
}
