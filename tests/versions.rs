//! Which export takes the typed path is decided from the component's type.

mod common;

use torvyn_engine::{CallPath, ComponentInvoker, Element, Interface, ProcessOutcome, WasmEngine};

#[test]
fn a_semver_compatible_patch_version_takes_the_typed_path() {
    let engine = common::engine();
    let component = common::compile(
        &engine,
        "upper-0.1.5",
        &torvyn_fixtures::uppercase_processor_at("0.1.5"),
    );
    let export = &component.exports()[0];
    assert_eq!(export.name, "torvyn:streaming/processor@0.1.5");
    assert_eq!(export.interface, Some(Interface::Processor));
    assert_eq!(export.path, CallPath::Typed);
    assert!(component
        .imports()
        .contains(&"torvyn:streaming/types@0.1.5".to_string()));

    let mut instance = engine.instantiate(&component).unwrap();
    assert!(instance.has(Interface::Processor));
    let out = instance
        .process(&Element::new(3, "text/plain", "abc"))
        .unwrap();
    assert_eq!(
        out,
        ProcessOutcome::Emit(Element::new(3, "text/plain", "ABC"))
    );
}

#[test]
fn export_names_are_classified_by_version() {
    let classify = torvyn_engine::classify_export;
    assert_eq!(
        classify("torvyn:streaming/sink@0.1.9").path,
        CallPath::Typed
    );
    assert!(matches!(
        classify("torvyn:streaming/sink@0.2.0").path,
        CallPath::Dynamic(_)
    ));
    assert!(matches!(
        classify("torvyn:streaming/sink@1.0.0").path,
        CallPath::Dynamic(_)
    ));
    assert_eq!(
        classify("acme:etl/processor").interface,
        Some(Interface::Processor)
    );
    assert!(matches!(
        classify("acme:etl/processor").path,
        CallPath::Dynamic(_)
    ));
    assert!(matches!(
        classify("acme:etl/helpers").path,
        CallPath::ByNameOnly(_)
    ));
}

#[test]
fn a_second_export_of_the_same_role_is_callable_by_name_only() {
    // The typed export wins over the dynamic one for the stage methods, even
    // when the dynamic one comes first.
    let engine = common::engine();
    let bytes = torvyn_fixtures::build_with_wits(
        "acme:both/both",
        &format!(
            r#"(module {types} {prelude}
  (func $process (export "torvyn:streaming/processor@0.1.0#process")
    (param i64 i64 i32 i32) (param $payload i32) (param $ctx i32) (result i32)
    {drop})
  (export "acme:etl/processor#process" (func $process)))"#,
            types = torvyn_fixtures::TYPES_IMPORTS,
            prelude = torvyn_fixtures::PRELUDE,
            drop = torvyn_fixtures::RETURN_DROP,
        ),
        &[
            "package acme:etl;\ninterface processor {\n use torvyn:streaming/types@0.1.0.{stream-element, process-result, process-error};\n process: func(input: stream-element) -> result<process-result, process-error>;\n}",
            "package acme:both;\nworld both {\n import torvyn:streaming/types@0.1.0;\n export acme:etl/processor;\n export torvyn:streaming/processor@0.1.0;\n}",
        ],
    )
    .unwrap();
    let component = common::compile(&engine, "both", &bytes);
    assert_eq!(component.exports()[0].name, "acme:etl/processor");
    assert_eq!(
        component.path_for(Interface::Processor),
        Some(&CallPath::Typed)
    );
    let second = component
        .exports()
        .iter()
        .find(|e| e.name == "acme:etl/processor")
        .unwrap();
    assert!(matches!(&second.path, CallPath::ByNameOnly(why) if why.contains("already provides")));
}
