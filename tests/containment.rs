//! Untrusted components: every fault yields its own error, the instance is
//! poisoned, nothing leaks, and other instances keep working.

mod common;

use std::time::{Duration, Instant};

use torvyn_engine::{
    ComponentInvoker, Element, EngineConfig, Error, GuestError, ProcessOutcome, WasmEngine,
    WasmtimeEngine, WasmtimeInstance,
};
use torvyn_fixtures::faults;

fn engine_with(config: torvyn_engine::EngineConfigBuilder) -> WasmtimeEngine {
    WasmtimeEngine::new(config.build().unwrap()).unwrap()
}

/// Engine with fuel and a deadline, 4 MiB memories and a 64 KiB buffer budget.
fn strict_engine() -> WasmtimeEngine {
    engine_with(
        EngineConfig::builder()
            .fuel_per_call(Some(50_000_000))
            .call_deadline(Some(Duration::from_secs(2)))
            .max_memory_bytes(4 << 20)
            .buffer_budget_bytes(64 << 10),
    )
}

fn instance(engine: &WasmtimeEngine, name: &str, bytes: &[u8]) -> WasmtimeInstance {
    engine
        .instantiate(&common::compile(engine, name, bytes))
        .unwrap()
}

fn element(sequence: u64) -> Element {
    Element::new(sequence, "text/plain", format!("payload {sequence}"))
}

/// Runs one faulty call, checks the instance is then poisoned and a healthy
/// instance on the same engine still works, and returns the first error.
fn fault(engine: &WasmtimeEngine, name: &str, bytes: &[u8]) -> Error {
    let mut healthy = instance(engine, "healthy", &torvyn_fixtures::uppercase_processor());
    let mut faulty = instance(engine, name, bytes);
    let error = faulty.process(&element(0)).unwrap_err();
    assert!(error.poisons_instance(), "{error}");
    assert!(faulty.poisoned().is_some());
    match faulty.process(&element(1)) {
        Err(Error::Poisoned { site, cause }) => {
            assert_eq!(site.component, name);
            assert_eq!(cause, error.to_string());
        }
        other => panic!("a poisoned instance must refuse calls, got {other:?}"),
    }
    assert_eq!(faulty.host().budget_in_use(), 0, "{name}: budget");
    assert_eq!(faulty.guest_resources(), 0, "{name}: resource table");
    let out = healthy.process(&element(7)).unwrap();
    assert_eq!(
        out,
        ProcessOutcome::Emit(Element::new(7, "text/plain", "PAYLOAD 7"))
    );
    drop((faulty, healthy));
    assert_eq!(engine.totals().live_instances(), 0);
    assert_eq!(engine.totals().guest_buffer_bytes(), 0);
    error
}

/// wasmtime's trap code of `error`, which must be a trap.
fn trap_code(error: &Error) -> Option<wasmtime::Trap> {
    match error {
        Error::Trap { code, .. } => *code,
        other => panic!("expected a trap, got {other:?}"),
    }
}

fn trap_message(error: &Error) -> &str {
    match error {
        Error::Trap { site, trap, .. } => {
            assert_eq!(site.function, "process");
            trap
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let error = fault(&strict_engine(), "looper", &faults::infinite_loop());
    assert!(
        matches!(&error, Error::FuelExhausted { site } if site.component == "looper"),
        "{error}"
    );
}

#[test]
fn an_infinite_loop_without_fuel_hits_the_deadline_in_time() {
    let engine = engine_with(
        EngineConfig::builder()
            .fuel_per_call(None)
            .call_deadline(Some(Duration::from_millis(100)))
            .epoch_tick(Duration::from_millis(5)),
    );
    let error = fault(&engine, "looper", &faults::infinite_loop());
    assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error}");
    // The call itself, timed: ended by the 100 ms deadline, not by the 5 s
    // default (2.5 s is half of that: generous for a loaded machine, and
    // fails if the 100 ms were ignored). Deadlines count whole epoch ticks
    // from a tick already under way, so the call may end up to one tick
    // (5 ms) early: 97 ms was measured once.
    let mut looper = instance(&engine, "looper", &faults::infinite_loop());
    let started = Instant::now();
    let error = looper.process(&element(0)).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error}");
    assert!(
        took >= Duration::from_millis(100 - 5) && took < Duration::from_millis(2_500),
        "the 100 ms deadline ended the call after {took:?}"
    );
}

#[test]
fn an_allocation_bomb_hits_the_memory_limit() {
    let error = fault(&strict_engine(), "bomb", &faults::allocation_bomb());
    match error {
        Error::MemoryLimit { detail, .. } => assert!(detail.contains("limit 4194304"), "{detail}"),
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
}

#[test]
fn unbounded_recursion_overflows_the_stack() {
    let error = fault(
        &strict_engine(),
        "recursion",
        &faults::unbounded_recursion(),
    );
    assert!(
        trap_message(&error).contains("call stack exhausted"),
        "{error}"
    );
    assert_eq!(trap_code(&error), Some(wasmtime::Trap::StackOverflow));
}

#[test]
fn unreachable_is_a_trap_after_good_calls() {
    let engine = strict_engine();
    let mut faulty = instance(&engine, "third", &faults::unreachable_on_third());
    assert_eq!(faulty.process(&element(0)).unwrap(), ProcessOutcome::Drop);
    assert_eq!(faulty.process(&element(1)).unwrap(), ProcessOutcome::Drop);
    let error = faulty.process(&element(2)).unwrap_err();
    assert!(trap_message(&error).contains("unreachable"), "{error}");
    assert_eq!(
        trap_code(&error),
        Some(wasmtime::Trap::UnreachableCodeReached)
    );
    assert!(matches!(
        faulty.process(&element(3)),
        Err(Error::Poisoned { .. })
    ));
}

#[test]
fn keeping_a_borrowed_handle_is_a_trap() {
    let error = fault(&strict_engine(), "keeper", &faults::keeps_borrowed_handle());
    assert_eq!(
        trap_message(&error),
        "borrow handles still remain at the end of the call"
    );
}

#[test]
fn dropping_a_handle_twice_is_a_trap() {
    let error = fault(
        &strict_engine(),
        "double-drop",
        &faults::drops_handle_twice(),
    );
    // The message is the refusal alone: the guest's frames are the
    // error's backtrace, not text in front of it.
    assert_eq!(trap_message(&error), "unknown handle index 1");
    assert!(error.backtrace().is_some(), "{error:?}");
}

/// A guest's trap carries wasmtime's backtrace: the frames where it
/// trapped (here a recursion's, named after its function), printed one
/// per line. Its text is not repeated in the message, and the class says
/// trap.
#[test]
fn a_trap_carries_the_guests_backtrace() {
    let error = fault(
        &strict_engine(),
        "recursion",
        &faults::unbounded_recursion(),
    );
    assert_eq!(error.kind(), torvyn_engine::ErrorKind::Trap);
    let frames = error.backtrace().expect("the trap's frames");
    assert!(!frames.frames().is_empty());
    let printed = frames.to_string();
    assert!(printed.contains("wasm backtrace"), "{printed}");
    assert!(printed.contains("recurse"), "{printed}");
    assert!(!error.to_string().contains("wasm backtrace"), "{error}");
}

#[test]
fn an_invalid_variant_discriminant_is_a_trap() {
    let error = fault(
        &strict_engine(),
        "bad-variant",
        &faults::invalid_discriminant(),
    );
    assert!(trap_message(&error).contains("discriminant"), "{error}");
}

#[test]
fn a_string_out_of_bounds_is_a_trap() {
    let error = fault(
        &strict_engine(),
        "bad-pointer",
        &faults::string_out_of_bounds(),
    );
    assert!(trap_message(&error).contains("out of bounds"), "{error}");
}

#[test]
fn invalid_utf8_is_a_trap() {
    let error = fault(&strict_engine(), "bad-utf8", &faults::invalid_utf8());
    assert!(
        trap_message(&error).to_lowercase().contains("utf"),
        "{error}"
    );
    // Refused by the runtime's lifting, not by a trap instruction: no code.
    assert_eq!(trap_code(&error), None);
}

#[test]
fn a_huge_allocation_is_refused_not_fatal() {
    let engine = strict_engine();
    let mut guest = instance(&engine, "greedy", &faults::huge_allocation());
    for sequence in 0..3 {
        match guest.process(&element(sequence)) {
            Err(Error::Guest {
                error: GuestError::Internal(message),
                ..
            }) => {
                assert!(message.contains("buffer budget exhausted"), "{message}");
                assert!(
                    message.contains("9223372036854775808 more requested"),
                    "{message}"
                );
            }
            other => panic!("expected the guest to report the refusal, got {other:?}"),
        }
    }
    assert!(
        guest.poisoned().is_none(),
        "a refused allocation is not a fault"
    );
    assert_eq!(guest.host().budget_in_use(), 0);
}

#[test]
fn a_guest_that_never_drops_its_buffers_hits_the_budget_and_frees_on_drop() {
    let engine = strict_engine();
    let mut leaker = instance(&engine, "leaker", &faults::leaks_mutable_buffers());
    let mut accepted = 0;
    let error = loop {
        match leaker.process(&element(accepted)) {
            Ok(ProcessOutcome::Drop) => accepted += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(error) => break error,
        }
        assert!(accepted < 1000, "the budget never stopped the guest");
    };
    // 64 KiB budget, 1 KiB + 64 B charged per buffer.
    assert_eq!(accepted, (64 << 10) / (1024 + 64));
    assert!(
        matches!(&error, Error::Guest { error: GuestError::Internal(m), .. } if m.contains("budget"))
    );
    assert_eq!(leaker.guest_resources(), accepted as usize);
    assert_eq!(engine.totals().guest_buffer_bytes(), accepted * (1024 + 64));
    drop(leaker);
    assert_eq!(engine.totals().guest_buffer_bytes(), 0);
    assert_eq!(engine.totals().live_instances(), 0);
}

#[test]
fn fuel_is_refilled_per_call_and_reported() {
    let engine = strict_engine();
    let mut upper = instance(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    upper.process(&element(1)).unwrap();
    let small = upper.fuel_consumed();
    assert!(small > 0);
    upper
        .process(&Element::new(2, "", vec![b'a'; 10_000]))
        .unwrap();
    assert!(
        upper.fuel_consumed() > small * 10,
        "fuel grows with the work done"
    );
    let big = upper.fuel_consumed();
    // The figure is the last call's, not a running sum.
    upper.process(&element(1)).unwrap();
    assert_eq!(upper.fuel_consumed(), small);
    assert_eq!(upper.total_fuel_consumed(), small + big + small);

    // An allowance of 3 calls: without a refill before every call, the 4th
    // would run out. 1,000 calls in a row each get it back.
    let component = common::compile(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let tight = component
        .with_limits({
            let mut limits = component.limits().clone();
            limits.fuel_per_call = Some(small * 3);
            limits
        })
        .unwrap();
    let mut tight = engine.instantiate(&tight).unwrap();
    for _ in 0..1000 {
        tight.process(&element(1)).unwrap();
        assert_eq!(tight.fuel_consumed(), small);
    }
    assert_eq!(tight.total_fuel_consumed(), 1000 * small);
}

#[test]
fn limits_can_be_overridden_per_component() {
    let engine = strict_engine();
    let component = common::compile(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let starved = component
        .with_limits({
            let mut limits = component.limits().clone();
            limits.fuel_per_call = Some(50);
            limits
        })
        .unwrap();
    let mut starved = engine.instantiate(&starved).unwrap();
    assert!(matches!(
        starved.process(&element(0)),
        Err(Error::FuelExhausted { .. })
    ));
    let mut normal = engine.instantiate(&component).unwrap();
    assert_eq!(
        normal.process(&element(0)).unwrap(),
        ProcessOutcome::Emit(Element::new(0, "text/plain", "PAYLOAD 0"))
    );
}

#[test]
fn a_poisoned_instance_is_replaced_from_the_pre_instantiated_component() {
    let engine = strict_engine();
    let component = common::compile(&engine, "third", &faults::unreachable_on_third());
    for round in 0..20 {
        let mut instance = engine.instantiate(&component).unwrap();
        for sequence in 0..2 {
            assert_eq!(
                instance.process(&element(sequence)).unwrap(),
                ProcessOutcome::Drop
            );
        }
        match instance.process(&element(2)) {
            Err(Error::Trap { trap, .. }) => {
                assert!(trap.contains("unreachable"), "round {round}: {trap}")
            }
            other => panic!("round {round}: expected the third element's trap, got {other:?}"),
        }
    }
    assert_eq!(engine.totals().live_instances(), 0);
}

#[test]
fn a_component_without_deadline_runs_on_an_engine_whose_ticker_runs() {
    // The engine ticks for other components' deadlines; a component whose
    // limits have none must still never be interrupted.
    let engine = engine_with(
        EngineConfig::builder()
            .call_deadline(Some(Duration::from_millis(10)))
            .epoch_tick(Duration::from_millis(1)),
    );
    // Each call flips 48 MiB of guest memory (about 67 ms on this VM), far
    // longer than the engine's 10 ms deadline even on a faster machine, so
    // a component deadline of `None` is what lets it finish (the engine's
    // own instance of it is stopped).
    let component = common::compile(
        &engine,
        "compute",
        &torvyn_fixtures::compute_processor(48 << 20),
    );
    let unlimited = component
        .with_limits({
            let mut limits = component.limits().clone();
            limits.call_deadline = None;
            limits
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(30)); // let the epoch advance
    let mut instance = engine.instantiate(&unlimited).unwrap();
    for sequence in 0..3 {
        instance.process(&element(sequence)).unwrap();
    }
    let mut limited = engine.instantiate(&component).unwrap();
    assert!(matches!(
        limited.process(&element(0)),
        Err(Error::DeadlineExceeded { .. })
    ));
}

/// Fuel instrumentation is compiled in only where fuel is configured
/// (issue 22): a default engine does not meter, one with `fuel_per_call` or
/// `component_fuel(true)` does; an unmetered instance reports no fuel.
#[test]
fn fuel_metering_follows_the_configuration() {
    let metered = |builder: torvyn_engine::EngineConfigBuilder| {
        engine_with(builder).wasmtime().get_consume_fuel()
    };
    assert!(!metered(EngineConfig::builder()));
    assert!(metered(EngineConfig::builder().fuel_per_call(Some(1_000))));
    assert!(metered(EngineConfig::builder().component_fuel(true)));

    let engine = engine_with(EngineConfig::builder());
    let component = common::compile(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let mut upper = engine.instantiate(&component).unwrap();
    upper.process(&element(0)).unwrap();
    assert_eq!((upper.fuel_consumed(), upper.total_fuel_consumed()), (0, 0));
    // A limit without fuel is still taken (epochs are always on).
    let timed = component
        .with_limits({
            let mut limits = component.limits().clone();
            limits.call_deadline = Some(Duration::from_millis(50));
            limits
        })
        .unwrap();
    assert_eq!(
        timed.limits().call_deadline,
        Some(Duration::from_millis(50))
    );
}

/// Unbounded recursion on every kind of instance: guarded or dense
/// (`InstanceDensity::Dense`: no guard pages, explicit bounds and stack
/// checks), on-demand or pooled, called sync or on an async fiber. Each
/// ends in a stack-overflow trap of that call, never a crash of the host
/// (this test's process would die), and a healthy instance of the same
/// engine keeps working after it.
#[test]
fn unbounded_recursion_is_a_stack_overflow_trap_under_every_density_and_allocator() {
    use torvyn_engine::{Allocation, AsyncComponentInvoker, InstanceDensity};
    let runtime = common::runtime(2);
    for density in [InstanceDensity::Guarded, InstanceDensity::Dense] {
        for allocation in [
            Allocation::OnDemand,
            Allocation::Pooling { max_instances: 8 },
        ] {
            let engine = engine_with(
                EngineConfig::builder()
                    .density(density)
                    .allocation(allocation),
            );
            let recursion = common::compile(&engine, "recursion", &faults::unbounded_recursion());
            let healthy =
                common::compile(&engine, "healthy", &torvyn_fixtures::uppercase_processor());
            let case = format!("{density:?}, {allocation:?}");
            let check = |error: Error, how: &str| {
                assert_eq!(
                    trap_code(&error),
                    Some(wasmtime::Trap::StackOverflow),
                    "{case}, {how}: {error}"
                );
                assert!(
                    trap_message(&error).contains("call stack exhausted"),
                    "{case}, {how}: {error}"
                );
            };
            let mut sync = engine.instantiate(&recursion).unwrap();
            check(sync.process(&element(0)).unwrap_err(), "sync");
            let mut on_fiber = engine.instantiate(&recursion).unwrap();
            let error = runtime
                .block_on(on_fiber.process_async(&element(0)))
                .unwrap_err();
            check(error, "async");
            let mut fine = engine.instantiate(&healthy).unwrap();
            assert_eq!(
                runtime.block_on(fine.process_async(&element(3))).unwrap(),
                ProcessOutcome::Emit(Element::new(3, "text/plain", "PAYLOAD 3")),
                "{case}"
            );
        }
    }
}
