//! The service driver, [`Flow::serve`]: flows whose sources or sinks are
//! connectors ([`crate::connect`]), run in batches until their sources end,
//! they stay idle, a limit is reached, or they are told to stop.
//!
//! One batch: take up to `batch` inputs from every source; send each
//! through the graph (the same depth-first forwarding as [`Flow::run`]);
//! send every sink connector's outputs; while more than
//! `batches_in_flight` batches are out, store the oldest (retried while the
//! broker is away) and acknowledge the inputs it settles. So the next
//! batch is fetched and processed while the broker answers the last one's
//! publishes. What an aggregator absorbed stays unacknowledged (kept alive
//! after every batch) until the aggregate holding it is stored.
//!
//! A failing input (guest error, trap, limit) is handed back to its source
//! to be redelivered or dead-lettered ([`SourceConnector::fail`]); a node
//! whose instance the failure poisoned gets a fresh one from
//! [`ServeOptions::respawn`] (inited with its config) and the flow goes on.
//! What a replaced aggregator held is handed back too: its state is gone, so
//! those inputs must come again.
//!
//! At a stop on request ([`ServeOptions::shutdown`]) the batches in flight
//! are finished and stored, what is still held is handed back
//! ([`SourceConnector::release`]: redelivered, not lost) and aggregators are
//! not flushed. At the end of the stream (sources ended, idle, limit)
//! aggregators flush, sinks complete and everything is acknowledged.
//!
//! Here: the batch loop in `batches.rs`; taking inputs in `intake.rs`;
//! which batch settles which input in `unsettled.rs`; sending, storing,
//! acknowledging, keeping and handing back in `settle.rs`; a
//! failed input in `recover.rs`; stored states in `states.rs`; windowed
//! nodes' windows, committed with each batch, in `windows.rs`; the
//! connectors' report in `report.rs`.

mod batches;
mod counted;
mod intake;
mod options;
mod recover;
mod report;
mod settle;
mod states;
mod unsettled;
mod windows;

pub(super) use batches::run;
pub(super) use options::Counts;
pub use options::{BatchObserver, ConnectorReport, Respawn, ServeOptions, ServeReport, Stop};
pub(super) use report::connector_reports;
