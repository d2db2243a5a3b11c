//! The resources a guest sees: buffers, mutable buffers, flow contexts.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

/// An immutable byte buffer in host memory (`torvyn:streaming/types.buffer`).
///
/// ```
/// use torvyn_engine::host::Buffer;
///
/// /// In a host interface of your own whose WIT takes the contract's
/// /// `borrow<buffer>` (generated bindings hand you a `Resource<Buffer>`,
/// /// looked up in the instance's table), the bytes are shared, not copied.
/// fn describe(buffer: &Buffer) -> String {
///     format!("{} bytes of {}", buffer.bytes().len(), buffer.content_type())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Buffer {
    pub(super) bytes: Bytes,
    pub(super) content_type: String,
    /// Bytes charged to the budget while the guest owns this buffer.
    pub(super) charged: u64,
}

impl Buffer {
    /// The buffer's bytes (cheap to clone: reference counted).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The MIME type set by the guest, empty when unset.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The bytes and the content type, moved out.
    pub fn into_parts(self) -> (Bytes, String) {
        (self.bytes, self.content_type)
    }
}

/// A growable buffer a guest fills (`torvyn:streaming/types.mutable-buffer`).
///
/// ```
/// use torvyn_engine::host::MutableBuffer;
/// use torvyn_engine::wasmtime::component::Resource;
///
/// /// The type generated bindings use for the contract's `mutable-buffer`
/// /// (`torvyn:streaming/types`): a guest fills one, then freezes it.
/// fn handle_number(buffer: &Resource<MutableBuffer>) -> u32 {
///     buffer.rep()
/// }
/// ```
#[derive(Debug)]
pub struct MutableBuffer {
    pub(super) data: Contents,
    pub(super) capacity: u64,
    pub(super) content_type: String,
    pub(super) charged: u64,
    /// Set by `freeze`: the bytes moved to an immutable buffer.
    pub(super) spent: bool,
}

/// The bytes of a mutable buffer. A clone shares its source's bytes until
/// the first write (copy on write), so cloning then freezing copies nothing;
/// the first write into an empty buffer takes the guest's bytes as they are.
#[derive(Debug)]
pub(super) enum Contents {
    Shared(Bytes),
    Owned(Vec<u8>),
}

impl Contents {
    pub(super) fn len(&self) -> usize {
        match self {
            Contents::Shared(bytes) => bytes.len(),
            Contents::Owned(vec) => vec.len(),
        }
    }

    /// The bytes as an owned vector, copying shared ones first; also the
    /// number of bytes that copy took.
    pub(super) fn owned(&mut self) -> (&mut Vec<u8>, u64) {
        let copied = match self {
            Contents::Shared(bytes) => {
                let len = bytes.len() as u64;
                *self = Contents::Owned(bytes.to_vec());
                len
            }
            Contents::Owned(_) => 0,
        };
        match self {
            Contents::Owned(vec) => (vec, copied),
            Contents::Shared(_) => unreachable!("made owned above"),
        }
    }

    pub(super) fn take(&mut self) -> Bytes {
        match std::mem::replace(self, Contents::Owned(Vec::new())) {
            Contents::Shared(bytes) => bytes,
            Contents::Owned(vec) => Bytes::from(vec),
        }
    }
}

/// Where a mutable-buffer write goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WriteAt {
    /// At this offset (at most the current length).
    Offset(u64),
    /// At the end (`append`).
    End,
}

/// Largest capacity hint the first write of a mutable buffer reserves at
/// once; past it, the vector grows with what is written.
pub(super) const EAGER_RESERVE_BYTES: u64 = 64 << 10;

/// What the first write of `len` bytes into a buffer of `capacity` reserves.
pub(super) fn buffer_capacity_to_reserve(capacity: u64, len: usize) -> usize {
    usize::try_from(capacity.min(EAGER_RESERVE_BYTES))
        .unwrap_or(0)
        .max(len)
}

/// Copies `bytes` into `data` at `offset` (at most its length), extending it.
pub(crate) fn write_into(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let overlap = (data.len() - offset).min(bytes.len());
    data[offset..offset + overlap].copy_from_slice(&bytes[..overlap]);
    data.extend_from_slice(&bytes[overlap..]);
}

/// The flow an element belongs to (`torvyn:streaming/types.flow-context`).
///
/// The identifiers are shared strings (build them with `.into()` from a
/// `&str` or a `String`): a guest asking for one gets a copy of it in its
/// memory, and the host hands it over without allocating.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::host::FlowContext;
///
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// let mut instance = engine.instantiate(&upper)?;
/// // What the guest's `flow-context` answers for the elements that follow.
/// let mut flow = FlowContext::default();
/// flow.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736".into();
/// flow.flow_id = "orders".into();
/// instance.set_flow(flow)?;
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FlowContext {
    /// W3C trace id, 32 hex chars, or empty.
    pub trace_id: Arc<str>,
    /// Span id, 16 hex chars, or empty.
    pub span_id: Arc<str>,
    /// When the flow's deadline passes, if it has one.
    pub deadline: Option<Instant>,
    /// Identifier of the flow.
    pub flow_id: Arc<str>,
}

/// Which identifier of a flow context a getter returns.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FlowId {
    /// `trace-id`.
    Trace,
    /// `span-id`.
    Span,
    /// `flow-id`.
    Flow,
}
