//! Many live instances: with `InstanceDensity::Dense`, 40,000 instances
//! (past where guard regions hit the kernel's map limit) live at once and
//! every one answers a sync and an async call. A pool the map limit cannot
//! hold is refused at engine creation with a sentence naming the limit.

mod common;

use torvyn_engine::{
    Allocation, AsyncComponentInvoker, ComponentInvoker, Element, EngineConfig, Error,
    InstanceDensity, ProcessOutcome, WasmEngine, WasmtimeEngine,
};

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn forty_thousand_dense_instances_live_and_answer_sync_and_async() {
    const INSTANCES: usize = 40_000;
    let engine = WasmtimeEngine::new(
        EngineConfig::builder()
            .density(InstanceDensity::Dense)
            .build()
            .unwrap(),
    )
    .unwrap();
    let component = common::compile(&engine, "drop", &torvyn_fixtures::drop_processor());
    let element = Element::new(0, "text/plain", "x");
    let before = mappings();
    let mut instances = Vec::with_capacity(INSTANCES);
    for _ in 0..INSTANCES {
        let mut instance = engine.instantiate(&component).unwrap();
        assert_eq!(instance.process(&element).unwrap(), ProcessOutcome::Drop);
        instances.push(instance);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for instance in &mut instances {
            assert_eq!(
                instance.process_async(&element).await.unwrap(),
                ProcessOutcome::Drop
            );
        }
    });
    assert_eq!(engine.totals().live_instances(), INSTANCES as u64);
    // Every store now keeps a fiber stack too, and the process is still
    // far from the kernel's limit on mappings.
    // The README's claim: a few dozen mappings for all of them (the other
    // tests of this binary run meanwhile and add their own threads' stacks:
    // a few each, so the bound leaves room for them and none for one
    // mapping per instance or per fiber stack).
    let added = mappings().saturating_sub(before);
    eprintln!("{added} mappings added for {INSTANCES} instances");
    assert!(
        added < 200,
        "{added} mappings added for {INSTANCES} instances"
    );
    assert!(mappings() < max_map_count() / 2);
    drop(instances);
    assert_eq!(engine.totals().live_instances(), 0);
}

#[test]
fn a_pool_past_the_map_limit_is_refused_with_the_limit_named() {
    let config = EngineConfig::builder()
        .allocation(Allocation::Pooling {
            max_instances: 100_000,
        })
        .build()
        .unwrap();
    match WasmtimeEngine::new(config) {
        Err(Error::Config(message)) => {
            assert!(message.contains("vm.max_map_count"), "{message}");
            assert!(message.contains("sysctl -w vm.max_map_count="), "{message}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn a_pool_sized_by_the_memory_limit_holds_thousands() {
    let config = EngineConfig::builder()
        .allocation(Allocation::Pooling {
            max_instances: 5_000,
        })
        .build()
        .unwrap();
    let engine = WasmtimeEngine::new(config).unwrap();
    let component = common::compile(&engine, "drop", &torvyn_fixtures::drop_processor());
    let element = Element::new(0, "", "x");
    let mut instances: Vec<_> = (0..5_000)
        .map(|_| engine.instantiate(&component).unwrap())
        .collect();
    for instance in &mut instances {
        assert_eq!(instance.process(&element).unwrap(), ProcessOutcome::Drop);
    }
    // One more than the pool holds is refused, not a crash.
    match engine.instantiate(&component) {
        Err(Error::Instantiate {
            component,
            detail,
            source,
        }) => assert_eq!(
            (
                component.as_str(),
                detail.as_str(),
                source.map(|cause| cause.to_string()).as_deref()
            ),
            (
                "drop",
                "",
                Some(
                    "component `drop`, function `instantiate`: trap: maximum concurrent limit of \
                     5000 for component instances reached"
                )
            )
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dense_memories_grow_by_moving_and_keep_their_limits() {
    let engine = WasmtimeEngine::new(
        EngineConfig::builder()
            .density(InstanceDensity::Dense)
            .max_memory_bytes(4 << 20)
            .build()
            .unwrap(),
    )
    .unwrap();
    let upper = common::compile(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let mut upper = engine.instantiate(&upper).unwrap();
    // 1 MiB in and out: the guest's memory grows several times.
    let payload = vec![b'a'; 1 << 20];
    match upper.process(&Element::new(0, "", payload)).unwrap() {
        ProcessOutcome::Emit(out) => assert!(out.payload.iter().all(|&b| b == b'A')),
        other => panic!("{other:?}"),
    }
    assert!(upper.memory_bytes() > 1 << 20);
    let bomb = common::compile(&engine, "bomb", &torvyn_fixtures::faults::allocation_bomb());
    let mut bomb = engine.instantiate(&bomb).unwrap();
    match bomb.process(&Element::new(0, "", "x")) {
        Err(Error::MemoryLimit { detail, .. }) => {
            assert!(detail.contains("limit 4194304"), "{detail}")
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
}

#[test]
fn dense_and_pooled_together_hold_instances_that_answer() {
    let engine = WasmtimeEngine::new(
        EngineConfig::builder()
            .density(InstanceDensity::Dense)
            .allocation(Allocation::Pooling {
                max_instances: 2_000,
            })
            .build()
            .unwrap(),
    )
    .unwrap();
    let component = common::compile(&engine, "upper", &torvyn_fixtures::uppercase_processor());
    let element = Element::new(0, "", vec![b'a'; 100_000]);
    let mut instances: Vec<_> = (0..2_000)
        .map(|_| engine.instantiate(&component).unwrap())
        .collect();
    // Some grow their memory past its first page, as the payload needs.
    for instance in instances.iter_mut().step_by(100) {
        match instance.process(&element).unwrap() {
            ProcessOutcome::Emit(out) => assert_eq!(out.payload.len(), 100_000),
            other => panic!("{other:?}"),
        }
    }
}
