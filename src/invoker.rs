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
        ($($arg:ident : $ty:ty)?) -> $ok:ty; )*) => {
        $( $(#[$doc])*
        ///
        /// By default: [`Error::NotExported`].
        fn $sync(&mut self $(, $arg: $ty)?) -> Result<$ok> {
            $( let _ = $arg; )?
            Err(not_exported(self.name(), Interface::$interface))
        } )*
    };
}

/// The async invoker's method of every contract function: a future that
/// borrows the instance and the argument.
macro_rules! async_methods {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident
        ($wit:literal, $interface:ident, $takes:ident, $returns:ident, $required:literal)
        ($($arg:ident : $ty:ty)?) -> $ok:ty; )*) => {
        $( $(#[$doc])*
        ///
        /// By default: [`Error::NotExported`], at once.
        fn $async(&mut self $(, $arg: $ty)?)
            -> impl Future<Output = Result<$ok>> + Send {
            $( let _ = $arg; )?
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
///
/// # Implementing it
///
/// [`WasmtimeInstance`](crate::WasmtimeInstance) and the mock's instance
/// implement every function. Your own type (a stage written in Rust, a
/// stand-in) writes `name`, `exports`, `has` and the contract functions it
/// serves; every other one answers `NotExported` by default, so a function
/// added to the contract later breaks no implementer.
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
pub trait AsyncComponentInvoker: ComponentInvoker + Send {
    contract_functions!(async_methods);
}
