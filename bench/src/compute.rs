//! Compute-bound guests: a processor whose cost is its own loop (flipping
//! the case of 1 KiB or 64 KiB of its own memory; no host copy), on the
//! engine as configured by default (epoch interruption, no fuel), on an
//! engine with fuel configured, and on bare wasmtime with neither: what
//! each kind of metering costs code that does not call the host.

use torvyn_engine::bindings::transform::Transform;
use torvyn_engine::bindings::types::ElementMetaResult;
use torvyn_engine::{ComponentInvoker, Element, EngineConfig, WasmEngine, WasmtimeEngine};
use wasmtime::component::Component;

use super::floor::{floor_linker, lent, CONTENT_TYPE};
use super::{bare_store, case, Case};

/// The sizes measured: (bytes, label).
const SIZES: [(u32, &str); 2] = [(1 << 10, "1 KiB"), (64 << 10, "64 KiB")];

/// The engine as `EngineConfig::builder().build()` makes it.
const DEFAULT: &str = "engine default (epoch only)";
/// The engine with `fuel_per_call` set.
const FUELED: &str = "engine with fuel_per_call";
/// wasmtime with the component model and nothing else.
const BARE: &str = "bare wasmtime, no fuel, no epoch";

/// The row of `config` at `size`.
fn row_name(config: &str, size: &str) -> String {
    format!("compute: flip case of {size} in guest memory, {config}")
}

/// Whether `name` is a row of this table.
pub fn is_row(name: &str) -> bool {
    name.starts_with("compute: ")
}

/// How many ordinary calls one call of row `name` is worth (its KiB),
/// for the batch size.
pub fn calls_cost(name: &str) -> u32 {
    SIZES
        .iter()
        .find(|(_, size)| name.contains(&format!(" {size} ")))
        .map_or(1, |(bytes, _)| (bytes >> 10).max(1))
}

/// One `process` → `drop` of the compute guest on `engine`.
fn engine_case(name: String, engine: &WasmtimeEngine, guest: &[u8]) -> Case {
    let component = engine.compile("compute", guest).expect("compute guest");
    let mut instance = engine.instantiate(&component).expect("instance");
    let element = Element::new(1, CONTENT_TYPE, "x");
    case(name, move || {
        instance.process(&element).expect("process");
    })
}

/// Every configuration at every size.
pub fn compute_cases() -> Vec<Case> {
    let default = super::default_engine();
    let fueled = WasmtimeEngine::new(
        EngineConfig::builder()
            .fuel_per_call(Some(u64::MAX / 2))
            .build()
            .expect("fuel config"),
    )
    .expect("fueled engine");
    let mut bare_config = wasmtime::Config::new();
    // As the engine's (its default follows a wasmtime feature).
    bare_config
        .wasm_component_model(true)
        .concurrency_support(false);
    let bare = wasmtime::Engine::new(&bare_config).expect("bare engine");
    let mut cases = Vec::new();
    for (bytes, size) in SIZES {
        let guest = torvyn_fixtures::compute_processor(bytes);
        cases.push(engine_case(row_name(DEFAULT, size), &default, &guest));
        cases.push(engine_case(row_name(FUELED, size), &fueled, &guest));
        let linker = floor_linker(&bare, 64).expect("floor linker");
        let mut store = bare_store(&bare);
        let component = Component::new(&bare, &guest).expect("compute guest");
        let processor =
            Transform::instantiate(&mut store, &component, &linker).expect("instantiate");
        let meta = ElementMetaResult {
            sequence: 1,
            timestamp_ns: 0,
            content_type: CONTENT_TYPE.to_string(),
        };
        cases.push(case(row_name(BARE, size), move || {
            let process = processor.torvyn_streaming_processor().func_process();
            let (result,) = process
                .call(&mut store, (lent(&meta, 0),))
                .expect("process runs");
            result.expect("process succeeds");
        }));
    }
    cases
}

/// The table: each configuration's time and its ratio to bare wasmtime.
pub fn report(ns: &dyn Fn(&str) -> f64) -> String {
    let mut out = String::from(
        "\n| compute-bound guest (process → drop, the loop in guest memory) | ns/op | × bare |\n\
         |---|---:|---:|\n",
    );
    for (_, size) in SIZES {
        let bare = ns(&row_name(BARE, size));
        for config in [BARE, DEFAULT, FUELED] {
            let name = row_name(config, size);
            let value = ns(&name);
            out.push_str(&format!("| {name} | {value:.0} | {:.2} |\n", value / bare));
        }
    }
    out.push_str(
        "\ntargets: engine default ≤ 1.25× bare (epoch only); fuel only where configured.\n",
    );
    out
}
