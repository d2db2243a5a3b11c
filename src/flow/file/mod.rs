//! Flow files: TOML in the shape of the Torvyn runtime's project file
//! (`Torvyn.toml`).
//!
//! ```toml
//! [[component]]
//! name = "token-source"
//! path = "components/token-source.wasm"   # relative to this file, or bundled:NAME
//!
//! [flow.main]
//! default_queue_depth = 16                 # optional
//!
//! [flow.main.nodes.source]
//! component = "token-source"
//! interface = "torvyn:streaming/source"
//! config = "100"                           # optional, given to `init`
//!
//! [[flow.main.edges]]
//! from = { node = "source", port = "output" }
//! to = { node = "sink", port = "input" }
//! ```
//!
//! Every key of the runtime's file is read; each is honoured or accepted
//! for a stated reason (the "Project files" table in docs/src/flows.md):
//!
//! - `[[component]]`: `path` (a `.wasm`, `bundled:NAME`, or the component's
//!   project directory, resolved by [`FlowFile::resolve_component`]), `build_command`
//!   (run by `torvyn run --build`; a `.wasm` it names is the output),
//!   `config` (the default `init` config of nodes using it), `language`
//!   (informative).
//! - nodes: `component` (a declared name, or a `file://` / path reference),
//!   `interface`, `config`, `fuel_budget` and `max_memory` (that node's
//!   limits), `priority` (1–10, checked; the driver forwards each element
//!   depth-first, so there is no queue of ready nodes to order by it),
//!   `window` (a windowed aggregator's windows: `window.rs`; this
//!   engine's own, not the runtime's).
//! - flows and edges: `default_queue_depth`, edge `queue_depth`,
//!   `backpressure` (`default_queue_depth`, and `backpressure_policy`, of
//!   which only `block-producer` exists here: this engine never drops an
//!   element, so a dropping policy is refused, not ignored),
//!   `scheduling_policy` (checked, same reason as `priority`).
//! - `[runtime]`: `worker_threads` (0: one per core),
//!   `default_fuel_per_invocation`, `max_memory_per_component`,
//!   `compilation_cache_dir` (the engine's settings), `scheduling`,
//!   `backpressure`.
//! - `[build]`: `target`, `release` and `extra_args` make the default
//!   build command of a project directory without a `build_command` (what
//!   `torvyn run --build` runs, and what an error about an unbuilt
//!   directory tells to run).
//! - `[torvyn]`, `[test]` (the runtime's `torvyn test`; this tool has no
//!   test command), `[security]`, `[observability]`, `[registry]`,
//!   descriptions: accepted, not used.
//!
//! A key that is none of these is an error naming it and its line.
//!
//! Here: [`FlowFile`] and its queries in `model.rs`; the serde schema in
//! `schema.rs`; a node table built into a node in `nodes.rs`; single
//! values checked in `checks.rs`; environment expansion in `env.rs`.

mod checks;
mod env;
mod model;
mod nodes;
mod schema;
mod window;

pub use model::{FlowFile, RuntimeSettings};
// Defined beside what reads them (project.rs), reached here.
pub use super::project::{BuildSettings, Resolved};
