//! 1,000 consecutive traps and re-instantiations, and 1,000 cancelled
//! async calls, leak nothing: engine totals return to zero and the
//! process's resident memory stays flat. (In a test binary of their own,
//! one at a time, so no other test moves the RSS.)

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use torvyn_engine::{
    AsyncComponentInvoker, ComponentInvoker, Element, EngineConfig, Error, ProcessOutcome,
    WasmEngine, WasmtimeEngine,
};
use torvyn_fixtures::hostile;

/// The tests measure the whole process's RSS: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Resident set size of this process, in bytes (Linux).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn a_thousand_traps_and_reinstantiations_leak_nothing() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let engine = WasmtimeEngine::new(
        EngineConfig::builder()
            .fuel_per_call(Some(10_000_000))
            .call_deadline(Some(Duration::from_secs(5)))
            .build()
            .unwrap(),
    )
    .unwrap();
    let faulty = common::compile(
        &engine,
        "third",
        &torvyn_fixtures::faults::unreachable_on_third(),
    );
    let leaker = common::compile(
        &engine,
        "leaker",
        &torvyn_fixtures::faults::leaks_mutable_buffers(),
    );
    let element = |sequence| Element::new(sequence, "text/plain", vec![7u8; 4096]);

    let round = || {
        let mut instance = engine.instantiate(&faulty).unwrap();
        instance.process(&element(0)).unwrap();
        instance.process(&element(1)).unwrap();
        assert!(matches!(
            instance.process(&element(2)),
            Err(Error::Trap { .. })
        ));
        // A guest that holds buffers when it dies frees them with its instance.
        let mut holder = engine.instantiate(&leaker).unwrap();
        for _ in 0..8 {
            holder.process(&element(0)).unwrap();
        }
    };
    for _ in 0..100 {
        round();
    }
    let before = rss_bytes();
    for _ in 0..1000 {
        round();
    }
    let grown = rss_bytes().saturating_sub(before);
    assert_eq!(engine.totals().live_instances(), 0);
    assert_eq!(engine.totals().guest_buffer_bytes(), 0);
    // Measured here: 0 bytes; leaking one trapped instance per round grows it by ~8 MiB.
    assert!(
        grown < 2 << 20,
        "RSS grew by {grown} bytes over 1,000 rounds"
    );
}

#[test]
fn a_thousand_cancelled_calls_poison_release_and_leak_nothing() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let engine = Arc::new(
        WasmtimeEngine::new(
            EngineConfig::builder()
                .fuel_per_call(None)
                .call_deadline(Some(Duration::from_secs(10)))
                .build()
                .unwrap(),
        )
        .unwrap(),
    );
    let spinner = common::compile(&engine, "spinner", &hostile::holds_then_spins());
    let upper = common::compile(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let runtime = common::runtime(2);
    runtime.block_on(async {
        let element = Element::new(0, "text/plain", "abc");
        let cancel = async |rounds: u32| {
            for _ in 0..rounds {
                let mut guest = engine.instantiate_async(&spinner).await.unwrap();
                let call =
                    tokio::time::timeout(Duration::from_millis(2), guest.process_async(&element));
                assert!(call.await.is_err(), "the call must still be running");
                match guest.process_async(&element).await {
                    Err(Error::Poisoned { cause, .. }) => {
                        assert!(cause.contains("cancelled"), "{cause}")
                    }
                    other => panic!("a cancelled call must poison its instance, got {other:?}"),
                }
                // Released at once, before the instance is dropped.
                assert_eq!(guest.host().budget_in_use(), 0);
                assert_eq!(guest.guest_resources(), 0);
                assert_eq!(engine.totals().guest_buffer_bytes(), 0);
            }
        };
        cancel(100).await;
        let before = rss_bytes();
        cancel(1000).await;
        let grown = rss_bytes().saturating_sub(before);
        assert!(
            grown < 4 << 20,
            "RSS grew {grown} bytes over 1,000 cancellations"
        );
        // A fresh instance of the same kind works.
        let mut fresh = engine.instantiate_async(&upper).await.unwrap();
        assert_eq!(
            fresh.process_async(&element).await.unwrap(),
            ProcessOutcome::Emit(Element::new(0, "text/plain", "ABC"))
        );
    });
    assert_eq!(engine.totals().live_instances(), 0);
    assert_eq!(engine.totals().guest_buffer_bytes(), 0);
}
