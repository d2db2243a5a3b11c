//! Unit tests of the host state.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::Resource;

use super::*;
use crate::bindings::buffer_allocator::Host as _;
use crate::bindings::types;
use crate::bindings::types::BufferError;
use crate::bindings::types::{HostBuffer as _, HostMutableBuffer as _};
use std::time::Instant;

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
