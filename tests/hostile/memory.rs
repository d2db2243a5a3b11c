//! Linear memories, tables, handles and transfers: pooled per instance,
//! counted, and refused with errors that name the limit.

use torvyn_engine::{ComponentInvoker, EngineConfig, Error, ProcessOutcome, WasmEngine};
use torvyn_fixtures::hostile;

use crate::common;
use crate::{contained, contained_process, element, engine_with, instance, memory_limit, trap_in};

#[test]
fn memories_are_pooled_per_instance() {
    let limit = 4 << 20;
    let engine = engine_with(EngineConfig::builder().max_memory_bytes(limit));
    // Eight memories of 1 + 48 pages each (3 MiB): each alone fits the
    // limit, together they do not.
    let error = contained_process(&engine, "memories", &hostile::many_memories(8, 48));
    let detail = memory_limit(&error);
    assert!(detail.contains(&format!("limit {limit}")), "{detail}");
    // One memory of the same size is fine.
    let mut one = instance(&engine, "one-memory", &hostile::many_memories(1, 48));
    assert_eq!(one.process(&element(0)).unwrap(), ProcessOutcome::Drop);
    assert!(one.memory_bytes() >= 49 * 65536, "{}", one.memory_bytes());
}

#[test]
fn too_many_memories_are_refused_at_instantiation() {
    let engine = engine_with(EngineConfig::builder().max_instance_parts(100, 4, 32));
    let component = common::compile(&engine, "memories", &hostile::many_memories(5, 0));
    match engine.instantiate(&component) {
        Err(Error::Instantiate {
            component,
            detail,
            source,
        }) => {
            assert_eq!(component, "memories");
            // The limit named; the refusal itself is the cause (its text
            // printed there, once).
            assert_eq!(detail, "over its limit max_memories = 4");
            let cause = source.expect("the refusal is kept as the source");
            assert!(
                cause
                    .to_string()
                    .ends_with("trap: resource limit exceeded: memory count too high at 5"),
                "{cause}"
            );
            assert!(
                matches!(cause.downcast_ref::<Error>(), Some(Error::Trap { site, .. }) if site.function == "instantiate"),
                "{cause:?}"
            );
        }
        other => panic!("expected an instantiate error, got {other:?}"),
    }
    assert_eq!(engine.totals().live_instances(), 0);
}

#[test]
fn a_handled_refusal_does_not_make_a_later_trap_a_memory_limit() {
    let engine = engine_with(EngineConfig::builder());
    let mut guest = instance(&engine, "refused-grow", &hostile::refused_grow_then_trap());
    assert_eq!(guest.process(&element(0)).unwrap(), ProcessOutcome::Drop);
    let error = guest.process(&element(1)).unwrap_err();
    assert!(
        trap_in(&error, "process").contains("unreachable"),
        "{error}"
    );
}

#[test]
fn a_result_over_the_transfer_limit_is_refused_before_the_host_takes_it() {
    // 32 MiB: under wasmtime's own default (128 MiB), over the engine's limit.
    let engine = engine_with(EngineConfig::builder().max_transfer_bytes(16 << 20));
    let error = contained(
        &engine,
        "big-route",
        &hostile::huge_route_list(32 << 20),
        |guest| guest.route(&element(0)),
    );
    let detail = memory_limit(&error);
    assert!(detail.contains("more than 16777216 bytes"), "{detail}");
    // Under the limit the same guest's port name arrives whole.
    let engine = engine_with(EngineConfig::builder().max_transfer_bytes(16 << 20));
    let mut guest = instance(&engine, "route", &hostile::huge_route_list(1 << 20));
    let ports = guest.route(&element(0)).unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].len(), 1 << 20);
}

#[test]
fn a_200_mib_result_is_refused_before_the_host_takes_it() {
    let engine = engine_with(EngineConfig::builder().max_memory_bytes(256 << 20));
    let error = contained(
        &engine,
        "huge-route",
        &hostile::huge_route_list(200 << 20),
        |guest| guest.route(&element(0)),
    );
    let detail = memory_limit(&error);
    assert!(
        detail.contains("more than 67108864 bytes") && detail.contains("max_transfer_bytes"),
        "{detail}"
    );
}

#[test]
fn handles_are_capped_per_instance() {
    let engine = engine_with(EngineConfig::builder().max_handles(1000));
    let error = contained_process(&engine, "handle-hog", &hostile::handle_hog());
    let detail = memory_limit(&error);
    assert!(detail.contains("more than 1000 handles"), "{detail}");
}

#[test]
fn freezing_a_spent_buffer_is_refused() {
    let engine = engine_with(EngineConfig::builder());
    let error = contained_process(&engine, "freeze-twice", &hostile::freezes_twice());
    assert!(
        trap_in(&error, "process").contains("frozen already"),
        "{error}"
    );
}

/// The other two part limits, each named when it is the one exceeded: a
/// module with 5 extra tables against `max_tables = 2`, and a component
/// whose core instances (its module and wit-component's shims) are more
/// than `max_core_instances = 1`.
#[test]
fn too_many_tables_or_core_instances_are_refused_naming_the_limit() {
    let refused = |parts: (usize, usize, usize), bytes: &[u8]| {
        let engine =
            engine_with(EngineConfig::builder().max_instance_parts(parts.0, parts.1, parts.2));
        let component = common::compile(&engine, "parts", bytes);
        match engine.instantiate(&component) {
            Err(Error::Instantiate {
                component,
                detail,
                source,
            }) => {
                assert_eq!(component, "parts");
                assert_eq!(engine.totals().live_instances(), 0);
                (detail, source.expect("the refusal").to_string())
            }
            other => panic!("expected an instantiate error, got {other:?}"),
        }
    };
    let (detail, cause) = refused((100, 16, 2), &hostile::many_tables(5));
    assert_eq!(detail, "over its limit max_tables = 2");
    assert!(
        cause.contains("trap: resource limit exceeded: table count too high at "),
        "{cause}"
    );
    let (detail, cause) = refused((1, 16, 32), &torvyn_fixtures::uppercase_processor());
    assert_eq!(detail, "over its limit max_core_instances = 1");
    assert!(
        cause.ends_with("trap: resource limit exceeded: instance count too high at 2"),
        "{cause}"
    );
}
