//! What a flow run did, per node: elements in and out, drops, errors,
//! fuel and call times.

use std::time::{Duration, Instant};

use super::slot::Slot;
use super::FlowSpec;
use crate::interfaces::Interface;
use crate::invoker::ComponentInvoker;

/// Call times in log-linear buckets (4 per power of two of nanoseconds):
/// constant memory however long the flow runs, percentiles within 19 %.
#[derive(Clone)]
pub(crate) struct Latencies {
    buckets: Vec<u64>,
    /// Calls made.
    count: u64,
    /// Calls timed (all of them, unless timing is off).
    timed: u64,
    /// Whether calls are timed: two clock reads per call, which a
    /// [`Pipeline`](crate::Pipeline) (whose report has no call times) saves.
    pub(crate) enabled: bool,
}

const SUB_BUCKETS: u32 = 4;

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            buckets: vec![0; (64 * SUB_BUCKETS) as usize],
            count: 0,
            timed: 0,
            enabled: true,
        }
    }
}

impl std::fmt::Debug for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latencies")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Latencies {
    /// Starts timing a call (`None`: timing is off).
    pub(crate) fn start(&self) -> Option<Instant> {
        self.enabled.then(Instant::now)
    }

    /// Counts a call started with [`Latencies::start`], timed if it was.
    pub(crate) fn stop(&mut self, started: Option<Instant>) {
        match started {
            Some(started) => self.record(started.elapsed()),
            None => self.count += 1,
        }
    }

    pub(crate) fn record(&mut self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        let power = 63 - nanos.leading_zeros();
        let fraction = if power >= 2 {
            ((nanos >> (power - 2)) & 0b11) as u32
        } else {
            0
        };
        self.buckets[(power * SUB_BUCKETS + fraction) as usize] += 1;
        self.count += 1;
        self.timed += 1;
    }

    /// Every non-empty bucket: (its upper bound, calls in it).
    pub(crate) fn counts(&self) -> Vec<(Duration, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, &count)| count > 0)
            .map(|(bucket, &count)| (bucket_upper(bucket), count))
            .collect()
    }

    /// The upper bound of the bucket holding the `quantile` call time.
    pub(crate) fn quantile(&self, quantile: f64) -> Duration {
        if self.timed == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.timed as f64 * quantile).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_upper(bucket);
            }
        }
        Duration::MAX
    }
}

/// The upper bound of a bucket.
fn bucket_upper(bucket: usize) -> Duration {
    let (power, fraction) = (bucket as u32 / SUB_BUCKETS, bucket as u32 % SUB_BUCKETS);
    let base = 1u128 << power;
    let upper = base + base * u128::from(fraction + 1) / u128::from(SUB_BUCKETS);
    Duration::from_nanos(u64::try_from(upper).unwrap_or(u64::MAX))
}

/// One node's part of a run.
///
/// ```
/// # use std::collections::BTreeMap;
/// # use torvyn_engine::{CompiledComponent, EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// # let mut components = BTreeMap::new();
/// # for (name, bytes) in [
/// #     ("numbers", torvyn_fixtures::counting_source()),
/// #     ("upper", torvyn_fixtures::uppercase_processor()),
/// #     ("printer", torvyn_fixtures::recording_sink()),
/// # ] {
/// #     components.insert(name.to_string(), engine.compile(name, &bytes)?);
/// # }
/// use torvyn_engine::flow::{Flow, FlowSpec, NodeSpec};
/// use torvyn_engine::Interface;
///
/// let spec = FlowSpec::linear(
///     NodeSpec::component("numbers", "numbers", Interface::Source, "3"),
///     vec![NodeSpec::component("upper", "upper", Interface::Processor, "")],
///     NodeSpec::component("printer", "printer", Interface::Sink, ""),
/// );
/// let mut flow = Flow::instantiate(&engine, spec, &components)?;
/// let report = flow.run(|_, _| {})?;
/// let upper = report.node("upper").unwrap();
/// assert_eq!((upper.elements_in, upper.elements_out, upper.errors), (3, 3, 0));
/// assert_eq!(upper.calls(), 3);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeReport {
    /// The node's name.
    pub name: String,
    /// Its role.
    pub role: Interface,
    /// Elements that reached it (pulled, for a source).
    pub elements_in: u64,
    /// Elements it sent on (for a sink: accepted).
    pub elements_out: u64,
    /// Elements it dropped (a processor's `drop`, a filter's `false`).
    pub dropped: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Fuel its instance used (0 when unmetered).
    pub fuel: u64,
    /// Times its sink answered `pause`.
    pub pauses: u64,
    /// Live upgrades that took over at this node.
    pub upgrades: u64,
    /// Live upgrades refused at this node (the old version kept serving).
    pub upgrades_refused: u64,
    /// Times its instance was replaced by a fresh one (recycling:
    /// `recycle_after_elements`, `recycle_at_memory_percent`).
    pub recycled: u64,
    /// Elements a windowed node found late (every window they fall in
    /// already closed): sent to its `late` port, dropped when no edge
    /// leaves that port.
    pub late: u64,
    /// A windowed node's watermark as it last moved, in milliseconds of
    /// event time (`None`: not yet, or not a windowed node).
    pub watermark_ms: Option<i64>,
    pub(crate) latencies: Latencies,
}

impl NodeReport {
    pub(crate) fn new(name: &str, role: Interface) -> NodeReport {
        NodeReport {
            name: name.to_string(),
            role,
            elements_in: 0,
            elements_out: 0,
            dropped: 0,
            errors: 0,
            fuel: 0,
            pauses: 0,
            upgrades: 0,
            upgrades_refused: 0,
            recycled: 0,
            late: 0,
            watermark_ms: None,
            latencies: Latencies::default(),
        }
    }

    /// Guest calls made for elements (pull, process, evaluate, route,
    /// ingest, push, flush).
    pub fn calls(&self) -> u64 {
        self.latencies.count
    }

    /// Those calls by time: (bucket upper bound, calls), for every non-empty
    /// bucket (4 per power of two of nanoseconds), fastest first.
    pub fn call_times(&self) -> Vec<(Duration, u64)> {
        self.latencies.counts()
    }

    /// Median time of those calls (bucket upper bound).
    pub fn p50(&self) -> Duration {
        self.latencies.quantile(0.50)
    }

    /// 99th-percentile time of those calls (bucket upper bound).
    pub fn p99(&self) -> Duration {
        self.latencies.quantile(0.99)
    }
}

/// What a flow run did.
///
/// ```
/// # use std::collections::BTreeMap;
/// # use torvyn_engine::{CompiledComponent, EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// # let mut components = BTreeMap::new();
/// # for (name, bytes) in [
/// #     ("numbers", torvyn_fixtures::counting_source()),
/// #     ("upper", torvyn_fixtures::uppercase_processor()),
/// #     ("printer", torvyn_fixtures::recording_sink()),
/// # ] {
/// #     components.insert(name.to_string(), engine.compile(name, &bytes)?);
/// # }
/// use torvyn_engine::flow::{Flow, FlowSpec, NodeSpec};
/// use torvyn_engine::Interface;
///
/// let spec = FlowSpec::linear(
///     NodeSpec::component("numbers", "numbers", Interface::Source, "3"),
///     vec![NodeSpec::component("upper", "upper", Interface::Processor, "")],
///     NodeSpec::component("printer", "printer", Interface::Sink, ""),
/// );
/// let mut flow = Flow::instantiate(&engine, spec, &components)?;
/// let report = flow.run(|_, _| {})?;
/// assert_eq!(report.delivered(), 3);
/// for node in &report.nodes {
///     println!("{}: {} in, {} out, p99 {:?}", node.name, node.elements_in, node.elements_out, node.p99());
/// }
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlowReport {
    /// The flow's name.
    pub flow: String,
    /// Per node, upstream first.
    pub nodes: Vec<NodeReport>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl FlowReport {
    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// Elements accepted by all sinks together.
    pub fn delivered(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|node| node.role == Interface::Sink)
            .map(|node| node.elements_out)
            .sum()
    }
}

/// The report of a flow's nodes, upstream first: each node's counts with
/// its instance's fuel so far. `node(i)` is node `i`'s counts and slot
/// (`None`: not in the report, e.g. a source the async driver took out).
pub(super) fn report_of<'a, I: 'a + ComponentInvoker>(
    spec: &FlowSpec,
    order: &[usize],
    elapsed: Duration,
    node: impl Fn(usize) -> Option<(&'a NodeReport, &'a Slot<I>)>,
) -> FlowReport {
    let nodes = order
        .iter()
        .filter_map(|&i| {
            let (report, slot) = node(i)?;
            let mut report = report.clone();
            if let Slot::Component(instance) = slot {
                report.fuel = instance.total_fuel_consumed();
                report.recycled = instance.recycled();
            }
            Some(report)
        })
        .collect();
    FlowReport {
        flow: spec.name.clone(),
        nodes,
        elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_fall_in_the_right_bucket() {
        let mut latencies = Latencies::default();
        for micros in 1..=100 {
            latencies.record(Duration::from_micros(micros));
        }
        let p50 = latencies.quantile(0.5);
        assert!(
            p50 >= Duration::from_micros(50) && p50 <= Duration::from_micros(60),
            "{p50:?}"
        );
        let p99 = latencies.quantile(0.99);
        assert!(
            p99 >= Duration::from_micros(99) && p99 <= Duration::from_micros(118),
            "{p99:?}"
        );
        assert_eq!(Latencies::default().quantile(0.5), Duration::ZERO);
    }
}
