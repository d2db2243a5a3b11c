//! A failed guest call or instantiation, told apart: fuel, deadline,
//! memory, handles, or a trap (named after the host's last refusal).

use wasmtime::{Store, Trap, WasmBacktrace};

use crate::error::{CallSite, Error};
use crate::store::StoreState;

pub(crate) fn site(component: &str, function: &str) -> CallSite {
    CallSite {
        component: component.to_string(),
        function: function.to_string(),
    }
}

/// wasmtime 48's messages for three refusals it reports without a trap
/// code or error type of their own, so they are told apart by text; each is
/// pinned by a test that provokes it (a wasmtime that words one differently
/// fails that test instead of misreporting the refusal):
/// - a guest passing more to the host in one transfer than its hostcall
///   fuel allows (`tests/hostile/memory.rs`, `max_transfer_bytes`);
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";
/// - a guest holding more handles than the store allows
///   (`tests/hostile/memory.rs`, `max_handles`);
const HANDLE_LIMIT_EXCEEDED: &str = "store handle limit exceeded";
/// - a component with more core instances, memories or tables than its
///   limits (`tests/hostile/memory.rs`, `max_memories`).
pub(super) const PART_COUNT_TOO_HIGH: &str = "count too high";

/// Classifies a failed guest call or instantiation.
pub(super) fn classify(
    store: &mut Store<StoreState>,
    limits: &crate::config::Limits,
    site: CallSite,
    error: wasmtime::Error,
) -> Error {
    let refused = store.data_mut().limiter.refused.take();
    // A trap right after the host refused the guest a buffer is most likely
    // the guest giving up without it: the trap says so, naming the limit.
    let mut after = |trap: String| match store.data_mut().host.take_refusal() {
        Some(refusal) => format!("{trap} (after the host refused it: {refusal})"),
        None => trap,
    };
    let code = error.downcast_ref::<Trap>().copied();
    // The guest's frames ride on the error as context; they are taken out
    // (into the error's `backtrace`), so its text does not carry them too.
    let mut message = format!("{error:#}");
    if let Some(frames) = error.downcast_ref::<WasmBacktrace>() {
        message = message.replacen(&format!("{frames}: "), "", 1);
    }
    let backtrace = error.downcast::<WasmBacktrace>().ok().map(Box::new);
    match (code, refused) {
        (Some(Trap::OutOfFuel), _) => Error::FuelExhausted { site },
        (Some(Trap::Interrupt), _) => Error::DeadlineExceeded { site },
        (_, Some(detail)) => Error::MemoryLimit { site, detail },
        _ if message.contains(HOSTCALL_FUEL_EXHAUSTED) => Error::MemoryLimit {
            site,
            detail: format!(
                "the guest passed more than {} bytes to the host in one transfer \
                     (limit max_transfer_bytes)",
                limits.max_transfer_bytes
            ),
        },
        _ if message.contains(HANDLE_LIMIT_EXCEEDED) => Error::MemoryLimit {
            site,
            detail: format!(
                "the guest would hold more than {} handles at once (limit max_handles)",
                limits.max_handles
            ),
        },
        (Some(trap), None) => Error::Trap {
            site,
            trap: after(trap.to_string()),
            code: Some(trap),
            backtrace,
        },
        (None, None) => Error::Trap {
            site,
            trap: after(message),
            code: None,
            backtrace,
        },
    }
}
