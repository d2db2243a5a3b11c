//! Guests that never return, in every entry point: fuel ends them, and so
//! does the deadline when fuel is off; per-component limits work whatever
//! the engine's defaults; a failing teardown does not stop the others'.

use std::time::{Duration, Instant};

use torvyn_engine::{
    ComponentInvoker, EngineConfig, Error, Pipeline, WasmEngine, WasmtimeEngine, WasmtimeInstance,
};
use torvyn_fixtures::hostile::{self, SpinIn};

use crate::common;
use crate::{element, engine_with};

fn fuel_engine() -> WasmtimeEngine {
    engine_with(
        EngineConfig::builder()
            .fuel_per_call(Some(1_000_000))
            .call_deadline(None),
    )
}

fn deadline_engine() -> WasmtimeEngine {
    engine_with(
        EngineConfig::builder()
            .fuel_per_call(None)
            .call_deadline(Some(Duration::from_millis(100))),
    )
}

/// Calls `entry` of a guest that spins there; returns the error (the
/// instantiation's, for `Start`).
fn spin(engine: &WasmtimeEngine, entry: SpinIn) -> Error {
    let component = common::compile(engine, &format!("{entry:?}"), &hostile::spins_in(entry));
    let call = |guest: &mut WasmtimeInstance| match entry {
        SpinIn::Init => guest.init("").map(|_| ()),
        SpinIn::Teardown => guest.teardown(),
        SpinIn::Pull => guest.pull().map(|_| ()),
        SpinIn::Flush => guest.flush().map(|_| ()),
        SpinIn::Route => guest.route(&element(0)).map(|_| ()),
        SpinIn::Start => unreachable!(),
    };
    let error = match engine.instantiate(&component) {
        Err(error) => {
            assert_eq!(entry, SpinIn::Start, "{error}");
            error
        }
        Ok(mut guest) => {
            let error = call(&mut guest).unwrap_err();
            // The same entry point again (every fixture exports it; not all
            // export `process`): refused, the instance is retired.
            match call(&mut guest) {
                Err(Error::Poisoned { site, .. }) => {
                    assert_eq!(site.component, format!("{entry:?}"))
                }
                other => panic!("{entry:?} after a spin: expected Poisoned, got {other:?}"),
            }
            common::assert_nothing_held(&mut guest);
            error
        }
    };
    assert_eq!(engine.totals().live_instances(), 0);
    error
}

fn function_of(entry: SpinIn) -> &'static str {
    match entry {
        SpinIn::Init => "init",
        SpinIn::Teardown => "teardown",
        SpinIn::Pull => "pull",
        SpinIn::Flush => "flush",
        SpinIn::Route => "route",
        SpinIn::Start => "instantiate",
    }
}

const ENTRIES: [SpinIn; 6] = [
    SpinIn::Init,
    SpinIn::Teardown,
    SpinIn::Pull,
    SpinIn::Flush,
    SpinIn::Route,
    SpinIn::Start,
];

#[test]
fn fuel_ends_a_spin_in_every_entry_point() {
    let engine = fuel_engine();
    for entry in ENTRIES {
        match spin(&engine, entry) {
            Error::FuelExhausted { site } => assert_eq!(site.function, function_of(entry)),
            other => panic!("{entry:?}: expected FuelExhausted, got {other:?}"),
        }
    }
}

#[test]
fn the_deadline_ends_a_spin_in_every_entry_point() {
    let engine = deadline_engine();
    for entry in ENTRIES {
        let started = Instant::now();
        match spin(&engine, entry) {
            Error::DeadlineExceeded { site } => assert_eq!(site.function, function_of(entry)),
            other => panic!("{entry:?}: expected DeadlineExceeded, got {other:?}"),
        }
        // Generous: the point is that the host gets control back.
        assert!(started.elapsed() < Duration::from_secs(5), "{entry:?}");
    }
}

#[test]
fn per_component_limits_work_on_a_lenient_engine() {
    // No fuel anywhere: no metering compiled in, and a component fuel
    // limit is refused naming the setting that allows it.
    let engine = engine_with(
        EngineConfig::builder()
            .fuel_per_call(None)
            .call_deadline(None),
    );
    let looper = common::compile(&engine, "looper", &torvyn_fixtures::faults::infinite_loop());
    let fuel = {
        let mut limits = looper.limits().clone();
        limits.fuel_per_call = Some(1_000_000);
        limits
    };
    match looper.with_limits(fuel.clone()) {
        Err(Error::Config(why)) => assert!(
            why.contains("component `looper`") && why.contains("component_fuel(true)"),
            "{why}"
        ),
        other => panic!("expected the fuel limit refused, got {other:?}"),
    }
    let metered = engine_with(
        EngineConfig::builder()
            .fuel_per_call(None)
            .call_deadline(None)
            .component_fuel(true),
    );
    let fueled = common::compile(
        &metered,
        "looper",
        &torvyn_fixtures::faults::infinite_loop(),
    )
    .with_limits(fuel)
    .unwrap();
    let mut guest = metered.instantiate(&fueled).unwrap();
    assert!(matches!(
        guest.process(&element(0)),
        Err(Error::FuelExhausted { .. })
    ));
    assert_eq!(guest.fuel_consumed(), 1_000_000);

    // A deadline needs no metering: the unmetered engine's component.
    let timed = looper
        .with_limits({
            let mut limits = looper.limits().clone();
            limits.call_deadline = Some(Duration::from_millis(200));
            limits
        })
        .unwrap();
    let mut guest = engine.instantiate(&timed).unwrap();
    let started = Instant::now();
    assert!(matches!(
        guest.process(&element(0)),
        Err(Error::DeadlineExceeded { .. })
    ));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn a_failing_teardown_does_not_stop_the_others() {
    let engine = deadline_engine();
    let stage = |name: &str, bytes: &[u8]| {
        engine
            .instantiate(&common::compile(&engine, name, bytes))
            .unwrap()
    };
    let mut pipeline = Pipeline::new(
        stage("source", &torvyn_fixtures::counting_source()),
        vec![stage("spinner", &hostile::spins_in(SpinIn::Teardown))],
        stage("sink", &torvyn_fixtures::recording_sink()),
    )
    .unwrap();
    pipeline.init("3").unwrap();
    pipeline.run(|_| {}).unwrap();
    match pipeline.teardown() {
        Err(Error::DeadlineExceeded { site }) => {
            assert_eq!(site.component, "spinner");
            assert_eq!(site.function, "teardown");
        }
        other => panic!("expected the spinner's deadline, got {other:?}"),
    }
    let (source, _, sink) = pipeline.stages();
    for (name, stage) in [("source", source), ("sink", sink)] {
        assert!(
            stage
                .host()
                .capability_queries()
                .iter()
                .any(|q| q == "fixture:teardown"),
            "{name} was not torn down: {:?}",
            stage.host().capability_queries()
        );
    }
}
