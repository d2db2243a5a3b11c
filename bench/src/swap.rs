//! Live upgrade in numbers (issue 23): how long a swap takes from "new
//! version compiled" to "new version serving", and the longest pause it
//! causes in a running flow, against the same flow without swaps.
//!
//! counting source → processor → recording sink on the sync driver; another
//! thread does what `torvyn run --watch` does for a component already
//! compiled: instantiate, `init` (inside `Upgrader::upgrade`), queue. The
//! two versions mark their outputs (uppercase vs as-is), so the flow's
//! delivery callback sees the first element of the new version: that
//! instant, less the one before `instantiate`, is the swap time. The pause
//! is the longest gap between two deliveries.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use torvyn_engine::flow::NodeSpec;
use torvyn_engine::{CompiledComponent, Flow, FlowSpec, Interface, WasmEngine, WasmtimeEngine};

/// What the swaps measured.
pub struct SwapNumbers {
    /// Swaps made.
    pub swaps: usize,
    /// Median and longest time from before `instantiate` to the first
    /// element of the new version delivered.
    pub swap_median: Duration,
    /// The longest of them.
    pub swap_max: Duration,
    /// The longest gap between two deliveries with the swaps.
    pub pause_swapped: Duration,
    /// The longest gap ending at a swap's first element: the driver's own
    /// part of the swap (taking the queued instance, the old one's
    /// `teardown` and drop).
    pub gap_at_swap: Duration,
    /// The longest gap in the same flow without swaps.
    pub pause_plain: Duration,
}

fn flow_spec(elements: u64) -> FlowSpec {
    FlowSpec::linear(
        NodeSpec::component("source", "source", Interface::Source, &elements.to_string()),
        vec![NodeSpec::component(
            "processor",
            "v1",
            Interface::Processor,
            "",
        )],
        NodeSpec::component("sink", "sink", Interface::Sink, ""),
    )
}

/// One run of `elements`; with `swaps` > 0 another thread swaps the
/// processor that many times, one every `every`. Returns the swap times and
/// the longest gap between deliveries.
fn run(
    engine: &WasmtimeEngine,
    compiled: &BTreeMap<String, CompiledComponent>,
    elements: u64,
    swaps: usize,
    every: Duration,
) -> (Vec<Duration>, Duration, Duration) {
    let mut flow = Flow::instantiate(engine, flow_spec(elements), compiled).expect("flow");
    let upgrader = flow.upgrader();
    // The swapper says when it started each swap; the flow thread answers
    // when the version changed, so swaps never overlap.
    let (started_tx, started_rx) = mpsc::channel::<Instant>();
    let (served_tx, served_rx) = mpsc::channel::<()>();
    let versions = [compiled["v2"].clone(), compiled["v1"].clone()];
    let mut times = Vec::with_capacity(swaps);
    let mut longest = Duration::ZERO;
    let mut at_swap = Duration::ZERO;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for swap in 0..swaps {
                std::thread::sleep(every);
                let started = Instant::now();
                let instance = engine
                    .instantiate(&versions[swap % 2])
                    .expect("instantiate");
                if started_tx.send(started).is_err() {
                    return;
                }
                if upgrader.upgrade("processor", instance).is_err() {
                    return;
                }
                if served_rx.recv().is_err() {
                    return;
                }
            }
        });
        let mut last = Instant::now();
        let mut upper = true;
        let mut waiting: Option<Instant> = None;
        flow.run(|_, element| {
            let now = Instant::now();
            let gap = now - last;
            longest = longest.max(gap);
            last = now;
            if waiting.is_none() {
                waiting = started_rx.try_recv().ok();
            }
            // v1 uppercases `element N`, v2 passes it as it is.
            let is_upper = element.payload.first().is_some_and(u8::is_ascii_uppercase);
            if is_upper != upper {
                upper = is_upper;
                at_swap = at_swap.max(gap);
                if let Some(started) = waiting.take().or_else(|| started_rx.try_recv().ok()) {
                    times.push(now - started);
                }
                let _ = served_tx.send(());
            }
        })
        .expect("the flow runs");
        drop(served_tx);
    });
    (times, longest, at_swap)
}

/// The swap numbers: `swaps` swaps in a flow of `elements`, and the same
/// flow without them.
pub fn measure(elements: u64, swaps: usize) -> SwapNumbers {
    let engine = super::default_engine();
    let compile = |name: &str, bytes: &[u8]| engine.compile(name, bytes).expect(name);
    let compiled: BTreeMap<String, CompiledComponent> = [
        (
            "source".to_string(),
            compile("source", &torvyn_fixtures::counting_source()),
        ),
        (
            "v1".to_string(),
            compile("v1", &torvyn_fixtures::uppercase_processor()),
        ),
        (
            "v2".to_string(),
            compile("v2", &torvyn_fixtures::passthrough_processor()),
        ),
        (
            "sink".to_string(),
            compile("sink", &torvyn_fixtures::recording_sink()),
        ),
    ]
    .into_iter()
    .collect();
    let every = Duration::from_millis(5);
    let (_, pause_plain, _) = run(&engine, &compiled, elements, 0, every);
    let (mut times, pause_swapped, gap_at_swap) = run(&engine, &compiled, elements, swaps, every);
    times.sort();
    SwapNumbers {
        swaps: times.len(),
        swap_median: times.get(times.len() / 2).copied().unwrap_or_default(),
        swap_max: times.last().copied().unwrap_or_default(),
        pause_swapped,
        gap_at_swap,
        pause_plain,
    }
}

/// The table in `torvyn bench`.
pub fn report(numbers: &SwapNumbers) -> String {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    format!(
        "\n| live upgrade (source → processor → sink, sync driver; {} swaps, one every 5 ms) | µs | target |\n|---|---:|---|\n\
         | swap: new version compiled → serving, median | {:.0} | < 1,000 |\n\
         | swap: longest | {:.0} | < 1,000 |\n\
         | longest gap ending at a swap (the pause it adds: take, teardown, drop) | {:.0} | ≤ 1,000 |\n\
         | longest gap between any two deliveries, with swaps | {:.0} | - |\n\
         | longest gap between any two deliveries, same flow without swaps | {:.0} | - |\n",
        numbers.swaps,
        us(numbers.swap_median),
        us(numbers.swap_max),
        us(numbers.gap_at_swap),
        us(numbers.pause_swapped),
        us(numbers.pause_plain),
    )
}
