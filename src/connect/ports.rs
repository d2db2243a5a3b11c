//! The source and sink ports a connector implements, and what passes
//! through them: inputs, fetches, failures, counters.

use async_trait::async_trait;

use crate::error::Result;
use crate::invoker::Element;

/// One input taken from a source connector.
#[derive(Debug, Clone)]
pub struct Input {
    /// The element the flow sees (its sequence and timestamp are the
    /// runtime's, set when it enters the flow).
    pub element: Element,
    /// The connector's handle for settling it ([`ack`](SourceConnector::ack),
    /// [`fail`](SourceConnector::fail), [`release`](SourceConnector::release)).
    pub handle: u64,
    /// Where the input lives, the same on every redelivery (a NATS input:
    /// `STREAM:SEQUENCE`). Its outputs' ids are derived from it.
    pub origin: String,
}

/// What one [`fetch`](SourceConnector::fetch) found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Fetched {
    /// New inputs (at least one).
    Inputs(Vec<Input>),
    /// Nothing arrived while it waited; more may come later.
    Idle,
    /// The source has ended (end of file); nothing more will come.
    Ended,
}

/// What became of an input whose processing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failed {
    /// It will be delivered again.
    Retried,
    /// It was tried often enough: set aside (a dead-letter subject) and
    /// never delivered again.
    DeadLettered,
}

/// Counters a connector keeps, for reports and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectorStats {
    /// Source: inputs the broker still has for this consumer (when known).
    pub pending: Option<u64>,
    /// Source: inputs delivered and not yet acknowledged (when known).
    pub ack_pending: Option<u64>,
    /// Source: inputs received that had been delivered before.
    pub redeliveries: u64,
    /// Source: inputs acknowledged.
    pub acked: u64,
    /// Source: inputs set aside after failing too often.
    pub dead_lettered: u64,
    /// Sink: outputs stored.
    pub stored: u64,
    /// Sink: outputs the broker already had (same id): not stored again.
    pub duplicates: u64,
    /// Requests the broker lost and that were sent again: a source's
    /// requests for input, a sink's publishes whose acks did not come
    /// (sent before the connection broke, or unanswered within the bound).
    pub lost_requests: u64,
}

/// A source of inputs from outside the flow.
///
/// # Cancel safety
///
/// The driver drops a pending [`fetch`](SourceConnector::fetch) when a
/// shutdown is asked for (a source waiting on stdin or an idle broker must
/// not hold it). A dropped fetch must lose nothing: what it had taken and
/// not returned is returned by the next fetch, or handed back by
/// [`stop`](SourceConnector::stop) (the built-in connectors keep requests
/// in flight and inputs taken in `self`, never in the fetch's future).
/// Every other call runs to its end.
#[async_trait]
pub trait SourceConnector: Send {
    /// Up to `max` inputs. Waits a short while (the connector's own fetch
    /// timeout) for the first, then returns [`Fetched::Idle`]. An outage of
    /// the broker is `Idle` too (with a warning logged): the driver keeps
    /// asking, and the connector reconnects.
    async fn fetch(&mut self, max: usize) -> Result<Fetched>;

    /// These inputs are done with for good: every output derived from them
    /// was stored, or they were dropped.
    async fn ack(&mut self, handles: &[u64]) -> Result<()>;

    /// As [`ack`](SourceConnector::ack), returning only once the broker
    /// has confirmed each acknowledgement: for inputs nothing downstream
    /// could recognise if they came again (a stored state absorbed them,
    /// and a redelivery would be counted twice). The default is `ack`.
    async fn ack_confirmed(&mut self, handles: &[u64]) -> Result<()> {
        self.ack(handles).await
    }

    /// Processing this input failed with `error`: deliver it again later,
    /// or set it aside when it was tried often enough.
    async fn fail(&mut self, handle: u64, error: &str) -> Result<Failed>;

    /// These inputs are still held (by an aggregator): keep them from being
    /// handed to another consumer. Called after every batch.
    async fn keep(&mut self, handles: &[u64]) -> Result<()> {
        let _ = handles;
        Ok(())
    }

    /// Hand these inputs back unprocessed (at shutdown): they will be
    /// delivered again, here or to another worker.
    async fn release(&mut self, handles: &[u64]) -> Result<()>;

    /// The run is over (after the last [`release`](SourceConnector::release)
    /// or [`ack`](SourceConnector::ack)): hand back whatever a dropped fetch
    /// had taken and no fetch returned, and end any request still open.
    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }

    /// Its counters.
    fn stats(&self) -> ConnectorStats {
        ConnectorStats::default()
    }
}

/// A sink that stores outputs outside the flow.
#[async_trait]
pub trait SinkConnector: Send {
    /// Takes one output, named `id` (stable across redeliveries of the
    /// input it came from). Nothing is promised stored before
    /// [`flush`](SinkConnector::flush) returns `Ok`.
    fn accept(&mut self, element: &Element, id: &str) -> Result<()>;

    /// Stores everything accepted since the last successful flush; `Ok`
    /// once all of it is durable. On `Err` what was not stored is kept and
    /// tried again by the next flush.
    async fn flush(&mut self) -> Result<()>;

    /// Its counters.
    fn stats(&self) -> ConnectorStats {
        ConnectorStats::default()
    }
}
