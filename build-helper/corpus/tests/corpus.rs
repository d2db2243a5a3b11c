//! The corpus generated every world, and the generated items are what a
//! host uses: types with their fields, host traits, typed exports.

use torvyn_build_corpus::bindings;

#[test]
fn every_world_is_generated() {
    let worlds: Vec<&str> = torvyn_build_corpus::WORLDS.split(',').collect();
    assert_eq!(
        worlds,
        [
            "corpus:shapes/imports-everything@0.1.0",
            "corpus:shapes/exports-everything@0.1.0",
            "corpus:shapes/only-functions@0.1.0",
            "corpus:shapes/empty@0.1.0",
            "corpus:shapes/async-everything@0.1.0",
        ],
        "the gated world is left out"
    );
}

#[test]
fn the_generated_types_are_usable() {
    use bindings::imports_everything::corpus::shapes::types::{
        Color, Everything, Permissions, Point, Shape,
    };
    let point = Point { x: 1, y: -2 };
    let everything = Everything {
        a_bool: true,
        a_u8: 1,
        a_u16: 2,
        a_u32: 3,
        a_u64: 4,
        a_s8: -1,
        a_s16: -2,
        a_s32: -3,
        a_s64: -4,
        a_f32: 0.5,
        a_f64: 0.25,
        a_char: 'λ',
        a_string: "text".into(),
        a_label: "label".into(),
        bytes: vec![1, 2, 3],
        points: vec![point],
        maybe: Some("x".into()),
        outcome: Err("no".into()),
        pair: (7, "seven".into()),
        nested: vec![vec![None, Some(point)]],
    };
    assert!(matches!(
        everything.nested[0][1],
        Some(Point { x: 1, y: -2 })
    ));
    let shapes = [
        Shape::Circle(1.0),
        Shape::Square(point),
        Shape::Labelled(("p".into(), point)),
        Shape::Nothing,
    ];
    assert_eq!(shapes.len(), 4);
    assert_eq!(Color::Green as u8, 1);
    let all = Permissions::READ | Permissions::WRITE | Permissions::EXECUTE;
    assert!(all.contains(Permissions::WRITE));
}

/// Host traits exist for each imported interface (both versions of one
/// package, keywords as names).
#[allow(dead_code)]
fn the_generated_host_traits_and_exports_exist() {
    use bindings::imports_everything::corpus::shapes::{functions, interface};
    use bindings::imports_everything::corpus::{versioned1_0_0, versioned2_0_0};
    fn host_of_functions<T: functions::Host>() {}
    fn host_of_keywords<T: interface::Host>() {}
    fn hosts_of_both_versions<T: versioned1_0_0::api::Host + versioned2_0_0::api::Host>() {}
}

/// `stream`, `future` and `error-context` as wasmtime's types, imported
/// (a host trait) and exported (typed calls); never run.
#[allow(dead_code)]
fn the_async_types_are_wasmtimes(
    store: &mut wasmtime::Store<()>,
    world: &bindings::async_everything::AsyncEverything,
    items: wasmtime::component::StreamReader<u8>,
    finished: wasmtime::component::FutureReader<
        bindings::async_everything::exports::corpus::shapes::async_types::Progress,
    >,
) -> wasmtime::Result<()> {
    use bindings::async_everything::corpus::shapes::async_types;
    fn host_of_async_types<T: async_types::Host>() {}
    let exported = world.corpus_shapes_async_types();
    let _: Result<u32, wasmtime::component::ErrorContext> =
        exported.call_feed(&mut *store, items, finished)?;
    let _: wasmtime::component::StreamReader<_> = exported.call_watch(&mut *store, 10)?;
    let _: Option<wasmtime::component::ErrorContext> = exported.call_last_error(&mut *store)?;
    Ok(())
}

/// The exports are typed calls (never run: that they compile is the test).
#[allow(dead_code)]
fn the_exports_are_typed_calls(
    store: &mut wasmtime::Store<()>,
    only: &bindings::only_functions::OnlyFunctions,
    everything: &bindings::exports_everything::ExportsEverything,
) -> wasmtime::Result<()> {
    let _: Result<Vec<u8>, String> = only.call_run(&mut *store, &[1, 2, 3])?;
    let functions = everything.corpus_shapes_functions();
    functions.call_no_arguments(&mut *store)?;
    let _: Result<u32, ()> = functions.call_ok_only(&mut *store)?;
    let _: Result<(), String> = functions.call_error_only(&mut *store)?;
    let _: Option<bindings::empty::Empty> = None;
    Ok(())
}
