//! `torvyn bench`'s report: every table, and `--only`.

use super::*;

/// The cases whose names contain `filter`, measured over many batches (for
/// profiling one operation), as a Markdown table.
pub fn only(filter: &str, quick: bool) -> String {
    if filter == "swap" {
        let table = swap::report(&swap::measure(swap_elements(quick), 20));
        return format!("{table}\n{}\n", cpu_model());
    }
    if filter == "flows" {
        return format!("{}\n{}\n", flows::breakdown(quick), cpu_model());
    }
    let mut cases: Vec<Case> = if filter == "element" {
        element_cases()
    } else {
        all_cases()
            .into_iter()
            .filter(|case| case.name.contains(filter))
            .collect()
    };
    if cases.is_empty() {
        return format!("no benchmark operation contains `{filter}`\n");
    }
    let batches = if quick { 7 } else { 2001 };
    let rows = measure_all(&mut cases, batches, |case| batch_size(case, 5_000));
    let mut out = String::from("| operation | ns/op | host allocs/op |\n|---|---:|---:|\n");
    for row in &rows {
        out.push_str(&format!(
            "| {} | {:.1} | {:.2} |\n",
            row.name, row.ns, row.allocations
        ));
    }
    if filter == "element" {
        out.push_str(&element_ratios(&rows));
    }
    out.push_str(&format!("\n{}\n", cpu_model()));
    out
}

/// The element's engine / bare ratio over the median batches and over the
/// fastest tenth: on a VM whose speed changes from minute to minute the
/// two differ, and the fastest batches (core running fast, caches not shared
/// with a neighbour) are where each instruction-cache miss costs the most
/// cycles, so where the engine's larger code path shows most.
fn element_ratios(rows: &[Measurement]) -> String {
    let engine = measured(rows, row::ELEMENT_BY_HAND);
    let fair = measured(rows, fair_floor::FAIR_FLOOR_ELEMENT);
    let bare = measured(rows, floor::FLOOR_ELEMENT_STORES);
    format!(
        "\n| engine by hand / floor, a store each (time) | / fair floor | / floor (lower bound) |\n|---|---:|---:|\n\
         | median batches | {:.2}× | {:.2}× |\n\
         | fastest tenth of batches | {:.2}× | {:.2}× |\n",
        engine.ns / fair.ns,
        engine.ns / bare.ns,
        engine.fastest / fair.fastest,
        engine.fastest / bare.fastest
    )
}

/// Elements of the live-upgrade runs: long enough for 20 swaps 5 ms apart.
fn swap_elements(quick: bool) -> u64 {
    if quick {
        300_000
    } else {
        1_000_000
    }
}

/// Rows printed in their own tables (transitions, settings), not the first.
fn is_detail_row(name: &str) -> bool {
    [
        "floor: ",
        "fair floor: ",
        "engine: ",
        "setting: ",
        floor::MEMCPY_KIB,
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
        || compute::is_row(name)
}

/// The row named `name`: a report that reads a row no case measured is a
/// bug in the bench (a renamed case), said at once rather than printed as
/// a ratio of NaN.
fn measured<'r>(rows: &'r [Measurement], name: &str) -> &'r Measurement {
    rows.iter()
        .find(|row| row.name == name)
        .unwrap_or_else(|| panic!("the bench report reads row `{name}`, which no case measured"))
}

/// The whole report of `torvyn bench`, as Markdown.
pub fn report(quick: bool) -> String {
    let (batches, per_batch, elements) = if quick {
        (7, 2_000, 20_000)
    } else {
        (31, 5_000, 200_000)
    };
    let mut cases = all_cases();
    let rows = measure_all(&mut cases, batches, |case| batch_size(case, per_batch));
    let ns = |name: &str| measured(&rows, name).ns;
    let floor = ns(row::FLOOR);
    let typed_drop = ns(row::TYPED_DROP);

    let mut out = String::new();
    out.push_str("| operation | ns/op | × floor | host allocs/op |\n|---|---:|---:|---:|\n");
    for row in rows.iter().filter(|row| !is_detail_row(&row.name)) {
        out.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} |\n",
            row.name,
            row.ns,
            row.ns / floor,
            row.allocations
        ));
    }
    // Alternate one- and two-flow runs and keep the medians, for a fair ratio.
    let median = flows::median;
    let (mut ones, mut twos) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ones.push(pipeline_rate(64, elements / 2, 1));
        twos.push(pipeline_rate(64, elements / 2, 2));
    }
    let (rate_small, rate_two) = (median(ones), median(twos));
    let rate_large = pipeline_rate(16 << 10, elements / 10, 1);
    // 1,000 flows of at least 200 elements each (2,000 in the full run):
    // long enough that each flow's first, cold touch of its instances is
    // not what is measured.
    let async_flows = async_flows_rate(1_000, (elements / 100).max(200), 2);
    let live = if quick { 10_000 } else { 100_000 };
    let (bytes_per_instance, ns_per_instance) = density(live);
    out.push_str("\n| pipeline (source → passthrough → sink) | elements/s |\n|---|---:|\n");
    out.push_str(&format!("| 64 B payloads, 1 flow | {rate_small:.0} |\n"));
    out.push_str(&format!("| 16 KiB payloads, 1 flow | {rate_large:.0} |\n"));
    out.push_str(&format!(
        "| 64 B payloads, 2 flows on 2 threads | {rate_two:.0} |\n"
    ));
    out.push_str(&format!(
        "| 64 B payloads, 1,000 async flows on a 2-worker tokio runtime | {async_flows:.0} |\n"
    ));
    out.push_str(&format!(
        "\n| {live} live instances (dense, instantiate_async, one call each) | per instance |\n|---|---:|\n\
         | resident memory | {:.1} KiB |\n| instantiate_async | {:.1} µs |\n",
        bytes_per_instance / 1024.0,
        ns_per_instance / 1000.0
    ));
    let allocs = |name: &str| measured(&rows, name).allocations;
    out.push_str(&transitions::report(&ns, &allocs, 1e9 / rate_small));
    out.push_str(&settings::report(&ns));
    out.push_str(&compute::report(&ns));
    out.push_str(&swap::report(&swap::measure(swap_elements(quick), 20)));

    // What 1,000 async flows on 2 workers can reach on this machine: its
    // own 2-thread scaling, less wasmtime's fiber cost of an element.
    let async_ceiling = flows::ceiling(
        rate_two / rate_small,
        1e9 / rate_small,
        ns(floor::FLOOR_ELEMENT_ASYNC) - ns(floor::FLOOR_ELEMENT_STORES),
    );
    out.push_str("\n| ratio | measured | target |\n|---|---:|---|\n");
    let ratios = [
        ("typed drop / floor", typed_drop / floor, "≤ 1.5"),
        (
            "dynamic drop / typed drop",
            ns(row::DYNAMIC_DROP) / typed_drop,
            "≥ 2",
        ),
        (
            "naive flat-Val / typed drop",
            ns(row::NAIVE_FLAT) / typed_drop,
            "≥ 3",
        ),
        (
            "naive flat-Val / typed flat (same function)",
            ns(row::NAIVE_FLAT) / ns(row::TYPED_FLAT),
            "-",
        ),
        (
            "dynamic / typed, uppercase copy 1 KiB",
            ns(row::DYNAMIC_UPPERCASE) / ns(row::UPPERCASE),
            "-",
        ),
        ("call_async / call", ns(row::CALL_ASYNC) / floor, "-"),
        ("2 flows / 1 flow", rate_two / rate_small, "≥ 1.7"),
        (
            "async typed drop / sync typed drop",
            ns(row::ASYNC_DROP) / typed_drop,
            "≤ 1.3",
        ),
        (
            "async / sync typed drop, the same call on bare wasmtime's floor host",
            ns(floor::FLOOR_DROP_ASYNC) / ns(floor::FLOOR_DROP),
            "-",
        ),
        (
            "async typed drop: host allocations per call",
            allocs(row::ASYNC_DROP),
            "≤ 1",
        ),
        (
            "1,000 async flows (2 workers) / 1 sync flow",
            async_flows / rate_small,
            "-",
        ),
        (
            "its ceiling with wasmtime's fibers as the only async cost (`--only flows`)",
            async_ceiling,
            "-",
        ),
        (
            "1,000 async flows (2 workers) / 1 sync flow, share of its ceiling",
            async_flows / rate_small / async_ceiling,
            "≥ 0.9",
        ),
        (
            "dense / guarded, typed drop (explicit bounds checks)",
            ns(row::DENSE_DROP) / typed_drop,
            "-",
        ),
        (
            "dense / guarded, uppercase copy 1 KiB",
            ns(row::DENSE_UPPERCASE) / ns(row::UPPERCASE),
            "-",
        ),
    ];
    for (name, value, target) in ratios {
        out.push_str(&format!("| {name} | {value:.2} | {target} |\n"));
    }
    out.push_str(&format!(
        "\n{}; {} cores; medians of {batches} batches; pooling instantiation target ≤ 20 µs.\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    ));
    out
}

/// The machine's CPU model (`model name` of `/proc/cpuinfo`): ratios differ
/// between machines of one kind, and the table says which it was.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| format!("CPU: {}", model.trim()))
        })
        .unwrap_or_else(|| "CPU: unknown (no /proc/cpuinfo model name)".into())
}
