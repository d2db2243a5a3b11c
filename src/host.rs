//! The host side of the contract: buffers, mutable buffers, flow contexts,
//! the buffer allocator and capability queries.
//!
//! Every instance has its own [`HostState`]: handle tables holding the
//! resources its guest can see, a byte budget for the buffers the guest
//! allocates, and counters of the bytes copied across the guest boundary.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use wasmtime::component::{Resource, ResourceTable};

use crate::bindings::buffer_allocator;
use crate::bindings::capability_query;
use crate::bindings::types::{self, BufferError};
use crate::slab::Slab;

/// Budget charged per buffer on top of its bytes, so a guest cannot exhaust
/// host memory with endless empty buffers.
pub const BUFFER_OVERHEAD_BYTES: u64 = 64;

/// Longest content type the host keeps (`set-content-type`, an output
/// element's `content-type`): longer ones are a guest fault. MIME types are
/// far shorter; the cap keeps guest strings out of host memory.
pub const MAX_CONTENT_TYPE_BYTES: usize = 256;

/// Longest capability name kept in the query log
/// ([`HostState::capability_queries`]); longer names are cut. No granted
/// capability is that long, so the answer is unaffected.
pub const MAX_CAPABILITY_NAME_BYTES: usize = 256;

/// Longest guest error message kept in an [`Error`](crate::Error): longer
/// ones are cut, with a marker saying how much was cut.
pub const MAX_GUEST_MESSAGE_BYTES: usize = 64 << 10;

/// Bytes the host copies for a guest (`read`, `read-all`, `write`,
/// `append`, a clone's first write) per unit of fuel charged to the call:
/// a guest cannot make the host work for free. At ~16 bytes per wasm
/// instruction's worth of time, the host's copying and the guest's own
/// code share one allowance per call, each up to the fuel limit.
pub const HOST_COPY_BYTES_PER_FUEL: u64 = 16;

/// `text` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A guest's error message, cut to [`MAX_GUEST_MESSAGE_BYTES`] with a
/// marker naming how many bytes were cut.
pub fn cut_guest_message(message: String) -> String {
    if message.len() <= MAX_GUEST_MESSAGE_BYTES {
        return message;
    }
    let kept = cut(&message, MAX_GUEST_MESSAGE_BYTES);
    format!("{kept}… [cut: {} more bytes]", message.len() - kept.len())
}

/// An immutable byte buffer in host memory (`torvyn:streaming/types.buffer`).
#[derive(Debug, Clone)]
pub struct Buffer {
    bytes: Bytes,
    content_type: String,
    /// Bytes charged to the budget while the guest owns this buffer.
    charged: u64,
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
#[derive(Debug)]
pub struct MutableBuffer {
    data: Contents,
    capacity: u64,
    content_type: String,
    charged: u64,
    /// Set by `freeze`: the bytes moved to an immutable buffer.
    spent: bool,
}

/// The bytes of a mutable buffer. A clone shares its source's bytes until
/// the first write (copy on write), so cloning then freezing copies nothing;
/// the first write into an empty buffer takes the guest's bytes as they are.
#[derive(Debug)]
enum Contents {
    Shared(Bytes),
    Owned(Vec<u8>),
}

impl Contents {
    fn len(&self) -> usize {
        match self {
            Contents::Shared(bytes) => bytes.len(),
            Contents::Owned(vec) => vec.len(),
        }
    }

    /// The bytes as an owned vector, copying shared ones first; also the
    /// number of bytes that copy took.
    fn owned(&mut self) -> (&mut Vec<u8>, u64) {
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

    fn take(&mut self) -> Bytes {
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
const EAGER_RESERVE_BYTES: u64 = 64 << 10;

/// What the first write of `len` bytes into a buffer of `capacity` reserves.
fn buffer_capacity_to_reserve(capacity: u64, len: usize) -> usize {
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
#[derive(Debug, Clone, Default)]
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

/// Bytes copied across the guest boundary by the host's buffer functions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Bytes copied from host buffers into guest memory (`read`, `read-all`).
    pub into_guest: u64,
    /// Bytes copied from guest memory into host buffers (`write`, `append`).
    pub out_of_guest: u64,
    /// Bytes copied host-to-host: a `clone-into-mutable` copy materialized
    /// by a write (a clone that is only frozen shares its source's bytes).
    pub host_to_host: u64,
}

/// Totals over every live instance of one engine: what a leak would show.
///
/// Buffer bytes change on nearly every host call, from every thread that
/// runs an instance: one shared counter would be a cache line all those
/// threads fight over. So each instance counts in one of several shards
/// (each on its own cache line), and reading the total sums them. An
/// instance publishes its charge when a call ends (not at every host call:
/// an atomic add per `allocate` and per `drop` was a quarter of what the
/// host adds to them), so during a call the totals show the charge as it
/// was when the call began.
#[derive(Debug, Default)]
pub struct EngineTotals {
    instances: AtomicU64,
    buffer_bytes: [Shard; SHARDS],
    next_shard: AtomicU64,
}

const SHARDS: usize = 16;

/// A counter alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(AtomicU64);

impl EngineTotals {
    /// Instances alive (their stores not yet dropped).
    pub fn live_instances(&self) -> u64 {
        self.instances.load(Ordering::Relaxed)
    }

    /// Buffer-budget bytes charged to guests, over all live instances.
    pub fn guest_buffer_bytes(&self) -> u64 {
        // Each shard only ever holds what its own instances charged, so
        // every shard is a sum of non-negative charges.
        self.buffer_bytes
            .iter()
            .map(|shard| shard.0.load(Ordering::Relaxed))
            .sum()
    }

    /// The shard a new instance counts in (round robin).
    fn assign_shard(&self) -> usize {
        self.next_shard.fetch_add(1, Ordering::Relaxed) as usize % SHARDS
    }

    fn add(&self, shard: usize, bytes: u64) {
        self.buffer_bytes[shard]
            .0
            .fetch_add(bytes, Ordering::Relaxed);
    }

    fn sub(&self, shard: usize, bytes: u64) {
        self.buffer_bytes[shard]
            .0
            .fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Per-instance host state behind the contract's imports.
#[derive(Debug)]
pub struct HostState {
    buffers: Slab<Buffer>,
    mutable_buffers: Slab<MutableBuffer>,
    flows: Slab<FlowContext>,
    /// WASI's resources (WASI guests only).
    table: ResourceTable,
    budget: u64,
    charged: u64,
    /// What `totals` holds of `charged` (published at the end of each call).
    published: u64,
    totals: Arc<EngineTotals>,
    /// This instance's shard of `totals.buffer_bytes`.
    shard: usize,
    copies: CopyStats,
    capabilities: BTreeSet<String>,
    queries: Vec<String>,
    /// Fuel limit of the current call for the host's copying, if metered.
    copy_fuel_limit: Option<u64>,
    /// Fuel charged for the host's copying in the current call.
    copy_fuel_used: u64,
}

/// Capability queries kept per instance; later ones are counted, not kept.
const MAX_LOGGED_QUERIES: usize = 1024;

impl HostState {
    /// A host state whose guest may hold at most `budget` bytes of buffers,
    /// counted in `totals` while it lives.
    pub fn new(budget: u64, capabilities: BTreeSet<String>, totals: Arc<EngineTotals>) -> Self {
        totals.instances.fetch_add(1, Ordering::Relaxed);
        let shard = totals.assign_shard();
        HostState {
            buffers: Slab::default(),
            mutable_buffers: Slab::default(),
            flows: Slab::default(),
            table: ResourceTable::new(),
            budget,
            charged: 0,
            published: 0,
            totals,
            shard,
            copies: CopyStats::default(),
            capabilities,
            queries: Vec::new(),
            copy_fuel_limit: None,
            copy_fuel_used: 0,
        }
    }

    /// Starts a call's accounting of host copying under `fuel_limit`.
    pub(crate) fn begin_call(&mut self, fuel_limit: Option<u64>) {
        self.copy_fuel_limit = fuel_limit;
        self.copy_fuel_used = 0;
    }

    /// Fuel the host's copying took in the current (or last) call.
    pub fn copy_fuel_used(&self) -> u64 {
        self.copy_fuel_used
    }

    /// Charges the copying of `bytes` to the current call, before it is
    /// done: past the call's fuel limit it traps as out of fuel.
    fn charge_copy(&mut self, bytes: usize) -> wasmtime::Result<()> {
        let fuel = (bytes as u64).div_ceil(HOST_COPY_BYTES_PER_FUEL);
        self.copy_fuel_used = self.copy_fuel_used.saturating_add(fuel);
        match self.copy_fuel_limit {
            Some(limit) if self.copy_fuel_used > limit => Err(wasmtime::Trap::OutOfFuel.into()),
            _ => Ok(()),
        }
    }

    /// Frees every resource the guest holds, keeping the host's own lending
    /// handles (`input`, `flow`): after a failure or a cancelled call the
    /// instance takes no more calls, so nothing it held is needed.
    pub(crate) fn release_guest_held(&mut self, input: u32, flow: u32) {
        let mut released = 0;
        self.buffers.retain(|rep, buffer| {
            let keep = rep == input;
            if !keep {
                released += buffer.charged;
            }
            keep
        });
        self.mutable_buffers.retain(|_, buffer| {
            released += buffer.charged;
            false
        });
        self.flows.retain(|rep, _| rep == flow);
        // WASI's resources too (pollables, streams, descriptors).
        self.table = ResourceTable::new();
        self.release(released);
        self.publish_totals();
    }

    /// The capability names the guest asked about, in order (the first
    /// 1024), whether granted or not.
    pub fn capability_queries(&self) -> &[String] {
        &self.queries
    }

    /// Bytes of the buffer budget in use by buffers the guest owns.
    pub fn budget_in_use(&self) -> u64 {
        self.charged
    }

    /// The buffer budget of this instance.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Bytes copied across the guest boundary so far.
    pub fn copies(&self) -> CopyStats {
        self.copies
    }

    /// Number of live resources: buffers, mutable buffers and flow contexts
    /// (host-owned ones included), plus WASI's.
    pub fn live_resources(&mut self) -> usize {
        self.buffers.len()
            + self.mutable_buffers.len()
            + self.flows.len()
            + self.table.iter_mut().count()
    }

    /// The resource table, shared with WASI's resources.
    pub(crate) fn table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Puts a host-owned buffer in the table (not charged to the guest's budget).
    pub(crate) fn push_buffer(&mut self, bytes: Bytes) -> wasmtime::Result<Resource<Buffer>> {
        let buffer = Buffer {
            bytes,
            content_type: String::new(),
            charged: 0,
        };
        self.buffers.push(buffer)
    }

    /// Replaces the bytes of a host-owned buffer in place (no table traffic).
    pub(crate) fn set_buffer_bytes(
        &mut self,
        buffer: &Resource<Buffer>,
        bytes: &Bytes,
    ) -> wasmtime::Result<()> {
        self.buffers.get_mut(buffer)?.bytes.clone_from(bytes);
        Ok(())
    }

    /// Puts a host-owned flow context in the table.
    pub(crate) fn push_flow(
        &mut self,
        flow: FlowContext,
    ) -> wasmtime::Result<Resource<FlowContext>> {
        self.flows.push(flow)
    }

    /// Replaces a host-owned flow context in place.
    pub(crate) fn set_flow(
        &mut self,
        handle: &Resource<FlowContext>,
        flow: FlowContext,
    ) -> wasmtime::Result<()> {
        *self.flows.get_mut(handle)? = flow;
        Ok(())
    }

    /// Takes ownership of a buffer the guest handed over (an output payload).
    /// Done after a call has ended: the engine's totals see the charge go.
    pub(crate) fn take_buffer(&mut self, buffer: Resource<Buffer>) -> wasmtime::Result<Buffer> {
        let buffer = self.buffers.delete(buffer)?;
        self.release(buffer.charged);
        self.publish_totals();
        Ok(buffer)
    }

    fn release(&mut self, bytes: u64) {
        self.charged -= bytes;
    }

    /// `buffer.read(offset, len)` (and `read-all`: 0, `u64::MAX`): the
    /// bytes, shared with the buffer (no copy here: the canonical ABI
    /// copies them once, into the guest). The copy is charged first.
    pub(crate) fn read_shared(
        &mut self,
        this: &Resource<Buffer>,
        offset: u64,
        len: u64,
    ) -> wasmtime::Result<Bytes> {
        let total = self.buffers.get(this)?.bytes.len();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(total);
        let end = start
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            .min(total);
        self.charge_copy(end - start)?;
        self.copies.into_guest += (end - start) as u64;
        Ok(self.buffers.get(this)?.bytes.slice(start..end))
    }

    /// Opens a mutable buffer for a write of `len` bytes at `at`: checks
    /// bounds and capacity, charges the copying (the guest's bytes, and a
    /// shared clone's bytes if they must be copied now) *before* it is
    /// done, and lends out the buffer's vector with the write's offset.
    /// [`close_write`](Self::close_write) gives it back; in between, the
    /// caller copies the bytes in ([`write_into`]) from wherever they lie
    /// (guest memory, for the linked host function).
    pub(crate) fn open_write(
        &mut self,
        this: &Resource<MutableBuffer>,
        at: WriteAt,
        len: usize,
    ) -> wasmtime::Result<Result<(Vec<u8>, usize), BufferError>> {
        let buffer = self.mutable_buffers.get(this)?;
        let current = buffer.data.len() as u64;
        let offset = match at {
            WriteAt::End => current,
            WriteAt::Offset(offset) => offset,
        };
        if buffer.spent || offset > current {
            return Ok(Err(BufferError::OutOfBounds));
        }
        if offset.saturating_add(len as u64) > buffer.capacity {
            return Ok(Err(BufferError::CapacityExceeded));
        }
        let shared = match &buffer.data {
            Contents::Shared(bytes) => bytes.len(),
            Contents::Owned(_) => 0,
        };
        let capacity = buffer_capacity_to_reserve(buffer.capacity, len);
        self.charge_copy(len + shared)?;
        let (data, copied) = self.mutable_buffers.get_mut(this)?.data.owned();
        let mut data = std::mem::take(data);
        if data.capacity() == 0 {
            // The first write sizes the vector for what the guest said it
            // will write (already charged to the budget), so a guest that
            // appends in chunks does not make the host grow it again.
            data.reserve_exact(capacity);
        }
        self.copies.out_of_guest += len as u64;
        self.copies.host_to_host += copied;
        Ok(Ok((data, offset as usize)))
    }

    /// Gives back the vector [`open_write`](Self::open_write) lent out.
    pub(crate) fn close_write(
        &mut self,
        this: &Resource<MutableBuffer>,
        data: Vec<u8>,
    ) -> wasmtime::Result<()> {
        self.mutable_buffers.get_mut(this)?.data = Contents::Owned(data);
        Ok(())
    }

    /// A write of `bytes` the host already holds.
    fn write_from(
        &mut self,
        this: &Resource<MutableBuffer>,
        at: WriteAt,
        bytes: &[u8],
    ) -> wasmtime::Result<Result<(), BufferError>> {
        let (mut data, offset) = match self.open_write(this, at, bytes.len())? {
            Ok(opened) => opened,
            Err(error) => return Ok(Err(error)),
        };
        write_into(&mut data, offset, bytes);
        self.close_write(this, data)?;
        Ok(Ok(()))
    }

    /// Refuses a content type longer than [`MAX_CONTENT_TYPE_BYTES`] (a
    /// trap): called before the text is copied anywhere.
    pub(crate) fn check_content_type_len(len: usize) -> wasmtime::Result<()> {
        if len > MAX_CONTENT_TYPE_BYTES {
            wasmtime::bail!(
                "mutable-buffer.set-content-type: a content type of {len} bytes is longer than \
                 the {MAX_CONTENT_TYPE_BYTES}-byte limit"
            );
        }
        Ok(())
    }

    /// `mutable-buffer.set-content-type`: stores `content_type` (in the
    /// buffer's own string, reusing its allocation), charged to the budget.
    pub(crate) fn set_content_type_str(
        &mut self,
        this: &Resource<MutableBuffer>,
        content_type: &str,
    ) -> wasmtime::Result<()> {
        Self::check_content_type_len(content_type.len())?;
        let old = self.mutable_buffers.get(this)?.content_type.len() as u64;
        let new = content_type.len() as u64;
        // The content type is host memory the guest chose: it is charged to
        // the buffer like its bytes (and moves with them on `freeze`).
        if new > old {
            if let Err(BufferError::AllocationFailed(why)) = self.charge_exact(new - old, new - old)
            {
                wasmtime::bail!("mutable-buffer.set-content-type: {why}");
            }
        } else {
            self.release(old - new);
        }
        let buffer = self.mutable_buffers.get_mut(this)?;
        buffer.charged = buffer.charged + new - old;
        buffer.content_type.clear();
        buffer.content_type.push_str(content_type);
        Ok(())
    }

    /// One identifier of a flow context, shared.
    pub(crate) fn flow_identifier(
        &self,
        this: &Resource<FlowContext>,
        which: FlowId,
    ) -> wasmtime::Result<Arc<str>> {
        let flow = self.flows.get(this)?;
        Ok(match which {
            FlowId::Trace => flow.trace_id.clone(),
            FlowId::Span => flow.span_id.clone(),
            FlowId::Flow => flow.flow_id.clone(),
        })
    }

    /// Whether capability `name` is granted.
    pub(crate) fn capability_granted(&self, name: &str) -> bool {
        self.capabilities.contains(name)
    }

    /// Logs a capability query: `kept` is the name cut to
    /// [`MAX_CAPABILITY_NAME_BYTES`], `cut_off` says whether it was cut.
    pub(crate) fn log_query(&mut self, kept: &str, cut_off: bool) {
        if self.queries.len() < MAX_LOGGED_QUERIES {
            self.queries.push(if cut_off {
                format!("{kept}…")
            } else {
                kept.to_string()
            });
        }
    }

    /// Brings the engine's totals up to this instance's charge: done when a
    /// call ends, and by the methods that change the charge outside a call
    /// (`take_buffer`, `release_guest_held`); see [`EngineTotals`].
    pub(crate) fn publish_totals(&mut self) {
        if self.charged > self.published {
            self.totals.add(self.shard, self.charged - self.published);
        } else if self.charged < self.published {
            self.totals.sub(self.shard, self.published - self.charged);
        }
        self.published = self.charged;
    }

    /// Charges a new buffer of `bytes` (plus its overhead) to the budget.
    fn charge(&mut self, bytes: u64) -> Result<u64, BufferError> {
        self.charge_exact(bytes.saturating_add(BUFFER_OVERHEAD_BYTES), bytes)
    }

    /// Charges `cost` bytes to the budget; `requested` is what the guest asked for.
    fn charge_exact(&mut self, cost: u64, requested: u64) -> Result<u64, BufferError> {
        match self.charged.checked_add(cost) {
            Some(total) if total <= self.budget => {
                self.charged = total;
                Ok(cost)
            }
            _ => Err(BufferError::AllocationFailed(format!(
                "buffer budget exhausted: {} of {} bytes in use, {requested} more requested",
                self.charged, self.budget
            ))),
        }
    }

    /// A new mutable buffer of `capacity` holding `data`, charged to the
    /// budget and put straight into its table (built in place: the entry is
    /// large, and moving it through a `Result` was a measurable share of
    /// `allocate`).
    #[inline]
    fn push_mutable(
        &mut self,
        capacity: u64,
        data: Contents,
    ) -> wasmtime::Result<Result<Resource<MutableBuffer>, BufferError>> {
        let charged = match self.charge(capacity) {
            Ok(charged) => charged,
            Err(error) => return Ok(Err(error)),
        };
        Ok(Ok(self.mutable_buffers.push(MutableBuffer {
            data,
            capacity,
            content_type: String::new(),
            charged,
            spent: false,
        })?))
    }
}

impl types::Host for HostState {}

impl types::HostBuffer for HostState {
    fn size(&mut self, this: Resource<Buffer>) -> wasmtime::Result<u64> {
        Ok(self.buffers.get(&this)?.bytes.len() as u64)
    }

    fn content_type(&mut self, this: Resource<Buffer>) -> wasmtime::Result<String> {
        Ok(self.buffers.get(&this)?.content_type.clone())
    }

    // The engine links `read` and `read-all` directly (`crate::direct`,
    // returning shared bytes); these serve the same through the generated
    // signatures.
    fn read(&mut self, this: Resource<Buffer>, offset: u64, len: u64) -> wasmtime::Result<Vec<u8>> {
        Ok(self.read_shared(&this, offset, len)?.to_vec())
    }

    fn read_all(&mut self, this: Resource<Buffer>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.read_shared(&this, 0, u64::MAX)?.to_vec())
    }

    fn drop(&mut self, this: Resource<Buffer>) -> wasmtime::Result<()> {
        let charged = self.buffers.delete_with(this, |buffer| buffer.charged)?;
        self.release(charged);
        Ok(())
    }
}

impl types::HostMutableBuffer for HostState {
    // The engine links `write`, `append` and `set-content-type` directly
    // (`crate::direct`, reading the guest's bytes where they lie); these
    // serve the same through the generated signatures.
    fn write(
        &mut self,
        this: Resource<MutableBuffer>,
        offset: u64,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), BufferError>> {
        self.write_from(&this, WriteAt::Offset(offset), &bytes)
    }

    fn append(
        &mut self,
        this: Resource<MutableBuffer>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), BufferError>> {
        self.write_from(&this, WriteAt::End, &bytes)
    }

    fn size(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<u64> {
        Ok(self.mutable_buffers.get(&this)?.data.len() as u64)
    }

    fn capacity(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<u64> {
        Ok(self.mutable_buffers.get(&this)?.capacity)
    }

    fn set_content_type(
        &mut self,
        this: Resource<MutableBuffer>,
        content_type: String,
    ) -> wasmtime::Result<()> {
        self.set_content_type_str(&this, &content_type)
    }

    fn freeze(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<Resource<Buffer>> {
        let buffer = self.mutable_buffers.get_mut(&this)?;
        if buffer.spent {
            // Its bytes and budget charge already went to the first freeze.
            wasmtime::bail!("mutable-buffer.freeze: the buffer was frozen already");
        }
        // The budget charge moves with the bytes to the frozen buffer.
        let frozen = Buffer {
            bytes: buffer.data.take(),
            content_type: std::mem::take(&mut buffer.content_type),
            charged: std::mem::take(&mut buffer.charged),
        };
        buffer.spent = true;
        self.buffers.push(frozen)
    }

    fn drop(&mut self, this: Resource<MutableBuffer>) -> wasmtime::Result<()> {
        let charged = self
            .mutable_buffers
            .delete_with(this, |buffer| buffer.charged)?;
        self.release(charged);
        Ok(())
    }
}

impl types::HostFlowContext for HostState {
    // The engine links the three identifier getters directly
    // (`crate::direct`, returning the shared strings); these serve the same
    // through the generated signatures.
    fn trace_id(&mut self, this: Resource<FlowContext>) -> wasmtime::Result<String> {
        Ok(self.flow_identifier(&this, FlowId::Trace)?.to_string())
    }

    fn span_id(&mut self, this: Resource<FlowContext>) -> wasmtime::Result<String> {
        Ok(self.flow_identifier(&this, FlowId::Span)?.to_string())
    }

    fn deadline_ns(&mut self, this: Resource<FlowContext>) -> wasmtime::Result<u64> {
        let remaining = self.flows.get(&this)?.deadline.map(|deadline| {
            // A passed deadline reports 1 ns, since 0 means "no deadline".
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_nanos();
            u64::try_from(left).unwrap_or(u64::MAX).max(1)
        });
        Ok(remaining.unwrap_or(0))
    }

    fn flow_id(&mut self, this: Resource<FlowContext>) -> wasmtime::Result<String> {
        Ok(self.flow_identifier(&this, FlowId::Flow)?.to_string())
    }

    fn drop(&mut self, this: Resource<FlowContext>) -> wasmtime::Result<()> {
        self.flows.delete(this)?;
        Ok(())
    }
}

impl buffer_allocator::Host for HostState {
    fn allocate(
        &mut self,
        capacity_hint: u64,
    ) -> wasmtime::Result<Result<Resource<MutableBuffer>, BufferError>> {
        // The budget bounds the request; memory comes with the first write
        // (which reserves the hint, up to `EAGER_RESERVE_BYTES`).
        self.push_mutable(capacity_hint, Contents::Owned(Vec::new()))
    }

    fn clone_into_mutable(
        &mut self,
        source: Resource<Buffer>,
    ) -> wasmtime::Result<Result<Resource<MutableBuffer>, BufferError>> {
        let bytes = self.buffers.get(&source)?.bytes.clone();
        self.push_mutable(bytes.len() as u64, Contents::Shared(bytes))
    }
}

impl capability_query::Host for HostState {
    // Linked directly by the engine (`crate::direct`); this serves the
    // same through the generated signature.
    fn has_capability(&mut self, name: String) -> wasmtime::Result<bool> {
        let kept = cut(&name, MAX_CAPABILITY_NAME_BYTES);
        self.log_query(kept, kept.len() < name.len());
        Ok(self.capability_granted(&name))
    }
}

impl Drop for HostState {
    /// The instance is gone: whatever its guest still held is freed with the table.
    fn drop(&mut self) {
        self.totals.sub(self.shard, self.published);
        self.totals.instances.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::buffer_allocator::Host as _;
    use crate::bindings::types::{HostBuffer as _, HostMutableBuffer as _};

    fn host(budget: u64) -> HostState {
        HostState::new(budget, BTreeSet::new(), Arc::default())
    }

    #[test]
    fn mutable_buffers_enforce_capacity_and_bounds() {
        let mut host = host(1 << 20);
        let buffer = host.allocate(8).unwrap().unwrap();
        let handle = || Resource::<MutableBuffer>::new_borrow(buffer.rep());
        assert_eq!(host.capacity(handle()).unwrap(), 8);
        host.append(handle(), b"abcd".to_vec()).unwrap().unwrap();
        // Overwrite inside, then extend past the end: "abXYZ".
        host.write(handle(), 2, b"XYZ".to_vec()).unwrap().unwrap();
        assert_eq!(
            types::HostMutableBuffer::size(&mut host, handle()).unwrap(),
            5
        );
        assert!(matches!(
            host.write(handle(), 9, b"!".to_vec()).unwrap(),
            Err(BufferError::OutOfBounds)
        ));
        assert!(matches!(
            host.append(handle(), b"1234".to_vec()).unwrap(),
            Err(BufferError::CapacityExceeded)
        ));
        host.set_content_type(handle(), "text/x".into()).unwrap();
        let frozen = host.freeze(handle()).unwrap();
        // A frozen mutable buffer is spent.
        assert!(matches!(
            host.append(handle(), b"z".to_vec()).unwrap(),
            Err(BufferError::OutOfBounds)
        ));
        let view = || Resource::<Buffer>::new_borrow(frozen.rep());
        assert_eq!(host.read_all(view()).unwrap(), b"abXYZ");
        assert_eq!(
            types::HostBuffer::content_type(&mut host, view()).unwrap(),
            "text/x"
        );
        // Reads clamp to the end and never fail.
        assert_eq!(host.read(view(), 3, 100).unwrap(), b"YZ");
        assert_eq!(host.read(view(), 100, 1).unwrap(), b"");
        assert_eq!(host.read(view(), 1, u64::MAX).unwrap(), b"bXYZ");
        assert_eq!(host.copies().out_of_guest, 7);
        assert_eq!(host.copies().into_guest, 5 + 2 + 4);

        types::HostMutableBuffer::drop(&mut host, buffer).unwrap();
        types::HostBuffer::drop(&mut host, frozen).unwrap();
        assert_eq!(host.budget_in_use(), 0);
        assert_eq!(host.live_resources(), 0);
    }

    #[test]
    fn clones_share_bytes_until_written() {
        let mut host = host(1 << 20);
        let source = host.push_buffer(Bytes::from_static(b"shared")).unwrap();
        let view = |r: &Resource<Buffer>| Resource::<Buffer>::new_borrow(r.rep());
        // Clone and freeze: the very same bytes, no copy.
        let clone = host.clone_into_mutable(view(&source)).unwrap().unwrap();
        let frozen = host.freeze(Resource::new_borrow(clone.rep())).unwrap();
        let original = host.buffers.get(&source).unwrap().bytes().as_ptr();
        assert_eq!(
            host.buffers.get(&frozen).unwrap().bytes().as_ptr(),
            original
        );
        assert_eq!(host.copies().host_to_host, 0);
        // Clone and write: the copy happens, once, and the source is untouched.
        let written = host.clone_into_mutable(view(&source)).unwrap().unwrap();
        host.write(Resource::new_borrow(written.rep()), 0, b"S".to_vec())
            .unwrap()
            .unwrap();
        let result = host.freeze(Resource::new_borrow(written.rep())).unwrap();
        assert_eq!(host.read_all(view(&result)).unwrap(), b"Shared");
        assert_eq!(host.read_all(view(&source)).unwrap(), b"shared");
        assert_eq!(host.copies().host_to_host, 6);
    }

    #[test]
    fn the_budget_bounds_what_a_guest_holds() {
        let mut host = host(1000);
        let first = host.allocate(800).unwrap().unwrap();
        assert_eq!(host.budget_in_use(), 800 + BUFFER_OVERHEAD_BYTES);
        assert!(matches!(
            host.allocate(200).unwrap(),
            Err(BufferError::AllocationFailed(_))
        ));
        assert!(matches!(
            host.allocate(u64::MAX).unwrap(),
            Err(BufferError::AllocationFailed(_))
        ));
        types::HostMutableBuffer::drop(&mut host, first).unwrap();
        assert!(host.allocate(200).unwrap().is_ok());
    }

    #[test]
    fn stale_handles_trap_instead_of_panicking() {
        let mut host = host(1000);
        let error = types::HostBuffer::size(&mut host, Resource::new_borrow(42)).unwrap_err();
        assert!(
            error.to_string().contains("unknown Buffer handle 42"),
            "{error}"
        );
    }

    #[test]
    fn flow_deadlines_report_remaining_time() {
        use types::HostFlowContext as _;
        let mut host = host(1000);
        let flow = host
            .push_flow(FlowContext {
                deadline: Some(Instant::now() + std::time::Duration::from_secs(60)),
                flow_id: "f-1".into(),
                ..FlowContext::default()
            })
            .unwrap();
        let view = || Resource::<FlowContext>::new_borrow(flow.rep());
        let left = host.deadline_ns(view()).unwrap();
        assert!(left > 50_000_000_000 && left <= 60_000_000_000, "{left}");
        assert_eq!(host.flow_id(view()).unwrap(), "f-1");
        assert_eq!(host.trace_id(view()).unwrap(), "");
    }
}
