//! Fiber stacks for [`InstanceDensity::Dense`](crate::InstanceDensity::Dense).
//!
//! Every store that has made an async call keeps a fiber stack for its next
//! one. wasmtime's own stacks have a guard page below them, so each costs
//! the process two memory mappings, and the kernel's `vm.max_map_count`
//! (65,530 by default) caps live async instances near 32,000. These stacks
//! are plain anonymous mappings without a guard page: adjacent ones merge
//! into one mapping, and only the pages a call touches take memory.
//!
//! What the guard page would catch: wasm code cannot reach it (every
//! function checks its stack use against `max_stack_bytes` and traps
//! first); only host code running on the fiber past the headroom above
//! that, [`HOST_HEADROOM_BYTES`], could. The engine's host functions and
//! the canonical ABI's lifting recurse at most as deep as a type is nested.

use std::ops::Range;

use wasmtime::{StackCreator, StackMemory};

/// Native stack left for host code above the wasm stack limit.
pub(crate) const HOST_HEADROOM_BYTES: usize = 1 << 20;

/// Makes guard-less fiber stacks.
pub(crate) struct MergeableStacks;

// SAFETY: `new_stack` returns page-aligned, zero-filled, writable memory of
// the requested size (fresh anonymous mappings are zeroed by the kernel).
unsafe impl StackCreator for MergeableStacks {
    fn new_stack(&self, size: usize, _zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            wasmtime::bail!(
                "cannot map a {size}-byte fiber stack: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(Box::new(MappedStack {
            base: base as usize,
            size,
        }))
    }
}

/// One stack mapping, unmapped on drop.
struct MappedStack {
    base: usize,
    size: usize,
}

// SAFETY: the mapping is owned by this value alone and lives until drop;
// `top` is its (page-aligned) end and `range` all of it.
unsafe impl StackMemory for MappedStack {
    fn top(&self) -> *mut u8 {
        (self.base + self.size) as *mut u8
    }

    fn range(&self) -> Range<usize> {
        self.base..self.base + self.size
    }

    fn guard_range(&self) -> Range<*mut u8> {
        // No guard page (see the module docs): an empty range.
        self.base as *mut u8..self.base as *mut u8
    }
}

impl Drop for MappedStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new_stack`, once.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.size);
        }
    }
}

/// The kernel's limit on memory mappings per process, if it can be read.
pub(crate) fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}
