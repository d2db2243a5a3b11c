//! wasmtime settings that may move the floors themselves: the engine's own
//! wasmtime configuration with one setting changed, measured on the empty
//! call, the no-op import, a borrow lent and dropped, and instantiation.

use wasmtime::component::{Component, Resource, TypedFunc};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store,
};

use super::floor::{floor_linker, FloorBuffer};
use super::{bare_store, export_index, looped, Case, LOOP_REPETITIONS};

/// One configuration to measure: a name and the change it makes.
struct Variant {
    name: &'static str,
    change: fn(&mut Config),
}

/// The variants, the engine's own configuration first.
const VARIANTS: [Variant; 10] = [
    Variant {
        name: "engine default",
        change: |_| {},
    },
    Variant {
        name: "wasm backtraces off",
        change: |c| {
            c.wasm_backtrace_max_frames(None);
        },
    },
    Variant {
        name: "native unwind info off",
        change: |c| {
            c.native_unwind_info(false);
        },
    },
    Variant {
        name: "signals-based traps off",
        change: |c| {
            c.signals_based_traps(false);
        },
    },
    Variant {
        name: "table lazy init off",
        change: |c| {
            c.table_lazy_init(false);
        },
    },
    Variant {
        name: "address map off",
        change: |c| {
            c.generate_address_map(false);
        },
    },
    Variant {
        name: "cranelift opt level speed-and-size",
        change: |c| {
            c.cranelift_opt_level(OptLevel::SpeedAndSize);
        },
    },
    Variant {
        name: "pooling allocator",
        change: |c| {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(16)
                .total_core_instances(64)
                .total_memories(16)
                .total_tables(64)
                .total_stacks(16);
            c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        },
    },
    Variant {
        name: "fuel metering on (what fuel_per_call adds)",
        change: |c| {
            c.consume_fuel(true);
        },
    },
    Variant {
        name: "epoch interruption off (reference only)",
        change: |c| {
            c.epoch_interruption(false);
        },
    },
];

/// The measured operations of each variant, in row order.
pub const OPERATIONS: [&str; 4] = [
    "empty call",
    "no-op import",
    "borrow lent + dropped",
    "instantiate (new store)",
];

/// The row name of `operation` under `variant`.
pub fn row_name(variant: &str, operation: &str) -> String {
    format!("setting: {variant}: {operation}")
}

/// The variants' names, in order.
pub fn variant_names() -> impl Iterator<Item = &'static str> {
    VARIANTS.iter().map(|variant| variant.name)
}

/// The engine's own wasmtime configuration (default density and
/// allocation), taken from a default engine rather than rebuilt here.
fn engine_config() -> Config {
    super::default_engine().wasmtime().config().clone()
}

/// The cases of every variant.
pub fn setting_cases() -> Vec<Case> {
    let empty_bytes = torvyn_fixtures::empty_component();
    let noop_bytes = torvyn_fixtures::transitions::noop_import_loop();
    let loop_bytes = torvyn_fixtures::transitions::host_call_loop();
    let n = LOOP_REPETITIONS;
    let mut cases = Vec::new();
    let base = engine_config();
    for variant in &VARIANTS {
        let mut config = base.clone();
        (variant.change)(&mut config);
        let engine = Engine::new(&config).expect("the variant is a valid configuration");
        let linker = floor_linker(&engine, 64).expect("floor linker");
        let instantiate = |bytes: &[u8], store: &mut Store<()>| {
            let component = Component::new(&engine, bytes).expect("compiles");
            linker.instantiate(store, &component).expect("instantiates")
        };

        let mut empty_store = bare_store(&engine);
        let empty = instantiate(&empty_bytes, &mut empty_store);
        let index = export_index(&empty, &mut empty_store, "probe", "noop");
        let noop: TypedFunc<(), ()> = empty.get_typed_func(&mut empty_store, index).expect("noop");
        cases.push(looped(
            row_name(variant.name, OPERATIONS[0]),
            1,
            move || noop.call(&mut empty_store, ()).expect("noop"),
        ));

        let mut noop_store = bare_store(&engine);
        let noop_loop = instantiate(&noop_bytes, &mut noop_store);
        let index = export_index(&noop_loop, &mut noop_store, "noop-loop", "run");
        let run: TypedFunc<(u32,), ()> = noop_loop
            .get_typed_func(&mut noop_store, index)
            .expect("run");
        cases.push(looped(
            row_name(variant.name, OPERATIONS[1]),
            n,
            move || run.call(&mut noop_store, (n,)).expect("noop loop"),
        ));

        let mut borrow_store = bare_store(&engine);
        let host_loop = instantiate(&loop_bytes, &mut borrow_store);
        let index = export_index(&host_loop, &mut borrow_store, "host-loop", "drop-borrows");
        let drop_borrows: TypedFunc<(Vec<Resource<FloorBuffer>>,), ()> = host_loop
            .get_typed_func(&mut borrow_store, index)
            .expect("drop-borrows");
        cases.push(looped(
            row_name(variant.name, OPERATIONS[2]),
            n,
            move || {
                let handles = (0..n).map(Resource::new_borrow).collect();
                drop_borrows
                    .call(&mut borrow_store, (handles,))
                    .expect("drop-borrows");
            },
        ));

        let component = Component::new(&engine, &loop_bytes).expect("compiles");
        let pre = linker
            .instantiate_pre(&component)
            .expect("pre-instantiates");
        cases.push(looped(
            row_name(variant.name, OPERATIONS[3]),
            1,
            move || {
                let mut store = bare_store(&engine);
                pre.instantiate(&mut store).expect("instantiates");
            },
        ));
    }
    cases
}

/// The settings table: each variant's operations, with the change against
/// the engine default in percent.
pub fn report(ns: &dyn Fn(&str) -> f64) -> String {
    let mut out = format!(
        "\n| wasmtime setting | {} |\n|---|{}\n",
        OPERATIONS.join(" | "),
        "---:|".repeat(OPERATIONS.len())
    );
    let base: Vec<f64> = OPERATIONS
        .iter()
        .map(|op| ns(&row_name(VARIANTS[0].name, op)))
        .collect();
    for name in variant_names() {
        out.push_str(&format!("| {name} |"));
        for (op, base) in OPERATIONS.iter().zip(&base) {
            let value = ns(&row_name(name, op));
            if name == VARIANTS[0].name {
                out.push_str(&format!(" {value:.1} ns |"));
            } else {
                out.push_str(&format!(
                    " {value:.1} ns ({:+.0} %) |",
                    (value / base - 1.0) * 100.0
                ));
            }
        }
        out.push('\n');
    }
    out
}
