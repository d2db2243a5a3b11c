//! A WASI guest blocked in the host (a clock wait) is ended at its deadline,
//! where epoch interruption cannot reach.

use std::time::{Duration, Instant};

use torvyn_engine::{EngineConfig, Error};
use torvyn_fixtures::hostile;

use crate::{contained_process, engine_with};

#[test]
fn a_ten_second_sleep_ends_at_a_100_ms_deadline_on_the_sync_path() {
    let engine =
        engine_with(EngineConfig::builder().call_deadline(Some(Duration::from_millis(100))));
    let started = Instant::now();
    let error = contained_process(&engine, "sleeper", &hostile::wasi_sleeper(10_000));
    let took = started.elapsed();
    assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn a_short_sleep_within_the_deadline_completes() {
    let engine =
        engine_with(EngineConfig::builder().call_deadline(Some(Duration::from_millis(500))));
    let mut guest = crate::instance(&engine, "sleeper", &hostile::wasi_sleeper(20));
    let started = Instant::now();
    let out = torvyn_engine::ComponentInvoker::process(&mut guest, &crate::element(0)).unwrap();
    assert_eq!(out, torvyn_engine::ProcessOutcome::Drop);
    assert!(started.elapsed() >= Duration::from_millis(20));
}
