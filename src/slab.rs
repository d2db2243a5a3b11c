//! A typed handle table for the host's own resources.
//!
//! wasmtime's `ResourceTable` boxes every entry; buffers come and go on
//! every element, so they live here instead: entries inline in a vector,
//! freed slots reused, no allocation once warm. The handle's `rep` is the
//! slot index.

use std::marker::PhantomData;

use wasmtime::component::Resource;

/// Entries of type `T`, addressed by `Resource<T>` handles.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<u32>,
    live: usize,
    _type: PhantomData<T>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            live: 0,
            _type: PhantomData,
        }
    }
}

impl<T: 'static> Slab<T> {
    /// Stores `value` and returns an owned handle to it.
    #[inline]
    pub(crate) fn push(&mut self, value: T) -> wasmtime::Result<Resource<T>> {
        let rep = match self.free.pop() {
            Some(rep) => {
                self.entries[rep as usize] = Some(value);
                rep
            }
            None => {
                let rep = u32::try_from(self.entries.len())
                    .map_err(|_| wasmtime::format_err!("handle table full"))?;
                self.entries.push(Some(value));
                rep
            }
        };
        self.live += 1;
        Ok(Resource::new_own(rep))
    }

    /// The error for a handle with no entry. Cold and out of line: every
    /// host function looks handles up, and the formatting inlined at each
    /// lookup sat between the hot blocks of the callers.
    #[cold]
    #[inline(never)]
    fn missing(rep: u32) -> wasmtime::Error {
        wasmtime::format_err!(
            "unknown {} handle {rep}",
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("resource")
        )
    }

    /// The entry behind `handle`.
    #[inline]
    pub(crate) fn get(&self, handle: &Resource<T>) -> wasmtime::Result<&T> {
        let rep = handle.rep();
        self.entries
            .get(rep as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| Self::missing(rep))
    }

    /// The entry behind `handle`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, handle: &Resource<T>) -> wasmtime::Result<&mut T> {
        let rep = handle.rep();
        self.entries
            .get_mut(rep as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| Self::missing(rep))
    }

    /// Removes the entry behind `handle` and returns it.
    #[inline]
    pub(crate) fn delete(&mut self, handle: Resource<T>) -> wasmtime::Result<T> {
        let rep = handle.rep();
        let value = self
            .entries
            .get_mut(rep as usize)
            .and_then(Option::take)
            .ok_or_else(|| Self::missing(rep))?;
        self.free.push(rep);
        self.live -= 1;
        Ok(value)
    }

    /// Keeps the entries for which `keep(rep, entry)` says so, deleting
    /// the others (their slots become free).
    /// Deletes the entry of `handle` in place (no move out of the table),
    /// returning what `last` reads from it first.
    #[inline]
    pub(crate) fn delete_with<R>(
        &mut self,
        handle: Resource<T>,
        last: impl FnOnce(&T) -> R,
    ) -> wasmtime::Result<R> {
        let rep = handle.rep();
        let slot = self
            .entries
            .get_mut(rep as usize)
            .filter(|slot| slot.is_some())
            .ok_or_else(|| Self::missing(rep))?;
        let read = last(slot.as_ref().expect("checked above"));
        *slot = None;
        self.free.push(rep);
        self.live -= 1;
        Ok(read)
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u32, &T) -> bool) {
        for (rep, slot) in self.entries.iter_mut().enumerate() {
            let rep = rep as u32;
            if slot.as_ref().is_some_and(|entry| !keep(rep, entry)) {
                *slot = None;
                self.free.push(rep);
                self.live -= 1;
            }
        }
    }

    /// Number of live entries.
    pub(crate) fn len(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_stale_handles_refused() {
        let mut slab = Slab::<String>::default();
        let a = slab.push("a".into()).unwrap();
        let b = slab.push("b".into()).unwrap();
        let a_rep = a.rep();
        assert_eq!(slab.delete(a).unwrap(), "a");
        assert!(slab.get(&Resource::new_borrow(a_rep)).is_err());
        let c = slab.push("c".into()).unwrap();
        assert_eq!(c.rep(), a_rep, "the freed slot is reused");
        assert_eq!(slab.get(&b).unwrap(), "b");
        assert_eq!(slab.len(), 2);
        let message = slab.delete(Resource::new_own(99)).unwrap_err().to_string();
        assert!(message.contains("unknown String handle 99"), "{message}");
    }
}
