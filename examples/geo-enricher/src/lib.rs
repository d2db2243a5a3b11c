//! A downstream crate hosting its own WIT world with torvyn-engine: the
//! guest is a processor that calls the host's `acme:geo/lookup` for each
//! element; the bindings come from `torvyn-build` in `build.rs`.
#![deny(missing_docs)]

use torvyn_engine::wasmtime::component::HasSelf;
use torvyn_engine::{
    ComponentInvoker, Element, EngineConfig, ProcessOutcome, StoreState, WasmEngine, WasmtimeEngine,
};

/// The generated bindings (`OUT_DIR/bindings.rs`); generated code is not
/// held to this crate's lints.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    torvyn_engine::include_bindings!("bindings");
}

use bindings::enricher::acme::geo::lookup;

/// The host side of `acme:geo/lookup`: a tiny prefix table, and a count of
/// lookups served.
#[derive(Debug, Default)]
pub struct GeoTable {
    /// Lookups served so far.
    pub lookups: u64,
}

impl lookup::Host for GeoTable {
    fn country_of(&mut self, ip: String) -> torvyn_engine::wasmtime::Result<String> {
        self.lookups += 1;
        let country = match ip.split('.').next() {
            Some("10") => "NL",
            Some("81") => "FR",
            Some("91") => "IN",
            _ => "??",
        };
        Ok(country.to_string())
    }
}

/// An engine whose linker also serves `acme:geo/lookup` from a [`GeoTable`]
/// per instance.
pub fn engine() -> torvyn_engine::Result<WasmtimeEngine> {
    WasmtimeEngine::with_host_imports(
        EngineConfig::builder().build()?,
        &["acme:geo/lookup"],
        |imports| {
            imports.state::<GeoTable>();
            lookup::add_to_linker::<StoreState, HasSelf<GeoTable>>(imports.linker(), |state| {
                state.extension::<GeoTable>()
            })
        },
    )
}

/// The guest: for each element it reads the payload, asks the host for the
/// country and emits it as the new payload.
pub fn guest() -> Vec<u8> {
    let wat = format!(
        r#"(module {types} {allocator}
  (import "acme:geo/lookup@0.1.0" "country-of" (func $country_of (param i32 i32 i32)))
  {prelude} {new_buffer}
  (func (export "torvyn:streaming/processor@0.1.0#process")
    (param $seq i64) (param $ts i64) (param $ct_ptr i32) (param $ct_len i32) (param $payload i32) (param $ctx i32)
    (result i32)
    (local $out i32)
    (call $buffer_read_all (local.get $payload) (i32.const 1152))
    (call $country_of (i32.load (i32.const 1152)) (i32.load (i32.const 1156)) (i32.const 1160))
    (local.set $out (call $new_buffer (i32.load (i32.const 1160)) (i32.load (i32.const 1164))))
    (call $drop_buffer (local.get $payload))
    (call $drop_flow (local.get $ctx))
    (call $reset_heap)
    (call $emit (local.get $seq) (local.get $ts) (local.get $ct_ptr) (local.get $ct_len) (local.get $out))))"#,
        types = torvyn_fixtures::TYPES_IMPORTS,
        allocator = torvyn_fixtures::ALLOCATOR_IMPORTS,
        prelude = torvyn_fixtures::PRELUDE,
        new_buffer = torvyn_fixtures::NEW_BUFFER,
    );
    torvyn_fixtures::build_with_wit("acme:geo/enricher", &wat, include_str!("../wit/geo.wit"))
        .unwrap_or_else(|e| panic!("the example guest does not build: {e}"))
}

/// Runs the guest over `ips` and returns (ip, country) pairs and the number
/// of lookups the host served.
pub fn enrich(ips: &[&str]) -> torvyn_engine::Result<(Vec<(String, String)>, u64)> {
    let engine = engine()?;
    let component = engine.compile("geo-enricher", &guest())?;
    let mut instance = engine.instantiate(&component)?;
    let mut pairs = Vec::new();
    for (sequence, ip) in ips.iter().enumerate() {
        let element = Element::new(sequence as u64, "text/plain", ip.to_string());
        if let ProcessOutcome::Emit(out) = instance.process(&element)? {
            pairs.push((
                ip.to_string(),
                String::from_utf8_lossy(&out.payload).into_owned(),
            ));
        }
    }
    let lookups = instance.store_state().extension::<GeoTable>().lookups;
    Ok((pairs, lookups))
}
