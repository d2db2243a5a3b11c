//! The public face of a running component: [`ComponentInvoker`] and the
//! element types that cross it.

use bytes::Bytes;

use crate::error::Result;
use crate::interfaces::{ExportInfo, Interface};

/// Metadata that travels with every element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElementMeta {
    /// Position in the stream.
    pub sequence: u64,
    /// Wall-clock time in nanoseconds.
    pub timestamp_ns: u64,
    /// MIME type of the payload (empty when unknown).
    pub content_type: String,
}

/// A stream element as the host holds it: metadata plus payload bytes
/// (reference counted, so passing an element on never copies its payload).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Metadata.
    pub meta: ElementMeta,
    /// Payload.
    pub payload: Bytes,
}

impl Element {
    /// An element with the given sequence number, content type and payload.
    pub fn new(sequence: u64, content_type: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Element {
            meta: ElementMeta {
                sequence,
                timestamp_ns: 0,
                content_type: content_type.into(),
            },
            payload: payload.into(),
        }
    }
}

/// What a processor did with an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessOutcome {
    /// Pass this element downstream.
    Emit(Element),
    /// The input was dropped.
    Drop,
}

/// Flow control from a sink to its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// Keep sending.
    Ready,
    /// Slow down.
    Pause,
}

/// Calls the stream-stage functions of one component instance.
///
/// A method whose interface the component does not export returns
/// [`Error::NotExported`](crate::Error::NotExported). After a trap, a fuel
/// or deadline overrun, every call returns [`Error::Poisoned`](crate::Error::Poisoned).
pub trait ComponentInvoker {
    /// The component's name.
    fn name(&self) -> &str;
    /// The exports of the component and how each is called.
    fn exports(&self) -> &[ExportInfo];
    /// Whether the component exports `interface` in a callable way.
    fn has(&self, interface: Interface) -> bool;

    /// `lifecycle.init`.
    fn init(&mut self, config: &str) -> Result<()>;
    /// `lifecycle.teardown`.
    fn teardown(&mut self) -> Result<()>;
    /// `processor.process`.
    fn process(&mut self, element: &Element) -> Result<ProcessOutcome>;
    /// `source.pull`; `None` when exhausted.
    fn pull(&mut self) -> Result<Option<Element>>;
    /// `source.notify-backpressure`.
    fn notify_backpressure(&mut self, signal: Backpressure) -> Result<()>;
    /// `sink.push`.
    fn push(&mut self, element: &Element) -> Result<Backpressure>;
    /// `sink.complete`.
    fn complete(&mut self) -> Result<()>;
    /// `filter.evaluate`: `true` keeps the element.
    fn evaluate(&mut self, element: &Element) -> Result<bool>;
    /// `router.route`: the output ports the element goes to.
    fn route(&mut self, element: &Element) -> Result<Vec<String>>;
    /// `aggregator.ingest`.
    fn ingest(&mut self, element: &Element) -> Result<Option<Element>>;
    /// `aggregator.flush`.
    fn flush(&mut self) -> Result<Vec<Element>>;
}
