//! [`HostState`]: one instance's side of the contract — the handle tables
//! holding the resources its guest can see, the byte budget of the buffers
//! the guest allocates, and the accounting of the bytes copied across the
//! guest boundary. Every host function, generated or direct, does its
//! work through these methods: one body per function.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::{Resource, ResourceTable};

use crate::bindings::types::BufferError;
use crate::slab::Slab;

use super::capabilities::Capabilities;
use super::limits::{BUFFER_OVERHEAD_BYTES, HOST_COPY_BYTES_PER_FUEL, MAX_CONTENT_TYPE_BYTES};
use super::resources::{buffer_capacity_to_reserve, write_into, Contents, FlowId, WriteAt};
use super::resources::{Buffer, FlowContext, MutableBuffer};
use super::totals::{CopyStats, EngineTotals};

/// Per-instance host state behind the contract's imports.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::{ComponentInvoker, Element};
///
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// let mut instance = engine.instantiate(&upper)?;
/// instance.process(&Element::new(0, "", "abc"))?;
/// let host = instance.host();
/// assert_eq!(host.budget_in_use(), 0); // its output buffer went to the host
/// assert_eq!(host.copies().into_guest, 3); // `read-all` copied the payload in once
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug)]
pub struct HostState {
    pub(super) buffers: Slab<Buffer>,
    pub(super) mutable_buffers: Slab<MutableBuffer>,
    pub(super) flows: Slab<FlowContext>,
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
    /// The capability interface's own state.
    pub(crate) capabilities: Capabilities,
    /// Fuel limit of the current call for the host's copying, if metered.
    copy_fuel_limit: Option<u64>,
    /// Fuel charged for the host's copying in the current call.
    copy_fuel_used: u64,
    /// The last budget refusal of the current call: a guest that traps
    /// after it (it could not go on without the buffer) gets it in its
    /// trap's message, so the error names the limit.
    refusal: Option<String>,
}

impl HostState {
    /// A host state whose guest may hold at most `budget` bytes of buffers,
    /// counted in `totals` while it lives.
    pub(crate) fn new(
        budget: u64,
        capabilities: BTreeSet<String>,
        totals: Arc<EngineTotals>,
    ) -> Self {
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
            capabilities: Capabilities::new(capabilities),
            copy_fuel_limit: None,
            copy_fuel_used: 0,
            refusal: None,
        }
    }

    /// Starts a call's accounting of host copying under `fuel_limit`.
    pub(crate) fn begin_call(&mut self, fuel_limit: Option<u64>) {
        self.copy_fuel_limit = fuel_limit;
        self.copy_fuel_used = 0;
        if self.refusal.is_some() {
            self.refusal = None;
        }
    }

    /// The budget refusal of the current call, if there was one.
    pub(crate) fn take_refusal(&mut self) -> Option<String> {
        self.refusal.take()
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
        self.capabilities.queries()
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
    /// Done after a call has ended, before its entry publishes the charge.
    pub(crate) fn take_buffer(&mut self, buffer: Resource<Buffer>) -> wasmtime::Result<Buffer> {
        let buffer = self.buffers.delete(buffer)?;
        self.release(buffer.charged);
        Ok(buffer)
    }

    pub(super) fn release(&mut self, bytes: u64) {
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
    pub(super) fn write_from(
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

    /// Brings the engine's totals up to this instance's charge: done when a
    /// contract function returns (its outputs taken), when a call is
    /// cancelled, and by `release_guest_held`; see [`EngineTotals`].
    #[inline]
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
            _ => {
                let refused = format!(
                    "buffer budget exhausted: {} of {} bytes in use, {requested} more requested",
                    self.charged, self.budget
                );
                self.refusal = Some(format!("{refused} (limit buffer_budget_bytes)"));
                Err(BufferError::AllocationFailed(refused))
            }
        }
    }

    /// A new mutable buffer of `capacity` holding `data`, charged to the
    /// budget and put straight into its table (built in place: the entry is
    /// large, and moving it through a `Result` was a measurable share of
    /// `allocate`).
    #[inline]
    pub(super) fn push_mutable(
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

impl Drop for HostState {
    /// The instance is gone: whatever its guest still held is freed with the table.
    fn drop(&mut self) {
        self.totals.sub(self.shard, self.published);
        self.totals.instances.fetch_sub(1, Ordering::Relaxed);
    }
}
