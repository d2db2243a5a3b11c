//! Measuring a case: batches timed, allocations counted, the median and
//! the fastest tenth kept; instance density.

use std::time::Instant;

use torvyn_engine::{AsyncComponentInvoker, Element, WasmEngine};

use super::*;
use crate::alloc_counter;

/// A measured case.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Row name.
    pub name: String,
    /// Median nanoseconds per operation over the batches.
    pub ns: f64,
    /// Nanoseconds per operation of the fastest tenth of the batches (the
    /// 10th percentile): the machine's quietest moments.
    pub fastest: f64,
    /// Host heap allocations per operation (needs the counting allocator).
    pub allocations: f64,
}

/// Times every case in one run: after a warm-up, `batches` rounds in which
/// each case runs one batch of `per_batch(case)` operations, so that all
/// cases see the same machine conditions; the median batch gives ns/op.
pub fn measure_all(
    cases: &mut [Case],
    batches: usize,
    per_batch: impl Fn(&Case) -> u32,
) -> Vec<Measurement> {
    let counts: Vec<u32> = cases.iter().map(&per_batch).collect();
    for (case, &count) in cases.iter_mut().zip(&counts) {
        for _ in 0..count.min(1000) {
            (case.run)();
        }
    }
    let mut samples = vec![Vec::with_capacity(batches); cases.len()];
    let mut allocations = vec![0u64; cases.len()];
    for _ in 0..batches {
        for (i, case) in cases.iter_mut().enumerate() {
            let before = alloc_counter::allocations();
            let start = Instant::now();
            for _ in 0..counts[i] {
                (case.run)();
            }
            let elapsed = start.elapsed();
            allocations[i] += alloc_counter::allocations() - before;
            let ops = f64::from(counts[i]) * f64::from(case.ops);
            samples[i].push(elapsed.as_nanos() as f64 / ops);
        }
    }
    cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let mut batch = samples[i].clone();
            batch.sort_by(f64::total_cmp);
            Measurement {
                name: case.name.clone(),
                ns: batch[batch.len() / 2],
                fastest: batch[batch.len() / 10],
                allocations: allocations[i] as f64
                    / (batches as f64 * f64::from(counts[i]) * f64::from(case.ops)),
            }
        })
        .collect()
}

/// What `count` live instances of the uppercase component cost on a
/// [`InstanceDensity::Dense`] engine, made with `instantiate_async`, each
/// then called once: (resident bytes per instance, ns per instantiation).
pub fn density(count: usize) -> (f64, f64) {
    let engine = dense_engine();
    let upper = engine
        .compile("upper", &torvyn_fixtures::uppercase_processor())
        .expect("compile");
    let element = Element::new(0, "text/plain", "abc");
    let before = rss_bytes();
    let mut instances = Vec::with_capacity(count);
    let start = Instant::now();
    for _ in 0..count {
        instances.push(block_on(engine.instantiate_async(&upper)).expect("instantiate"));
    }
    let per_instance_ns = start.elapsed().as_nanos() as f64 / count as f64;
    for instance in &mut instances {
        block_on(instance.process_async(&element)).expect("process");
    }
    let per_instance_bytes = rss_bytes().saturating_sub(before) as f64 / count as f64;
    (per_instance_bytes, per_instance_ns)
}

/// Resident set size of this process, in bytes (Linux; 0 elsewhere).
pub(super) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Every measured case: call-level operations, transitions, settings.
pub(super) fn all_cases() -> Vec<Case> {
    let mut cases = call_cases();
    cases.extend(transition_cases());
    cases.extend(settings::setting_cases());
    cases.extend(compute::compute_cases());
    cases
}

/// Batch size for `case`: `per_batch` operations, fewer for instantiation.
pub(super) fn batch_size(case: &Case, per_batch: u32) -> u32 {
    if case.name.contains("instantiate") {
        per_batch / 20
    } else if compute::is_row(&case.name) {
        // About as long a batch as the others: one call is the guest's loop.
        (per_batch / compute::calls_cost(&case.name)).max(2)
    } else {
        // Looped cases: about as many operations as the others.
        (per_batch / case.ops).max(2)
    }
}
