//! The generator on a scratch copy of the contract: edits show up in the
//! output, mistakes are reported with file and line.

use std::path::{Path, PathBuf};

use torvyn_build::{Builder, Error};

fn scratch_wit() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let wit = dir.path().join("wit");
    std::fs::create_dir(&wit).unwrap();
    let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
    for entry in std::fs::read_dir(contract).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, wit.join(path.file_name().unwrap())).unwrap();
    }
    (dir, wit)
}

fn builder(wit: &Path) -> Builder {
    Builder::new(wit).emit_rerun_if_changed(false)
}

#[test]
fn every_world_is_generated_and_shared_imports_once() {
    let (_dir, wit) = scratch_wit();
    let generated = builder(&wit).generate().unwrap();
    assert_eq!(generated.wit_files.len(), 6);
    for world in [
        "torvyn:streaming/transform@0.1.0",
        "torvyn:streaming/data-sink@0.1.0",
        "torvyn:filtering/content-router@0.1.0",
        "torvyn:aggregation/stream-aggregator@0.1.0",
        "torvyn:capabilities/capability-aware@0.1.0",
        "torvyn:state/stateful-aggregator@0.1.0",
        "torvyn:windowing/windowed-aggregation@0.1.0",
    ] {
        assert!(
            generated.worlds.iter().any(|w| w == world),
            "{world} missing"
        );
    }
    // `types` is generated in the first world only; the others refer to it.
    let trait_definitions = generated
        .source
        .matches("pub trait HostMutableBuffer:")
        .count();
    assert_eq!(trait_definitions, 1);
    assert!(generated
        .source
        .contains("pub use crate::bindings::transform::torvyn::streaming::types as"));
}

#[test]
fn editing_a_wit_file_changes_the_generated_bindings() {
    let (_dir, wit) = scratch_wit();
    let before = builder(&wit).generate().unwrap().source;
    assert!(!before.contains("fn call_describe"));

    let path = wit.join("streaming.wit");
    let edited = std::fs::read_to_string(&path).unwrap().replace(
        "    process: func(input: stream-element) -> result<process-result, process-error>;",
        "    process: func(input: stream-element) -> result<process-result, process-error>;\n    describe: func() -> string;",
    );
    std::fs::write(&path, edited).unwrap();
    let after = builder(&wit).generate().unwrap().source;
    assert!(
        after.contains("fn call_describe"),
        "the new export is in the bindings"
    );
}

#[test]
fn compile_writes_the_file_and_only_rewrites_on_change() {
    let (dir, wit) = scratch_wit();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let first = builder(&wit).out_dir(&out).compile().unwrap();
    let path = first.path.unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first.source);
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    builder(&wit).out_dir(&out).compile().unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
}

#[test]
fn a_wit_syntax_error_names_file_and_line() {
    let (_dir, wit) = scratch_wit();
    let path = wit.join("filtering.wit");
    let broken = std::fs::read_to_string(&path)
        .unwrap()
        .replace("evaluate: func(", "evaluate: fun(");
    std::fs::write(&path, broken).unwrap();
    let err = builder(&wit).generate().unwrap_err();
    let Error::Wit(message) = &err else {
        panic!("expected a WIT error, got {err:?}")
    };
    assert!(message.contains("filtering.wit:9:"), "{message}");
}

#[test]
fn an_unresolved_name_names_file_and_line() {
    let (_dir, wit) = scratch_wit();
    let path = wit.join("aggregation.wit");
    let broken = std::fs::read_to_string(&path).unwrap().replace(
        "output-element, process-error}",
        "output-element, no-such-type}",
    );
    std::fs::write(&path, broken).unwrap();
    let message = builder(&wit).generate().unwrap_err().to_string();
    assert!(message.contains("aggregation.wit:"), "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn an_unknown_world_is_a_clear_error() {
    let (_dir, wit) = scratch_wit();
    let err = builder(&wit)
        .world("torvyn:streaming/nope")
        .generate()
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownWorld(ref w) if w == "torvyn:streaming/nope"),
        "{err}"
    );
}

/// Writes `files` (path → text) under a fresh folder.
fn layout(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// A folder of one package whose dependencies sit in `deps/`: a folder
/// dependency, a single-file one, and two versions of one package side by
/// side, all read as wit-parser reads them.
#[test]
fn a_folder_with_deps_is_read_as_wit_parser_reads_it() {
    let dir = layout(&[
        (
            "wit/app.wit",
            "package acme:app;\nworld enricher {\n  import acme:geo/lookup;\n  import acme:units/convert@1.0.0;\n  import acme:units/convert@2.0.0;\n  import acme:clock/now;\n  export run: func() -> u32;\n}\n",
        ),
        (
            "wit/deps/geo/lookup.wit",
            "package acme:geo;\ninterface lookup {\n  record place { lat: f64, lon: f64 }\n  find: func(name: string) -> option<place>;\n}\n",
        ),
        (
            "wit/deps/units-1/convert.wit",
            "package acme:units@1.0.0;\ninterface convert { to-metres: func(feet: f64) -> f64; }\n",
        ),
        (
            "wit/deps/units-2/convert.wit",
            "package acme:units@2.0.0;\ninterface convert { to-metres: func(feet: f64, precise: bool) -> f64; }\n",
        ),
        (
            "wit/deps/clock.wit",
            "package acme:clock;\ninterface now { now: func() -> u64; }\n",
        ),
    ]);
    let generated = builder(&dir.path().join("wit")).generate().unwrap();
    assert_eq!(generated.worlds, ["acme:app/enricher"]);
    assert_eq!(generated.wit_files.len(), 5, "{:?}", generated.wit_files);
    for name in ["fn find", "fn to_metres", "fn now", "fn call_run"] {
        assert!(generated.source.contains(name), "{name} missing");
    }
}

/// One package over several files, and several packages in one file.
#[test]
fn a_package_over_files_and_packages_in_one_file_are_read() {
    let dir = layout(&[
        (
            "split/types.wit",
            "package acme:split;\ninterface types { type id = u64; }\n",
        ),
        (
            "split/world.wit",
            "package acme:split;\nworld split {\n  import types;\n  export describe: func(id: u64) -> string;\n}\n",
        ),
        (
            "nested.wit",
            "package acme:main;\n\npackage acme:inner {\n  interface clock { now: func() -> u64; }\n}\n\nworld nested {\n  import acme:inner/clock;\n  export tick: func();\n}\n",
        ),
    ]);
    let split = builder(&dir.path().join("split")).generate().unwrap();
    assert_eq!(split.worlds, ["acme:split/split"]);
    assert_eq!(split.wit_files.len(), 2);
    assert!(split.source.contains("fn call_describe"));
    let nested = builder(&dir.path().join("nested.wit")).generate().unwrap();
    assert_eq!(nested.worlds, ["acme:main/nested"]);
    assert!(nested.source.contains("fn now") && nested.source.contains("fn call_tick"));
}

/// A missing dependency is named, with the file and line that needs it.
#[test]
fn a_missing_dependency_is_named_with_its_place() {
    let dir = layout(&[(
        "wit/app.wit",
        "package acme:app;\nworld w {\n  import acme:gone/api;\n}\n",
    )]);
    std::fs::create_dir(dir.path().join("wit/deps")).unwrap();
    match builder(&dir.path().join("wit")).generate() {
        Err(Error::Wit(message)) => {
            assert!(message.contains("acme:gone"), "{message}");
            assert!(message.contains("app.wit:3"), "{message}");
        }
        other => panic!("expected a WIT error, got {other:?}"),
    }
}

/// What wasmtime's generator (48) cannot bind is refused before it runs, in
/// one line naming the function: an export named as a Rust keyword (its
/// field is not escaped), a function of more than 17 parameters (wasmtime's
/// typed functions stop there). Both as imports and within the limit work:
/// `build-helper/corpus` compiles them.
#[test]
fn what_wasmtime_cannot_bind_is_refused_naming_the_function() {
    let dir = layout(&[(
        "wit/app.wit",
        "package acme:app;\ninterface keywords {\n  %as: func();\n}\n\
         interface wide {\n  f: func(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8, \
         i: u8, j: u8, k: u8, l: u8, m: u8, n: u8, o: u8, p: u8, q: u8, r: u8);\n}\n\
         world exports-keyword {\n  export keywords;\n}\n\
         world imports-keyword {\n  import keywords;\n}\n\
         world wide-import {\n  import wide;\n}\n",
    )]);
    let wit = dir.path().join("wit");
    let message = |world: &str| match builder(&wit).world(world).generate() {
        Err(Error::Generate { message, .. }) => message,
        other => panic!("{world}: expected a refusal, got {other:?}"),
    };
    assert_eq!(
        message("acme:app/exports-keyword"),
        "the exported function `as` of `acme:app/keywords` is named as a Rust keyword, which \
         wasmtime's generator (48) does not escape in export names: rename it (as an import it \
         works)"
    );
    assert_eq!(
        message("acme:app/wide-import"),
        "`f` of `acme:app/wide` takes 18 parameters; wasmtime's typed functions take at most \
         17: pass some of them in a record"
    );
    builder(&wit)
        .world("acme:app/imports-keyword")
        .generate()
        .expect("a keyword-named import generates");
}
