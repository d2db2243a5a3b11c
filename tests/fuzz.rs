//! Bounded property tests over hostile inputs: whatever bytes `compile`
//! gets, it answers with a value or an error, never a panic.

use proptest::prelude::*;
use torvyn_engine::{ComponentInvoker, Element, EngineConfig, WasmEngine, WasmtimeEngine};

fn engine() -> WasmtimeEngine {
    WasmtimeEngine::new(
        EngineConfig::builder()
            .fuel_per_call(Some(1_000_000))
            .build()
            .unwrap(),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let engine = engine();
        let _ = engine.compile("random", &bytes);
        let mut with_header = b"\0asm\x0d\0\x01\0".to_vec();
        with_header.extend_from_slice(&bytes);
        let _ = engine.compile("random-with-header", &with_header);
    }

    #[test]
    fn mutated_components_compile_or_fail_cleanly_and_run_contained(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let engine = engine();
        let mut bytes = torvyn_fixtures::uppercase_processor();
        for (index, value) in &flips {
            let at = index.index(bytes.len());
            bytes[at] ^= value | 1;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(component) = engine.compile("mutant", &bytes) {
            if let Ok(mut instance) = engine.instantiate(&component) {
                // Whatever the mutant does, the call returns.
                let _ = instance.process(&Element::new(0, "", "abc"));
            }
        }
    }
}
