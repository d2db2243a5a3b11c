//! Connectors: flow nodes that are not components but the world outside
//! the process — a broker's stream, a file, stdin and stdout.
//!
//! A connector is a source or a sink written on the host side. It runs on
//! the async driver ([`Flow::serve`](crate::Flow::serve)) beside the
//! component stages, and speaks in **batches**: a source hands over up to N
//! inputs per [`fetch`](SourceConnector::fetch); a sink takes outputs one by
//! one without I/O ([`accept`](SinkConnector::accept)) and stores them all
//! at [`flush`](SinkConnector::flush). The traits are object-safe (a flow
//! holds connectors of different kinds as `Box<dyn …>`), with one boxed
//! future per batch, never per element.
//!
//! Delivery: an input is [acknowledged](SourceConnector::ack) only after
//! every output derived from it was stored by every sink it reached (the
//! flush after its batch returned `Ok`), or it was dropped on the way.
//! Inputs an aggregator absorbed stay unacknowledged until the aggregate that
//! holds them is stored; [`keep`](SourceConnector::keep) is called for them
//! after each batch so that a broker does not hand them to someone else
//! meanwhile. Each output is named by an id derived from its input's
//! [`origin`](Input::origin) and its position among that input's outputs,
//! so a redelivered input that produces the same outputs produces the same
//! ids (a broker with de-duplication then stores them once).
//!
//! Built in: `nats` (JetStream, with the `nats` feature), and the line
//! connectors of [`lines`] (`stdin`, `stdout`, `file`). An embedder adds a
//! kind of their own with [`Connectors::register`].
//!
//! Here: the ports in `ports.rs`; a node's spec and settings in
//! `settings.rs`; the kinds and their registry in `kinds.rs`; the state
//! store port in `state.rs`.

mod kinds;
pub mod lines;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
mod ports;
mod settings;
pub mod state;

pub use kinds::{Connector, ConnectorFactory, Connectors};
pub use ports::{ConnectorStats, Failed, Fetched, Input, SinkConnector, SourceConnector};
pub use settings::{ConnectorSpec, Settings};
