//! The example's own world runs through the engine's invoker.

#[test]
fn the_guest_calls_the_host_interface_for_each_element() {
    let (pairs, lookups) = geo_enricher::enrich(&["10.1.1.1", "81.0.0.9", "1.1.1.1"]).unwrap();
    let countries: Vec<&str> = pairs.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(countries, ["NL", "FR", "??"]);
    assert_eq!(lookups, 3);
}

#[test]
fn inspect_knows_who_serves_each_import() {
    let engine = geo_enricher::engine().unwrap();
    let component =
        torvyn_engine::WasmEngine::compile(&engine, "geo", &geo_enricher::guest()).unwrap();
    let providers = component.import_providers();
    assert!(providers.contains(&(
        "acme:geo/lookup@0.1.0".to_string(),
        torvyn_engine::ImportProvider::Custom
    )));
    // Without the host interface the import is reported missing.
    let plain =
        torvyn_engine::WasmtimeEngine::new(torvyn_engine::EngineConfig::builder().build().unwrap())
            .unwrap();
    match torvyn_engine::WasmEngine::compile(&plain, "geo", &geo_enricher::guest()) {
        Err(torvyn_engine::Error::MissingImports { missing, .. }) => {
            assert_eq!(missing, ["acme:geo/lookup@0.1.0"]);
        }
        other => panic!("expected MissingImports, got {other:?}"),
    }
}

/// A getter asking for a state type that was never registered is a host
/// bug named at the first call, not a fresh state nobody else sees; and
/// every instance has its own registered state.
#[test]
fn host_state_is_registered_once_and_per_instance() {
    use geo_enricher::bindings::enricher::acme::geo::lookup;
    use geo_enricher::GeoTable;
    use torvyn_engine::wasmtime::component::HasSelf;
    use torvyn_engine::{ComponentInvoker, Element, StoreState, WasmEngine, WasmtimeEngine};

    let config = || torvyn_engine::EngineConfig::builder().build().unwrap();
    // Registers a `u64`, reads a `GeoTable`.
    let engine = WasmtimeEngine::with_host_imports(config(), &["acme:geo/lookup"], |imports| {
        imports.state::<u64>();
        lookup::add_to_linker::<StoreState, HasSelf<GeoTable>>(imports.linker(), |s| {
            s.extension::<GeoTable>()
        })
    })
    .unwrap();
    let component = engine.compile("geo", &geo_enricher::guest()).unwrap();
    let mut instance = engine.instantiate(&component).unwrap();
    let element = Element::new(0, "text/plain", "10.0.0.1");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = instance.process(&element);
    }))
    .expect_err("an unregistered state type must not be served");
    let message = panicked
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("host state `geo_enricher::GeoTable` was not registered"),
        "{message}"
    );

    // Registered: two instances, two tables.
    let engine = geo_enricher::engine().unwrap();
    let component = engine.compile("geo", &geo_enricher::guest()).unwrap();
    let (mut a, mut b) = (
        engine.instantiate(&component).unwrap(),
        engine.instantiate(&component).unwrap(),
    );
    for _ in 0..3 {
        a.process(&element).unwrap();
    }
    b.process(&element).unwrap();
    assert_eq!(a.store_state().extension::<GeoTable>().lookups, 3);
    assert_eq!(b.store_state().extension::<GeoTable>().lookups, 1);
}
