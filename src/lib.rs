//! # torvyn-engine
//!
//! Runs WebAssembly components as stream-processing stages: sources
//! (`pull`), processors (`process`), sinks (`push`/`complete`), filters,
//! routers and aggregators, with `init`/`teardown` lifecycle, against the
//! `torvyn:streaming@0.1.0` contract in `wit/`.
//!
//! - [`WasmtimeEngine`] compiles components (content-addressed cache in
//!   memory and on disk), pre-instantiates them and creates instances.
//! - Each [`WasmtimeInstance`] implements [`ComponentInvoker`] on typed
//!   bindings generated at build time from `wit/`: no `Val` marshaling.
//! - The host side of the contract ([`host`]) is real: buffers live in a
//!   per-instance resource table, with a byte budget and copy accounting.
//! - Limits contain untrusted code: fuel, wall-clock deadlines, memory and
//!   table limits; a failed instance is poisoned, never reused.
//! - [`mock::MockEngine`] stands in for the real engine in downstream tests.
//!
//! ```
//! use torvyn_engine::{ComponentInvoker, Element, EngineConfig, Pipeline, WasmEngine, WasmtimeEngine};
//!
//! # fn main() -> Result<(), torvyn_engine::Error> {
//! let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
//! # let source_bytes = torvyn_fixtures::counting_source();
//! # let processor_bytes = torvyn_fixtures::uppercase_processor();
//! # let sink_bytes = torvyn_fixtures::recording_sink();
//! let source = engine.compile("source", &source_bytes)?;
//! let upper = engine.compile("upper", &processor_bytes)?;
//! let sink = engine.compile("sink", &sink_bytes)?;
//!
//! let mut pipeline = Pipeline::new(
//!     engine.instantiate(&source)?,
//!     vec![engine.instantiate(&upper)?],
//!     engine.instantiate(&sink)?,
//! )?;
//! pipeline.init(r#"{"count": 3}"#)?;
//! let report = pipeline.run(|element| println!("{:?}", element.payload))?;
//! assert_eq!(report.delivered, 3);
//!
//! // Or call a stage directly:
//! let mut upper = engine.instantiate(&upper)?;
//! let out = upper.process(&Element::new(0, "text/plain", "hello"))?;
//! # assert!(matches!(out, torvyn_engine::ProcessOutcome::Emit(ref e) if &e.payload[..] == b"HELLO"));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod bindings;
mod cache;
mod calls;
mod component;
mod config;
pub mod connect;
mod contract;
mod dynamic;
mod engine;
mod error;
mod exports;
pub mod flow;
mod gate;
pub mod host;
mod imports;
mod instance;
mod interfaces;
mod invoke;
mod invoker;
pub mod mock;
mod slab;
mod stacks;
mod store;
pub mod window;

pub use component::CompiledComponent;
pub use config::{
    Allocation, EngineConfig, EngineConfigBuilder, InstanceDensity, Limits, NodeLimits, WasiGrants,
};
pub use engine::{CacheStats, WasmEngine, WasmtimeEngine};
pub use error::{CallSite, Error, ErrorKind, GuestError, Result};
pub use flow::{Flow, FlowReport, FlowSpec, Pipeline, PipelineReport};
pub use imports::ImportProvider;
pub use instance::WasmtimeInstance;
pub use interfaces::{classify_export, CallPath, ExportInfo, Interface, Version, CONTRACT_VERSION};
pub use invoker::{
    AsyncComponentInvoker, Backpressure, ComponentInvoker, Element, ElementMeta, ProcessOutcome,
};
pub use store::{HostImports, StoreState};

/// The attribute the connector traits are written with: implement
/// [`connect::SourceConnector`] and [`connect::SinkConnector`] under
/// `#[torvyn_engine::async_trait]`, with no dependency of your own.
pub use async_trait::async_trait;
/// Re-exported so users of [`Element`] need no direct `bytes` dependency.
pub use bytes::Bytes;
/// The wasmtime this engine is built on, for host interfaces of your own
/// ([`WasmtimeEngine::with_host_imports`]) and generated bindings.
pub use wasmtime;
/// The wasmtime-wasi this engine serves WASI with ([`StoreState`] is its
/// `WasiView`), for host interfaces of your own that use WASI's types.
pub use wasmtime_wasi;

/// What generated code and the engine share, not for users: the check that
/// bindings were made by a `torvyn-build` matching this engine.
#[doc(hidden)]
pub mod __private {
    /// The call ticks of a component without a deadline (for the bench's
    /// floor host).
    pub use crate::store::NO_DEADLINE;

    /// This engine's version.
    pub const VERSION: &str = env!("CARGO_PKG_VERSION");

    /// Whether two versions are compatible as Cargo reads them: the same
    /// `major.minor` for 0.x (`0.1.0` and `0.1.4`), the same major after.
    pub const fn compatible(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        let zero_major = !a.is_empty() && a[0] == b'0';
        let dots_to_compare = if zero_major { 2 } else { 1 };
        let mut i = 0;
        let mut dots = 0;
        loop {
            let end_a = i >= a.len() || (a[i] == b'.' && dots + 1 == dots_to_compare);
            let end_b = i >= b.len() || (b[i] == b'.' && dots + 1 == dots_to_compare);
            if end_a || end_b {
                return end_a && end_b;
            }
            if a[i] != b[i] {
                return false;
            }
            if a[i] == b'.' {
                dots += 1;
            }
            i += 1;
        }
    }
}

/// Fails the build, in one line, where bindings generated by one version
/// of `torvyn-build` are compiled against another `torvyn-engine`
/// (`torvyn-build` writes it at the top of what it generates).
///
/// ```compile_fail
/// torvyn_engine::__check_build_version!("0.0.9");
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __check_build_version {
    ($generated_by:literal) => {
        const _: () = ::core::assert!(
            $crate::__private::compatible($generated_by, $crate::__private::VERSION),
            ::core::concat!(
                "these bindings were generated by torvyn-build ",
                $generated_by,
                ", which does not match the torvyn-engine they are compiled with: use the \
                 same version of both"
            )
        );
    };
}

/// Includes bindings that `torvyn-build` wrote into `OUT_DIR`:
/// `include_bindings!("bindings")` includes `OUT_DIR/bindings.rs`.
#[macro_export]
macro_rules! include_bindings {
    ($name:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $name, ".rs"));
    };
}

/// The README's usage example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

/// The book's chapters (`docs/`): their Rust blocks compiled and run as
/// doc tests, as the README's.
#[cfg(doctest)]
mod book {
    #[doc = include_str!("../docs/src/library.md")]
    struct Library;
    #[doc = include_str!("../docs/src/async.md")]
    struct Async;
    #[doc = include_str!("../docs/src/flows.md")]
    struct Flows;
    #[doc = include_str!("../docs/src/wit-worlds.md")]
    struct WitWorlds;
}
