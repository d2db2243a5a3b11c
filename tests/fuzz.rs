//! Bounded property tests over hostile inputs: whatever bytes `compile`
//! gets and whatever WAVE text `invoke` gets, the answer is a value or an
//! error, never a panic.

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

    #[test]
    fn arbitrary_wave_calls_never_panic(
        name in prop::sample::select(vec!["add", "shout", "calc#add", "nope", "probe#noop", ""]),
        args in "[ -~]{0,40}",
    ) {
        let engine = engine();
        let component = engine.compile("calc", &torvyn_fixtures::calculator()).unwrap();
        let mut calc = engine.instantiate(&component).unwrap();
        let _ = calc.invoke(&format!("{name}({args})"));
        let _ = calc.invoke(&args);
        // Whatever was refused, the instance still answers.
        prop_assert_eq!(calc.invoke("add(2, 3)").unwrap(), "5");
    }

    #[test]
    fn structured_wave_arguments_round_trip(a in any::<u32>(), b in any::<u32>(), text in "[a-z ]{0,20}") {
        let engine = engine();
        let component = engine.compile("calc", &torvyn_fixtures::calculator()).unwrap();
        let mut calc = engine.instantiate(&component).unwrap();
        prop_assert_eq!(calc.invoke(&format!("add({a}, {b})")).unwrap(), a.wrapping_add(b).to_string());
        prop_assert_eq!(
            calc.invoke(&format!("shout({text:?})")).unwrap(),
            format!("{:?}", text.to_ascii_uppercase())
        );
    }
}
