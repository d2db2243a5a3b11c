//! The source and sink ports a connector implements, and what passes
//! through them: inputs, fetches, failures, counters.

use async_trait::async_trait;

use crate::error::Result;
use crate::invoker::Element;

/// One input taken from a source connector.
///
/// ```
/// use torvyn_engine::connect::Input;
/// use torvyn_engine::Element;
///
/// // What a source connector hands the flow for one message of its broker.
/// let input = Input::new(
///     Element::new(0, "application/json", r#"{"id": 7}"#),
///     41,            // the connector's handle, to ack it by
///     "ORDERS:1041", // where it lives: the same on every redelivery
/// );
/// assert_eq!(input.handle, 41);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
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

impl Input {
    /// An input: its element, the connector's handle for it, and where it
    /// lives (the same on every redelivery).
    pub fn new(element: Element, handle: u64, origin: impl Into<String>) -> Input {
        Input {
            element,
            handle,
            origin: origin.into(),
        }
    }
}

/// What one [`fetch`](SourceConnector::fetch) found.
///
/// ```
/// use torvyn_engine::connect::Fetched;
///
/// fn count(fetched: &Fetched) -> usize {
///     match fetched {
///         Fetched::Inputs(inputs) => inputs.len(),
///         Fetched::Idle | Fetched::Ended => 0,
///         _ => 0, // more cases may come
///     }
/// }
/// assert_eq!(count(&Fetched::Idle), 0);
/// ```
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
///
/// ```
/// use torvyn_engine::connect::Failed;
///
/// /// Three tries, then the dead-letter subject.
/// fn after_failure(deliveries: u32) -> Failed {
///     if deliveries < 3 { Failed::Retried } else { Failed::DeadLettered }
/// }
/// assert_eq!(after_failure(3), Failed::DeadLettered);
/// ```
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
///
/// ```
/// use torvyn_engine::connect::ConnectorStats;
///
/// let mut stats = ConnectorStats::default();
/// stats.acked += 10;
/// stats.pending = Some(0);
/// assert_eq!(stats.redeliveries, 0);
/// ```
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
///
/// ```
/// use std::sync::Arc;
/// use torvyn_engine::connect::{
///     Connector, ConnectorFactory, ConnectorSpec, Connectors, Failed, Fetched, Input, Settings,
///     SinkConnector, SourceConnector,
/// };
/// use torvyn_engine::{async_trait, Element, Interface};
///
/// /// A source of `count` numbers held in memory (a broker would keep them).
/// struct Numbers {
///     next: u64,
///     count: u64,
/// }
///
/// #[async_trait]
/// impl SourceConnector for Numbers {
///     async fn fetch(&mut self, max: usize) -> torvyn_engine::Result<Fetched> {
///         if self.next == self.count {
///             return Ok(Fetched::Ended);
///         }
///         let mut inputs = Vec::new();
///         while self.next < self.count && inputs.len() < max {
///             let element = Element::new(0, "text/plain", self.next.to_string());
///             inputs.push(Input::new(element, self.next, format!("numbers:{}", self.next)));
///             self.next += 1;
///         }
///         Ok(Fetched::Inputs(inputs))
///     }
///     async fn ack(&mut self, _handles: &[u64]) -> torvyn_engine::Result<()> {
///         Ok(())
///     }
///     async fn fail(&mut self, _handle: u64, _error: &str) -> torvyn_engine::Result<Failed> {
///         Ok(Failed::DeadLettered)
///     }
///     async fn release(&mut self, _handles: &[u64]) -> torvyn_engine::Result<()> {
///         Ok(())
///     }
/// }
///
/// /// Makes `numbers` sources: `count` is its one setting.
/// struct NumbersFactory;
///
/// #[async_trait]
/// impl ConnectorFactory for NumbersFactory {
///     fn keys(&self) -> &'static [&'static str] {
///         &["count"]
///     }
///     fn roles(&self) -> &'static [Interface] {
///         &[Interface::Source]
///     }
///     async fn open(&self, _role: Interface, settings: &Settings<'_>) -> torvyn_engine::Result<Connector> {
///         let count = settings.parse("count", 10)?;
///         Ok(Connector::Source(Box::new(Numbers { next: 0, count })))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> torvyn_engine::Result<()> {
/// let mut connectors = Connectors::builtin();
/// connectors.register("numbers", Arc::new(NumbersFactory));
/// let spec = ConnectorSpec::new("numbers", [("count", "3")]);
/// let Connector::Source(mut source) = connectors.open("in", Interface::Source, &spec).await? else {
///     unreachable!()
/// };
/// let Fetched::Inputs(inputs) = source.fetch(10).await? else { unreachable!() };
/// assert_eq!(inputs.len(), 3);
/// assert!(matches!(source.fetch(10).await?, Fetched::Ended));
/// # Ok(())
/// # }
/// ```
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
///
/// ```
/// use torvyn_engine::connect::SinkConnector;
/// use torvyn_engine::{async_trait, Element};
///
/// /// Keeps outputs by id: a redelivered input's outputs replace, not repeat.
/// #[derive(Default)]
/// struct Table {
///     staged: Vec<(String, Element)>,
///     stored: std::collections::BTreeMap<String, Element>,
/// }
///
/// #[async_trait]
/// impl SinkConnector for Table {
///     fn accept(&mut self, element: &Element, id: &str) -> torvyn_engine::Result<()> {
///         self.staged.push((id.to_string(), element.clone()));
///         Ok(())
///     }
///     async fn flush(&mut self) -> torvyn_engine::Result<()> {
///         self.stored.extend(self.staged.drain(..));
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> torvyn_engine::Result<()> {
/// let mut table = Table::default();
/// table.accept(&Element::new(0, "", "a"), "in:1/0")?;
/// table.accept(&Element::new(0, "", "a"), "in:1/0")?; // the same output again
/// table.flush().await?;
/// assert_eq!(table.stored.len(), 1);
/// # Ok(())
/// # }
/// ```
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

    /// Starts storing what was accepted since the last `send` (or flush),
    /// without waiting for the broker's answer, and returns the number of
    /// this send: [`flush_through`](SinkConnector::flush_through) with it
    /// waits for exactly these and those sent before.
    ///
    /// The driver sends a batch's outputs, then fetches and processes the
    /// next batch while the broker answers (up to
    /// [`ServeOptions::batches_in_flight`](crate::flow::ServeOptions::batches_in_flight)
    /// batches outstanding). The default stores everything now
    /// ([`flush`](SinkConnector::flush)) and returns 0: right for a sink
    /// whose store has no round trip to overlap (a file, stdout: a batch's
    /// outputs appear as soon as it is processed, not when the next batch
    /// comes). An `Err` is logged, not fatal: what was not stored stays
    /// accepted, and `flush_through` tries it again (retried, then failing
    /// the run, as a flush).
    async fn send(&mut self) -> Result<u64> {
        self.flush().await.map(|()| 0)
    }

    /// Stores everything sent up to the send numbered `send` (and may store
    /// more); `Ok` once it is durable. On `Err` what was not stored is kept
    /// and tried again by the next flush. The default flushes everything.
    async fn flush_through(&mut self, send: u64) -> Result<()> {
        let _ = send;
        self.flush().await
    }

    /// Its counters.
    fn stats(&self) -> ConnectorStats {
        ConnectorStats::default()
    }
}
