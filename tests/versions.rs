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
