//! Flows with every stage role: sources, processors, filters, routers,
//! aggregators and sinks, connected by edges, each node with its own
//! config ([`FlowSpec`], from code or a flow file: [`file`](mod@file)).
//!
//! One driver serves both ways of running a flow: [`Flow::run`] on the
//! calling thread and [`Flow::run_async`] as a future (a tokio task per
//! flow), written once over the `Calls` strategy (sync calls as ready
//! futures, or awaited async calls). Per element, from each source in turn,
//! the element goes depth-first down every edge:
//!
//! - a **processor**'s `emit` goes on, `drop` is counted;
//! - a **filter**'s `false` drops the element (counted), `true` passes it;
//! - a **router**'s ports each send the element down the edges leaving
//!   that port (a port no edge leaves is an error naming it; a port named
//!   twice in one answer gets the element once);
//! - an **aggregator**'s `ingest` may emit; at the end of the stream its
//!   `flush` emits the rest, in order, downstream;
//! - a **windowed aggregator** folds the element into its key's windows of
//!   event time (the host keeps each window's state); when the watermark
//!   closes a window, its `emit`ted result goes down every edge but those
//!   leaving port `late`, which take the elements that came too late
//!   (`windowed.rs`);
//! - a **sink**'s `pause` is passed to every source upstream of it (and
//!   `ready` once no sink it feeds is paused).
//!
//! The runtime numbers each node's input: every stage sees sequences 0, 1,
//! 2, ... in arrival order (what upstream dropped or routed elsewhere
//! leaves no gap).
//!
//! Every node is `init`ed with its own config first; at the end every sink
//! gets `complete`, and every node's `teardown` is attempted, even after a
//! failure. On the async driver each source runs ahead of the rest of the
//! flow by at most [`FlowSpec::queue_depth`] elements: a full queue is
//! backpressure (the source is told `pause`, then `ready`).
//!
//! Here: [`Flow`] and its entry points in `driver.rs`; the run's graph
//! (depth-first forwarding, the end of stream, upgrades taken between
//! elements) in `graph.rs`; a node's stage and one numbered pull in
//! `stage.rs`; the async driver's feeder in `feed.rs`; backpressure's
//! counts in `pauses.rs`; the service driver over connectors in `serve/`;
//! which inputs each output derives from in `tracking.rs`.

mod driver;
mod feed;
pub mod file;
mod graph;
mod pauses;
mod pipeline;
// How a flow file's component projects resolve to files: reached through
// `FlowFile::resolve_component` (the CLI's wording of its errors stays there).
mod project;
mod report;
mod serve;
mod slot;
mod spec;
mod stage;
pub mod state;
mod swap;
mod tracking;
mod upgrade;
mod windowed;

pub use driver::Flow;
pub use pipeline::{Pipeline, PipelineReport};
pub use report::{FlowReport, NodeReport};
pub use serve::{BatchObserver, ConnectorReport, Respawn, ServeOptions, ServeReport, Stop};
pub use windowed::{WindowSettings, LATE_PORT};
// Where it stood before it moved to the engine's config (the engine knows
// no flow); kept so `flow::NodeLimits` still names it.
pub use crate::config::NodeLimits;
pub use spec::{role_of, EdgeSpec, FlowSpec, NodeSpec, PortRef, DEFAULT_QUEUE_DEPTH};
pub use state::{DirStore, StateOptions, StateStore};
pub use upgrade::{Carried, UpgradeOutcome, Upgrader};
