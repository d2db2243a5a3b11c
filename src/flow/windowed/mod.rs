//! Windowed nodes in a running flow: each element placed in its key's
//! windows of event time through the guest's `fold`, the watermark moved
//! as elements enter from the sources upstream, closed windows' results
//! asked of the guest (`emit`) and sent on, late elements to the `late`
//! port.
//!
//! Event time is an element's `timestamp_ns` (its source's time for it:
//! see [`ElementMeta::timestamp_ns`](crate::ElementMeta::timestamp_ns)),
//! its key `ElementMeta::key`. A windowed node's watermark is the least of
//! its upstream sources' watermarks, each the latest event time seen there
//! less `max_out_of_order_ms`; a source that sent nothing for `idle_ms`
//! stops holding it back. It moves between elements: after each element
//! entering from a source has gone through the graph, the windows it
//! closes emit, in the order they close.
//!
//! Here: the settings in `settings.rs` (checked with the flow's graph, in
//! `spec.rs`); each windowed
//! node's windows and watermark during a run in `nodes.rs`; what the
//! running graph does with them in `run.rs`. The service stores the
//! windows with each batch (`serve/windows.rs`).

mod nodes;
mod run;
mod settings;

pub(super) use nodes::{windowing_of, Windowing};
pub use settings::{WindowSettings, LATE_PORT};
