//! The public face of a running component: [`ComponentInvoker`] and the
//! element types that cross it.

use std::future::Future;

use bytes::Bytes;

use crate::contract::contract_functions;
use crate::error::{Error, Result};
use crate::interfaces::{ExportInfo, Interface};

/// The sync invoker's method of every contract function.
/// Each contract function has a default body answering
/// [`Error::NotExported`]: an implementer writes the functions its
/// component serves, and a function added to the contract breaks none.
macro_rules! sync_methods {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident
        ($wit:literal, $interface:ident, $takes:ident, $returns:ident, $required:literal)
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        $( $(#[$doc])*
        ///
        /// By default: [`Error::NotExported`].
        fn $sync(&mut self $(, $arg: $ty)*) -> Result<$ok> {
            $( let _ = $arg; )*
            Err(not_exported(self.name(), Interface::$interface))
        } )*
    };
}

/// The async invoker's method of every contract function: a future that
/// borrows the instance and the argument.
macro_rules! async_methods {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident
        ($wit:literal, $interface:ident, $takes:ident, $returns:ident, $required:literal)
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        $( $(#[$doc])*
        ///
        /// By default: [`Error::NotExported`], at once.
        fn $async(&mut self $(, $arg: $ty)*)
            -> impl Future<Output = Result<$ok>> + Send {
            $( let _ = $arg; )*
            std::future::ready(Err(not_exported(self.name(), Interface::$interface)))
        } )*
    };
}

/// What a contract function not written by an implementer answers.
fn not_exported(component: &str, interface: Interface) -> Error {
    Error::NotExported {
        component: component.to_string(),
        interface: interface.to_string(),
    }
}

/// Metadata that travels with every element.
///
/// ```
/// use torvyn_engine::Element;
///
/// let mut element = Element::new(3, "application/json", "{}");
/// element.meta.timestamp_ns = 1_700_000_000_000_000_000; // event time: ns since the epoch
/// element.meta.key = "sensor-7".into(); // what a windowed node groups by
/// assert_eq!(element.meta.sequence, 3);
/// assert_eq!(element.meta.content_type, "application/json");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElementMeta {
    /// Position in the stream.
    pub sequence: u64,
    /// The element's time in nanoseconds since the Unix epoch: its event
    /// time when its source gives one (a component source's own, a NATS
    /// message's stream timestamp or header), else the time it entered
    /// the flow. Windowed nodes place elements by it.
    pub timestamp_ns: u64,
    /// MIME type of the payload (empty when unknown).
    pub content_type: String,
    /// The key a windowed node groups the element by (empty: none), taken
    /// where the flow says (a NATS header, a subject token) and carried
    /// through processors to their outputs. The host's alone: the WIT's
    /// `element-meta` has no key, so a guest never sees or sets it.
    pub key: String,
}

/// A stream element as the host holds it: metadata plus payload bytes
/// (reference counted, so passing an element on never copies its payload).
///
/// ```
/// use torvyn_engine::{Bytes, Element};
///
/// let payload = Bytes::from_static(b"hello");
/// let element = Element::new(0, "text/plain", payload.clone());
/// let copy = element.clone(); // shares the payload's bytes
/// assert_eq!(copy.payload.as_ptr(), payload.as_ptr());
/// ```
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
                key: String::new(),
            },
            payload: payload.into(),
        }
    }
}

/// What a processor did with an element.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::{ComponentInvoker, Element, ProcessOutcome};
///
/// let mut upper = engine.instantiate(&engine.compile("upper", &torvyn_fixtures::uppercase_processor())?)?;
/// match upper.process(&Element::new(0, "text/plain", "hi"))? {
///     ProcessOutcome::Emit(out) => assert_eq!(&out.payload[..], b"HI"),
///     ProcessOutcome::Drop => unreachable!("the uppercase stage drops nothing"),
/// }
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessOutcome {
    /// Pass this element downstream.
    Emit(Element),
    /// The input was dropped.
    Drop,
}

/// Flow control from a sink to its upstream.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::{Backpressure, ComponentInvoker, Element};
///
/// let mut sink = engine.instantiate(&engine.compile("sink", &torvyn_fixtures::recording_sink())?)?;
/// sink.init("2")?; // this sink asks for a pause every second element
/// assert_eq!(sink.push(&Element::new(0, "", "a"))?, Backpressure::Ready);
/// assert_eq!(sink.push(&Element::new(1, "", "b"))?, Backpressure::Pause);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
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
///
/// # Implementing it
///
/// [`WasmtimeInstance`](crate::WasmtimeInstance) and the mock's instance
/// implement every function. Your own type (a stage written in Rust, a
/// stand-in) writes `name`, `exports`, `has` and the contract functions it
/// serves; every other one answers `NotExported` by default, so a function
/// added to the contract later breaks no implementer.
///
/// ```
/// use torvyn_engine::{ComponentInvoker, Element, ExportInfo, Interface, ProcessOutcome};
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
///
/// /// A stage written in Rust, run between Wasm stages: only `process` written.
/// struct Reverse;
///
/// impl ComponentInvoker for Reverse {
///     fn name(&self) -> &str {
///         "reverse"
///     }
///     fn exports(&self) -> &[ExportInfo] {
///         &[]
///     }
///     fn has(&self, interface: Interface) -> bool {
///         interface == Interface::Processor
///     }
///     fn process(&mut self, element: &Element) -> torvyn_engine::Result<ProcessOutcome> {
///         let reversed: Vec<u8> = element.payload.iter().rev().copied().collect();
///         let meta = &element.meta;
///         Ok(ProcessOutcome::Emit(Element::new(meta.sequence, meta.content_type.clone(), reversed)))
///     }
/// }
///
/// let mut stage = Reverse;
/// let out = stage.process(&Element::new(0, "", "abc"))?;
/// assert_eq!(out, ProcessOutcome::Emit(Element::new(0, "", "cba")));
/// // Any other function answers `NotExported`:
/// assert!(stage.pull().is_err());
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
pub trait ComponentInvoker {
    /// The component's name.
    fn name(&self) -> &str;
    /// The exports of the component and how each is called.
    fn exports(&self) -> &[ExportInfo];
    /// Whether the component exports `interface` in a callable way.
    fn has(&self, interface: Interface) -> bool;

    contract_functions!(sync_methods);

    /// Fuel used by all calls so far (0 when not metered, or not known).
    fn total_fuel_consumed(&self) -> u64 {
        0
    }

    /// Times this instance was replaced by a fresh one of its component
    /// ([`Limits::recycle_after_elements`](crate::Limits::recycle_after_elements),
    /// [`Limits::recycle_at_memory_percent`](crate::Limits::recycle_at_memory_percent));
    /// 0 for an invoker that does not recycle.
    fn recycled(&self) -> u64 {
        0
    }
}

/// The stream-stage functions as futures, for runtimes that drive each flow
/// as a task and await every stage call (tokio or any other executor).
///
/// The methods return `impl Future + Send` rather than boxed futures: no
/// allocation per call on the hot path. (The trait is therefore not
/// object-safe; drive instances through generics.)
///
/// # Errors
///
/// The same as the sync [`ComponentInvoker`] method of the same name; a
/// call whose future was dropped leaves the instance
/// [`Poisoned`](crate::Error::Poisoned) with a cause saying so.
///
/// # Cancel safety
///
/// No method is cancel safe in the sense of resuming: dropping a future
/// before it completes cancels the guest call where it yielded, poisons the
/// instance (its next call returns [`Error::Poisoned`](crate::Error::Poisoned),
/// cause: cancelled) and releases every buffer its guest held. The element
/// passed in is only borrowed, so the caller still has it and can retry on
/// a fresh instance of the same component.
///
/// ```
/// use torvyn_engine::{AsyncComponentInvoker, ComponentInvoker, Element, ProcessOutcome};
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> torvyn_engine::Result<()> {
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// let mut instance = engine.instantiate_async(&upper).await?;
/// // The guest runs on a fiber that yields to the runtime at every time slice.
/// let out = instance.process_async(&Element::new(0, "", "hi")).await?;
/// assert_eq!(out, ProcessOutcome::Emit(Element::new(0, "", "HI")));
/// # Ok(())
/// # }
/// ```
pub trait AsyncComponentInvoker: ComponentInvoker + Send {
    contract_functions!(async_methods);
}
