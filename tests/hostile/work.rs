//! Work the host does for a guest is charged to the call's fuel.

use std::time::{Duration, Instant};

use torvyn_engine::host::HOST_COPY_BYTES_PER_FUEL;
use torvyn_engine::{ComponentInvoker, Element, EngineConfig, Error};
use torvyn_fixtures::hostile;

use crate::{contained, engine_with};

#[test]
fn a_read_all_loop_runs_out_of_fuel_quickly() {
    let fuel = 1_000_000;
    let engine = engine_with(EngineConfig::builder().fuel_per_call(Some(fuel)));
    let payload = Element::new(0, "application/octet-stream", vec![7u8; 1 << 20]);
    let started = Instant::now();
    let mut fuel_used = 0;
    let error = contained(
        &engine,
        "read-all-loop",
        &hostile::read_all_loop(),
        |guest| {
            let result = guest.process(&payload);
            fuel_used = guest.fuel_consumed();
            result
        },
    );
    assert!(matches!(error, Error::FuelExhausted { .. }), "{error}");
    // At 16 bytes per unit of fuel, 1,000,000 fuel copies at most ~16 MiB.
    assert!(fuel_used > fuel, "host copying is counted: {fuel_used}");
    assert!(fuel * HOST_COPY_BYTES_PER_FUEL < 32 << 20);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// The host's copying is charged at the documented rate, one unit of fuel
/// per `HOST_COPY_BYTES_PER_FUEL` (16) bytes: one `read-all` of a 1 MiB
/// payload costs (1 MiB − 16 KiB) / 16 = 64,512 more fuel than one of a
/// 16 KiB payload (the guest runs the same instructions for both).
#[test]
fn host_copies_are_charged_one_fuel_per_16_bytes() {
    use torvyn_fixtures::transitions::{host_call_loop, LoopOp};
    let engine = engine_with(EngineConfig::builder().fuel_per_call(Some(50_000_000)));
    let mut guest = crate::instance(&engine, "host-loop", &host_call_loop());
    let mut fuel_for = |bytes: usize| {
        let element = Element::new(LoopOp::BufferReadAll.sequence(1), "", vec![7u8; bytes]);
        guest.process(&element).expect("one read-all");
        guest.fuel_consumed()
    };
    // Warm: the first call may grow the guest's memory.
    fuel_for(1 << 20);
    let (small, large) = (fuel_for(16 << 10), fuel_for(1 << 20));
    let copied = ((1u64 << 20) - (16 << 10)) / HOST_COPY_BYTES_PER_FUEL;
    assert_eq!(HOST_COPY_BYTES_PER_FUEL, 16);
    assert!(
        large.abs_diff(small + copied) <= 16,
        "1 MiB: {large}, 16 KiB: {small}, expected a difference of {copied}"
    );
}

/// The host's copying *into* host buffers is charged like its reads:
/// `mutable-buffer.write` and `append` of 64 bytes cost 64 / 16 = 4 fuel
/// each, so 1,000 of either cost exactly 4,000 (the host's own count of its
/// copying fuel), besides the guest's instructions.
#[test]
fn writes_and_appends_are_charged_one_fuel_per_16_bytes() {
    use torvyn_fixtures::transitions::{host_call_loop, LoopOp};
    let engine = engine_with(EngineConfig::builder().fuel_per_call(Some(50_000_000)));
    let mut guest = crate::instance(&engine, "host-loop", &host_call_loop());
    for op in [LoopOp::Write64, LoopOp::Append64] {
        let element = Element::new(op.sequence(1_000), "", vec![7u8; 64]);
        guest.process(&element).expect("1,000 copies of 64 bytes");
        assert_eq!(
            guest.host().copy_fuel_used(),
            1_000 * 64 / HOST_COPY_BYTES_PER_FUEL,
            "{op:?}"
        );
    }
}
