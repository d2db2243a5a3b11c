//! Bounded property tests over hostile inputs: whatever bytes `compile`
//! gets and whatever WAVE text `invoke` gets, the answer is a value or an
//! error, never a panic.

use proptest::prelude::*;
use torvyn_engine::{ComponentInvoker, Element, EngineConfig, Error, WasmEngine, WasmtimeEngine};

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
        // Refused as what it is: a compile error naming the component.
        if let Err(error) = engine.compile("random", &bytes) {
            prop_assert!(
                matches!(&error, Error::Compile { component, .. } if component == "random"),
                "{:?}", error
            );
        }
        let mut with_header = b"\0asm\x0d\0\x01\0".to_vec();
        with_header.extend_from_slice(&bytes);
        if let Err(error) = engine.compile("random-with-header", &with_header) {
            prop_assert!(error.to_string().contains("`random-with-header`"), "{}", error);
        }
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
        match engine.compile("mutant", &bytes) {
            Err(error) => prop_assert!(error.to_string().contains("`mutant`"), "{}", error),
            Ok(component) => {
                if let Ok(mut instance) = engine.instantiate(&component) {
                    // Whatever the mutant does, the call returns; a failure
                    // that retires the instance leaves it refusing calls.
                    if let Err(error) = instance.process(&Element::new(0, "", "abc")) {
                        if error.poisons_instance() {
                            let again = instance.process(&Element::new(1, "", "abc"));
                            prop_assert!(matches!(again, Err(Error::Poisoned { .. })), "{:?}", again);
                        }
                    }
                }
            }
        }
        // Contained: nothing of any mutant outlives it.
        prop_assert_eq!(engine.totals().live_instances(), 0);
        prop_assert_eq!(engine.totals().guest_buffer_bytes(), 0);
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

/// What happened to one mutant.
#[derive(Debug, Default)]
struct Outcomes {
    refused_at_compile: u32,
    refused_at_instantiate: u32,
    ran_ok: u32,
    ran_into_an_error: u32,
}

/// The same mutation as the property above, over a fixed series of seeds,
/// counting what happened: a fuzzer whose mutants never compiled and ran
/// (or were never refused) would test nothing, so both must occur.
#[test]
fn mutants_reach_every_outcome() {
    let engine = engine();
    let original = torvyn_fixtures::uppercase_processor();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: a fixed, reproducible series.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut outcomes = Outcomes::default();
    for _ in 0..400 {
        let mut bytes = original.clone();
        // One to three flipped bytes, mostly in the code and data at the end.
        for _ in 0..1 + next() % 3 {
            let at = (bytes.len() / 2) + (next() as usize % (bytes.len() / 2));
            bytes[at] ^= (next() as u8) | 1;
        }
        match engine.compile("mutant", &bytes) {
            Err(_) => outcomes.refused_at_compile += 1,
            Ok(component) => match engine.instantiate(&component) {
                Err(_) => outcomes.refused_at_instantiate += 1,
                Ok(mut instance) => match instance.process(&Element::new(0, "", "abc")) {
                    Ok(_) => outcomes.ran_ok += 1,
                    Err(_) => outcomes.ran_into_an_error += 1,
                },
            },
        }
    }
    assert!(outcomes.refused_at_compile > 0, "{outcomes:?}");
    assert!(
        outcomes.ran_ok + outcomes.ran_into_an_error > 0,
        "{outcomes:?}"
    );
    assert_eq!(engine.totals().live_instances(), 0);
}
