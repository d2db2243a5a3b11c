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
