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
