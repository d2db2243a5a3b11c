//! Criterion benchmarks of the engine's hot paths (the same scenarios as
//! `torvyn bench`, which prints them side by side with ratios).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use torvyn_bench::alloc_counter::CountingAllocator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("calls");
    for mut case in torvyn_bench::call_cases() {
        group.bench_function(case.name.as_str(), |b| b.iter(&mut case.run));
    }
    group.finish();
}

/// Transition floors and each contract host function (a run repeats the
/// call `case.ops` times: the throughput is per repetition).
fn transitions(c: &mut Criterion) {
    let mut group = c.benchmark_group("transitions");
    for mut case in torvyn_bench::transition_cases() {
        group.throughput(Throughput::Elements(u64::from(case.ops)));
        group.bench_function(case.name.as_str(), |b| b.iter(&mut case.run));
    }
    group.finish();
}

fn pipelines(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    for (name, payload, elements, flows) in [
        ("64B x1 flow", 64, 20_000u64, 1usize),
        ("16KiB x1 flow", 16 << 10, 2_000, 1),
        ("64B x2 flows", 64, 20_000, 2),
    ] {
        group.throughput(Throughput::Elements(elements * flows as u64));
        group.bench_function(name, |b| {
            b.iter(|| torvyn_bench::pipeline_rate(payload, elements, flows))
        });
    }
    group.finish();
}

fn async_flows(c: &mut Criterion) {
    let mut group = c.benchmark_group("async flows");
    group.sample_size(10);
    let (flows, elements) = (100usize, 200u64);
    group.throughput(Throughput::Elements(flows as u64 * elements));
    group.bench_function("64B x100 flows on 2 workers", |b| {
        b.iter(|| torvyn_bench::async_flows_rate(flows, elements, 2))
    });
    group.finish();
}

criterion_group!(benches, calls, transitions, pipelines, async_flows);
criterion_main!(benches);
