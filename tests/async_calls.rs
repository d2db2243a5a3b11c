//! Async invocation on tokio: many flows sharing few threads, time-sliced
//! guests, cancellation, WASI waits, the dynamic path and real-toolchain
//! guests, all through `AsyncComponentInvoker`.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::runtime;
use torvyn_engine::{
    AsyncComponentInvoker, Element, EngineConfig, Error, Pipeline, ProcessOutcome, WasmEngine,
    WasmtimeEngine,
};
use torvyn_fixtures::{faults, hostile};

fn engine_with(config: torvyn_engine::EngineConfigBuilder) -> Arc<WasmtimeEngine> {
    Arc::new(WasmtimeEngine::new(config.build().unwrap()).unwrap())
}

#[test]
fn a_hundred_concurrent_flows_each_deliver_every_element_in_order() {
    let engine = engine_with(EngineConfig::builder());
    let source = common::compile(&engine, "source", &torvyn_fixtures::counting_source());
    let upper = common::compile(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let sink = common::compile(&engine, "sink", &torvyn_fixtures::recording_sink());
    runtime(2).block_on(async {
        let mut flows = tokio::task::JoinSet::new();
        for flow in 0..100u64 {
            let (engine, source, upper, sink) =
                (engine.clone(), source.clone(), upper.clone(), sink.clone());
            flows.spawn(async move {
                let mut pipeline = Pipeline::new(
                    engine.instantiate_async(&source).await.unwrap(),
                    vec![engine.instantiate_async(&upper).await.unwrap()],
                    engine.instantiate_async(&sink).await.unwrap(),
                )
                .unwrap();
                let count = 200 + flow;
                pipeline.init_async(&count.to_string()).await.unwrap();
                let mut payloads = Vec::new();
                let report = pipeline
                    .run_async(|element| payloads.push(element.payload.clone()))
                    .await
                    .unwrap();
                pipeline.teardown_async().await.unwrap();
                (count, report.delivered, payloads)
            });
        }
        let mut finished = 0;
        while let Some(joined) = flows.join_next().await {
            let (count, delivered, payloads) = joined.unwrap();
            assert_eq!(delivered, count);
            let expected: Vec<String> = (0..count).map(|n| format!("ELEMENT {n}")).collect();
            let got: Vec<String> = payloads
                .iter()
                .map(|p| String::from_utf8(p.to_vec()).unwrap())
                .collect();
            assert_eq!(got, expected, "flow of {count}");
            finished += 1;
        }
        assert_eq!(finished, 100);
    });
    assert_eq!(engine.totals().live_instances(), 0);
    assert_eq!(engine.totals().guest_buffer_bytes(), 0);
}

#[test]
fn a_spinning_guest_does_not_stop_another_flow_on_one_worker() {
    let engine = engine_with(
        EngineConfig::builder()
            .fuel_per_call(None)
            .call_deadline(Some(Duration::from_secs(2))),
    );
    let looper = common::compile(&engine, "looper", &faults::infinite_loop());
    let upper = common::compile(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let spinning = Arc::new(AtomicBool::new(true));
    let during_spin = Arc::new(AtomicU64::new(0));
    let (error, took) = runtime(1).block_on(async {
        let mut looper = engine.instantiate_async(&looper).await.unwrap();
        let mut upper = engine.instantiate_async(&upper).await.unwrap();
        let flow = {
            let (spinning, during_spin) = (spinning.clone(), during_spin.clone());
            tokio::spawn(async move {
                let element = Element::new(0, "text/plain", "abc");
                // Wait until the spinner holds the worker, then work beside it.
                tokio::time::sleep(Duration::from_millis(50)).await;
                while spinning.load(Ordering::Relaxed) {
                    let out = upper.process_async(&element).await.unwrap();
                    assert_eq!(
                        out,
                        ProcessOutcome::Emit(Element::new(0, "text/plain", "ABC"))
                    );
                    during_spin.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let started = Instant::now();
        let error = looper
            .process_async(&Element::new(0, "", "x"))
            .await
            .unwrap_err();
        let took = started.elapsed();
        spinning.store(false, Ordering::Relaxed);
        flow.await.unwrap();
        (error, took)
    });
    assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let calls = during_spin.load(Ordering::Relaxed);
    assert!(
        calls > 100,
        "the other flow made {calls} calls while the guest spun"
    );
}

#[test]
fn a_sleeping_wasi_guest_ends_at_its_deadline_without_blocking_the_worker() {
    let engine =
        engine_with(EngineConfig::builder().call_deadline(Some(Duration::from_millis(100))));
    let sleeper = common::compile(&engine, "sleeper", &hostile::wasi_sleeper(10_000));
    let napper = common::compile(&engine, "napper", &hostile::wasi_sleeper(20));
    let ticks = Arc::new(AtomicU64::new(0));
    let (error, took) = runtime(1).block_on(async {
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let mut napper = engine.instantiate_async(&napper).await.unwrap();
        assert_eq!(
            napper
                .process_async(&Element::new(0, "", "x"))
                .await
                .unwrap(),
            ProcessOutcome::Drop
        );
        let mut guest = engine.instantiate_async(&sleeper).await.unwrap();
        let started = Instant::now();
        let error = guest
            .process_async(&Element::new(0, "", "x"))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(guest.guest_resources(), 0);
        ticker.abort();
        (error, took)
    });
    assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // The one worker kept running the ticker task while the guest slept.
    assert!(
        ticks.load(Ordering::Relaxed) >= 10,
        "{}",
        ticks.load(Ordering::Relaxed)
    );
}

#[test]
fn the_dynamic_path_works_async() {
    let engine = engine_with(EngineConfig::builder());
    runtime(1).block_on(async {
        for package in ["torvyn:streaming@0.2.0", "acme:etl@2.0.0"] {
            let bytes = torvyn_fixtures::foreign::uppercase_processor_in(package);
            let component = common::compile(&engine, package, &bytes);
            let mut guest = engine.instantiate_async(&component).await.unwrap();
            for sequence in 0..50 {
                let out = guest
                    .process_async(&Element::new(
                        sequence,
                        "text/plain",
                        format!("item {sequence}"),
                    ))
                    .await
                    .unwrap();
                assert_eq!(
                    out,
                    ProcessOutcome::Emit(Element::new(
                        sequence,
                        "text/plain",
                        format!("ITEM {sequence}")
                    )),
                    "{package}"
                );
            }
            common::assert_nothing_held(&mut guest);
        }
    });
}

fn guest_bytes(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("guests/out/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the guests first with guests/build.sh",
            path.display()
        )
    })
}

#[test]
fn real_toolchain_guests_run_as_concurrent_async_flows() {
    let engine = engine_with(EngineConfig::builder());
    let compile = |name: &str| common::compile(&engine, name, &guest_bytes(name));
    let (source, rust, python, sink) = (
        compile("c-source"),
        compile("rust-processor"),
        compile("python-processor"),
        compile("c-sink"),
    );
    runtime(2).block_on(async {
        let mut flows = tokio::task::JoinSet::new();
        for flow in 0..4u64 {
            let engine = engine.clone();
            let stages = (source.clone(), rust.clone(), python.clone(), sink.clone());
            flows.spawn(async move {
                let mut pipeline = Pipeline::new(
                    engine.instantiate_async(&stages.0).await.unwrap(),
                    vec![
                        engine.instantiate_async(&stages.1).await.unwrap(),
                        engine.instantiate_async(&stages.2).await.unwrap(),
                    ],
                    engine.instantiate_async(&stages.3).await.unwrap(),
                )
                .unwrap();
                let count = 50 + flow;
                pipeline.init_async(&count.to_string()).await.unwrap();
                let mut seen = 0u64;
                let report = pipeline
                    .run_async(|element| {
                        assert_eq!(element.payload, format!("C-ELEMENT {seen} +py").as_bytes());
                        seen += 1;
                    })
                    .await
                    .unwrap();
                pipeline.teardown_async().await.unwrap();
                (count, report.delivered, seen)
            });
        }
        while let Some(joined) = flows.join_next().await {
            let (count, delivered, seen) = joined.unwrap();
            assert_eq!((delivered, seen), (count, count));
        }
    });
    assert_eq!(engine.totals().live_instances(), 0);
}

/// Fuel ends an async call as it ends a sync one: `FuelExhausted` at that
/// component and function, and the instance is poisoned.
#[test]
fn fuel_ends_an_async_call_with_fuel_exhausted() {
    let engine = engine_with(EngineConfig::builder().fuel_per_call(Some(1_000_000)));
    let looper = common::compile(&engine, "looper", &faults::infinite_loop());
    runtime(1).block_on(async {
        let mut looper = engine.instantiate_async(&looper).await.unwrap();
        let element = Element::new(0, "", "x");
        let error = looper.process_async(&element).await.unwrap_err();
        assert!(
            matches!(&error, Error::FuelExhausted { site }
                if site.component == "looper" && site.function == "process"),
            "{error:?}"
        );
        assert!(matches!(
            looper.process_async(&element).await,
            Err(Error::Poisoned { .. })
        ));
    });
}

/// An aborted task cancels the call it was awaiting: the guest (asleep for
/// 10 s) is unwound at once, the instance is poisoned as cancelled and
/// every buffer its guest held is released.
#[test]
fn aborting_a_task_cancels_its_call() {
    let engine = engine_with(EngineConfig::builder());
    let sleeper = common::compile(&engine, "sleeper", &hostile::wasi_sleeper(10_000));
    runtime(2).block_on(async {
        let guest = Arc::new(tokio::sync::Mutex::new(
            engine.instantiate_async(&sleeper).await.unwrap(),
        ));
        let task = {
            let guest = guest.clone();
            tokio::spawn(async move {
                let mut guest = guest.lock().await;
                guest.process_async(&Element::new(0, "", "x")).await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let asked = Instant::now();
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
        let mut guest = guest.lock().await;
        let why = guest.poisoned().expect("poisoned").to_string();
        assert!(
            why.ends_with("the call was cancelled before it returned (its future was dropped)"),
            "{why}"
        );
        assert_eq!(guest.guest_resources(), 0);
        assert!(matches!(
            guest.process_async(&Element::new(1, "", "y")).await,
            Err(Error::Poisoned { .. })
        ));
    });
    assert_eq!(engine.totals().guest_buffer_bytes(), 0);
}

/// An aborted task's call is cancelled with what its guest holds: the
/// guest kept 1 KiB from its first call (published in the engine's
/// totals), its second call allocates again and spins; aborting that task
/// poisons the instance and frees both at once — the fault lands on a call
/// holding buffers, which the test first checks.
#[test]
fn aborting_a_task_releases_what_its_guest_held() {
    let engine = engine_with(EngineConfig::builder());
    let holder = common::compile(
        &engine,
        "holder",
        &hostile::holds_then_spins_on_second_call(),
    );
    runtime(2).block_on(async {
        let mut guest = engine.instantiate_async(&holder).await.unwrap();
        guest
            .process_async(&Element::new(0, "", "x"))
            .await
            .unwrap();
        let held = engine.totals().guest_buffer_bytes();
        assert!(held >= 1024, "the first call left {held} bytes held");
        assert!(guest.guest_resources() > 0);
        let guest = Arc::new(tokio::sync::Mutex::new(guest));
        let task = {
            let guest = guest.clone();
            tokio::spawn(async move {
                let mut guest = guest.lock().await;
                guest.process_async(&Element::new(1, "", "y")).await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !task.is_finished(),
            "the second call should spin until aborted"
        );
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        let mut guest = guest.lock().await;
        assert!(guest.poisoned().is_some());
        assert_eq!(guest.guest_resources(), 0);
    });
    assert_eq!(engine.totals().guest_buffer_bytes(), 0);
}

/// Dropping an `instantiate_async` future whose component never finishes
/// starting (its start function spins) drops the half-made instance: the
/// engine counts no live instance after it.
#[test]
fn dropping_an_instantiate_async_future_drops_the_half_made_instance() {
    let engine = engine_with(EngineConfig::builder().call_deadline(Some(Duration::from_secs(30))));
    let never = common::compile(&engine, "never", &hostile::spins_in(hostile::SpinIn::Start));
    runtime(1).block_on(async {
        let mut making = Box::pin(engine.instantiate_async(&never));
        let counted = tokio::select! {
            _ = &mut making => panic!("the start function never returns"),
            _ = tokio::time::sleep(Duration::from_millis(200)) => engine.totals().live_instances(),
        };
        assert_eq!(
            counted, 1,
            "the half-made instance is counted while it starts"
        );
        drop(making);
        assert_eq!(
            engine.totals().live_instances(),
            0,
            "and gone with its future"
        );
    });
}

/// A `Flow::run_async` future dropped mid-run (its processor asleep in a
/// call) ends at once: the cancelled call poisons its instance and the
/// flow's other instances are untouched.
#[test]
fn dropping_a_flow_run_async_future_cancels_it() {
    use torvyn_engine::{Flow, FlowSpec, Interface};
    let engine = engine_with(EngineConfig::builder());
    let compile = |name: &str, bytes: Vec<u8>| common::compile(&engine, name, &bytes);
    let spec = FlowSpec::linear(
        common::flow_node("source", "source", Interface::Source, "5"),
        vec![common::flow_node(
            "sleep",
            "sleeper",
            Interface::Processor,
            "",
        )],
        common::flow_node("sink", "sink", Interface::Sink, "100"),
    );
    let instances = vec![
        engine
            .instantiate(&compile("source", torvyn_fixtures::counting_source()))
            .unwrap(),
        engine
            .instantiate(&compile("sleeper", hostile::wasi_sleeper(10_000)))
            .unwrap(),
        engine
            .instantiate(&compile("sink", torvyn_fixtures::recording_sink()))
            .unwrap(),
    ];
    let mut flow = Flow::new(spec, instances).unwrap();
    runtime(2).block_on(async {
        let started = Instant::now();
        let ran = tokio::time::timeout(Duration::from_millis(200), flow.run_async(|_, _| {})).await;
        assert!(ran.is_err(), "the sleeper holds the flow");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    });
    let why = flow
        .instance("sleep")
        .unwrap()
        .poisoned()
        .map(str::to_string);
    assert!(
        why.as_deref()
            .is_some_and(|why| why.ends_with("(its future was dropped)")),
        "{why:?}"
    );
    assert_eq!(flow.instance("source").unwrap().poisoned(), None);
    assert_eq!(flow.instance("sink").unwrap().poisoned(), None);
}

/// A WASI guest waiting in `pollable.block` runs on an executor that is not
/// tokio (a parked thread): the engine's own runtime drives the wait and
/// wakes the call when the 20 ms are up. Then the deadline counts the wait:
/// a 10 s sleep under a 100 ms deadline ends at 100 ms (less one epoch tick
/// at most), not sooner and not at 10 s.
#[test]
fn wasi_waits_work_from_any_executor_and_count_toward_the_deadline() {
    let engine =
        engine_with(EngineConfig::builder().call_deadline(Some(Duration::from_millis(100))));
    let napper = common::compile(&engine, "napper", &hostile::wasi_sleeper(20));
    let sleeper = common::compile(&engine, "sleeper", &hostile::wasi_sleeper(10_000));
    let element = Element::new(0, "", "x");
    let mut napper = common::block_on_parked(engine.instantiate_async(&napper)).unwrap();
    let started = Instant::now();
    let out = common::block_on_parked(napper.process_async(&element)).unwrap();
    let took = started.elapsed();
    assert_eq!(out, ProcessOutcome::Drop);
    assert!(
        took >= Duration::from_millis(20) && took < Duration::from_secs(1),
        "{took:?}"
    );

    let mut sleeper = common::block_on_parked(engine.instantiate_async(&sleeper)).unwrap();
    let started = Instant::now();
    let error = common::block_on_parked(sleeper.process_async(&element)).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error:?}");
    let tick = engine.config().epoch_tick();
    assert!(
        took >= Duration::from_millis(100) - tick && took < Duration::from_secs(1),
        "{took:?}"
    );
}

/// A task whose every call is short and ready at once still yields to the
/// other tasks of its worker once it has had the thread for a time slice:
/// on a one-worker runtime, a ticker beside a task calling `process_async`
/// in a loop for 300 ms keeps ticking. Judged by the largest gap between
/// two ticks while the loop runs (not by a count that start-up ticks
/// could fill).
#[test]
fn a_task_of_short_calls_yields_after_its_time_slice() {
    let engine = engine_with(EngineConfig::builder());
    let upper = common::compile(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let ticks = Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let (calls, started, ended) = runtime(1).block_on(async {
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.lock().unwrap().push(Instant::now());
                }
            })
        };
        // Let the ticker start.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut upper = engine.instantiate_async(&upper).await.unwrap();
        // A task of its own, on the one worker beside the ticker (the
        // block_on future itself runs on the test's thread).
        let caller = tokio::spawn(async move {
            let element = Element::new(0, "text/plain", "abc");
            let started = Instant::now();
            let mut calls = 0u64;
            // No await in this loop but the calls': without the yield, the
            // ticker would not run until it ends.
            while started.elapsed() < Duration::from_millis(300) {
                upper.process_async(&element).await.unwrap();
                calls += 1;
            }
            (calls, started, Instant::now())
        });
        let ran = caller.await.unwrap();
        ticker.abort();
        ran
    });
    assert!(calls > 100, "{calls} calls");
    // The ticks inside the loop, with its start and end as the outer edges:
    // without the yield the loop holds the thread from start to end (one
    // gap of 300 ms); with it, the ticker runs every slice (1 ms; gaps of
    // 1-2 ms measured). 50 ms leaves room for a loaded machine.
    let mut times: Vec<Instant> = ticks
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|&tick| tick > started && tick < ended)
        .collect();
    times.insert(0, started);
    times.push(ended);
    let largest = times
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap();
    assert!(
        largest < Duration::from_millis(50),
        "the ticker waited {largest:?} at once while the loop of {calls} calls ran ({} ticks in it)",
        times.len() - 2
    );
}

/// `block_on_parked` fails a test whose future is never woken, after its
/// limit, instead of hanging it (issue 33: a regression must fail, not
/// hang CI).
#[test]
#[should_panic(expected = "nothing woke it")]
fn block_on_parked_fails_a_future_nobody_wakes() {
    common::block_on_parked_within(std::future::pending::<()>(), Duration::from_millis(100));
}
