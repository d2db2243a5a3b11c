//! Work the host does for a guest is charged to the call's fuel.

use torvyn_engine::host::HOST_COPY_BYTES_PER_FUEL;
use torvyn_engine::{ComponentInvoker, Element, EngineConfig, Error};
use torvyn_fixtures::hostile;

use crate::{contained, engine_with};

/// A guest copying 1 MiB payloads in a loop is stopped by its fuel after
/// at most fuel × 16 bytes of host copying (16 MiB for 1,000,000), not
/// after the loop's own count: the host's copying is what spent the fuel.
#[test]
fn a_read_all_loop_runs_out_of_fuel_quickly() {
    let fuel = 1_000_000;
    let engine = engine_with(EngineConfig::builder().fuel_per_call(Some(fuel)));
    let payload = Element::new(0, "application/octet-stream", vec![7u8; 1 << 20]);
    let (mut fuel_used, mut copy_fuel) = (0, 0);
    let error = contained(
        &engine,
        "read-all-loop",
        &hostile::read_all_loop(),
        |guest| {
            let result = guest.process(&payload);
            fuel_used = guest.fuel_consumed();
            copy_fuel = guest.host().copy_fuel_used();
            result
        },
    );
    assert!(matches!(error, Error::FuelExhausted { .. }), "{error}");
    // The copying was charged, and it is most of what the call spent: a
    // 1 MiB read-all costs 65,536 fuel, so 15 of them fit in the 1,000,000;
    // the 16th is charged, found over the limit, and refused before its
    // bytes are copied (15 MiB copied in all).
    let per_read_all = (1u64 << 20) / HOST_COPY_BYTES_PER_FUEL;
    assert_eq!(copy_fuel, 16 * per_read_all, "copy fuel {copy_fuel}");
    assert!(
        fuel_used >= fuel && fuel_used <= fuel + per_read_all,
        "{fuel_used}"
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
