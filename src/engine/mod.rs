//! The engine: compiles components (with a content-addressed cache),
//! pre-instantiates them once, and creates instances.
//!
//! `backend.rs` holds the [`WasmEngine`] trait every backend implements;
//! `wasmtime_engine.rs` the wasmtime backend (its configuration and
//! linker); `compiler.rs` compiling through the caches; `paths.rs` which
//! call path serves each export; `ticker.rs` the epoch clock; `pool.rs`
//! the pooling allocator's check against the kernel's map limit.

mod backend;
mod compiler;
mod paths;
mod pool;
mod ticker;
mod wasmtime_engine;

pub use backend::WasmEngine;
pub use compiler::CacheStats;
pub use wasmtime_engine::WasmtimeEngine;
