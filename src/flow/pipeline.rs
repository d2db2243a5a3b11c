//! A linear pipeline: one source, any number of processors, one sink.
//!
//! A `Pipeline` is a [`Flow`] of [`FlowSpec::linear`] run by the flow
//! driver; what it keeps of its own is the shape of its API: instances
//! given in order instead of a spec, `init`/`run`/`teardown` as separate
//! steps (so stages can also be `init`ed one by one, each with its own
//! config), a callback that sees only the sink's elements, and a report of
//! the whole line. Run on the calling thread ([`Pipeline::run`]) or as a
//! future ([`Pipeline::run_async`], one tokio task per flow, many flows
//! sharing a runtime's workers), both the flow driver's one body.

use std::time::{Duration, Instant};

use super::slot::Slot;
use super::{Flow, FlowReport, FlowSpec, NodeSpec};
use crate::calls::{AsyncCalls, Calls, SyncCalls};
use crate::error::Result;
use crate::gate::run_ready;
use crate::interfaces::Interface;
use crate::invoker::{AsyncComponentInvoker, ComponentInvoker, Element};

/// What a pipeline run did.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::Pipeline;
///
/// let compile = |name, bytes: Vec<u8>| engine.compile(name, &bytes).and_then(|c| engine.instantiate(&c));
/// let mut pipeline = Pipeline::new(
///     compile("source", torvyn_fixtures::counting_source())?,
///     vec![compile("drop", torvyn_fixtures::drop_processor())?],
///     compile("sink", torvyn_fixtures::recording_sink())?,
/// )?;
/// pipeline.init("10")?;
/// let report = pipeline.run(|_| {})?;
/// assert_eq!((report.pulled, report.dropped, report.delivered), (10, 10, 0));
/// println!("{:.0} elements/s", report.elements_per_second());
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineReport {
    /// Elements pulled from the source.
    pub pulled: u64,
    /// Elements a processor dropped.
    pub dropped: u64,
    /// Elements pushed to the sink.
    pub delivered: u64,
    /// Payload bytes pushed to the sink.
    pub bytes_delivered: u64,
    /// Times the sink answered `pause`.
    pub pauses: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl PipelineReport {
    /// Elements delivered per second.
    pub fn elements_per_second(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// What `after` counts beyond `before` (the flow's node reports count
    /// over every run; a pipeline report is one run's).
    fn between(before: &FlowReport, after: &FlowReport, elapsed: Duration) -> PipelineReport {
        let mut report = PipelineReport {
            elapsed,
            ..PipelineReport::default()
        };
        for (old, new) in before.nodes.iter().zip(&after.nodes) {
            match new.role {
                Interface::Source => report.pulled += new.elements_out - old.elements_out,
                Interface::Sink => {
                    report.delivered += new.elements_out - old.elements_out;
                    report.pauses += new.pauses - old.pauses;
                }
                _ => report.dropped += new.dropped - old.dropped,
            }
        }
        report
    }
}

/// Source → processors → sink: the flow `linear` with nodes `source`,
/// `processor-1`, `processor-2`, ... and `sink`.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::Pipeline;
///
/// let compile = |name, bytes: Vec<u8>| engine.compile(name, &bytes).and_then(|c| engine.instantiate(&c));
/// let mut pipeline = Pipeline::new(
///     compile("source", torvyn_fixtures::counting_source())?,
///     vec![compile("upper", torvyn_fixtures::uppercase_processor())?],
///     compile("sink", torvyn_fixtures::recording_sink())?,
/// )?;
/// pipeline.init("4")?; // every stage's config
/// let report = pipeline.run(|element| assert!(element.payload.starts_with(b"ELEMENT")))?;
/// assert_eq!(report.delivered, 4);
/// pipeline.teardown()?;
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug)]
pub struct Pipeline<I> {
    flow: Flow<I>,
}

impl<I: ComponentInvoker> Pipeline<I> {
    /// A pipeline of the given stages. Each must export its role (the
    /// source `source`, every processor `processor`, the sink `sink`): the
    /// error names the node that does not.
    pub fn new(source: I, processors: Vec<I>, sink: I) -> Result<Self> {
        // Nodes named by position, each naming its instance's component.
        let node = |name: &str, stage: &I, role| NodeSpec::component(name, stage.name(), role, "");
        let stages = processors
            .iter()
            .enumerate()
            .map(|(i, stage)| node(&format!("processor-{}", i + 1), stage, Interface::Processor))
            .collect();
        let spec = FlowSpec::linear(
            node("source", &source, Interface::Source),
            stages,
            node("sink", &sink, Interface::Sink),
        );
        let instances = std::iter::once(source)
            .chain(processors)
            .chain(std::iter::once(sink))
            .collect();
        let mut flow = Flow::new(spec, instances)?;
        // A pipeline's report has no call times: its hot path saves the
        // two clock reads per call a flow spends on them.
        for report in &mut flow.reports {
            report.latencies.enabled = false;
        }
        Ok(Pipeline { flow })
    }

    /// Stops after `count` elements even if the source has more.
    pub fn limit(mut self, count: u64) -> Self {
        self.flow = self.flow.limit(count);
        self
    }

    /// The flow it runs (its spec, per-node reports and instances).
    pub fn flow(&mut self) -> &mut Flow<I> {
        &mut self.flow
    }

    /// Calls `init(config)` on every stage that exports a lifecycle (the
    /// same config for all; to give each its own, `init` the stages from
    /// [`Pipeline::stages`] instead).
    pub fn init(&mut self, config: &str) -> Result<()> {
        self.configure(config);
        run_ready(self.flow.init_with::<SyncCalls>())
    }

    /// Calls `teardown` on every stage that exports a lifecycle. Every
    /// stage's teardown is attempted, even after one fails; the first
    /// failure is returned.
    pub fn teardown(&mut self) -> Result<()> {
        run_ready(self.flow.teardown_with::<SyncCalls>())
    }

    /// Moves elements until the source is exhausted (or the limit is hit),
    /// then calls the sink's `complete`. `delivered` sees each element the
    /// sink accepted. The runtime numbers each stage's input 0, 1, 2, ...
    /// (a drop upstream leaves no gap downstream), as in every flow.
    pub fn run(&mut self, delivered: impl FnMut(&Element)) -> Result<PipelineReport> {
        run_ready(self.run_on::<SyncCalls>(delivered))
    }

    /// The stages, for inspection after a run: (source, processors, sink).
    pub fn stages(&mut self) -> (&mut I, Vec<&mut I>, &mut I) {
        let mut instances: Vec<&mut I> = self.flow.slots.iter_mut().map(Slot::instance).collect();
        let sink = instances.pop().expect("a pipeline has a sink");
        let source = instances.remove(0);
        (source, instances, sink)
    }

    /// Every node's `init` gets `config`.
    fn configure(&mut self, config: &str) {
        for node in &mut self.flow.spec.nodes {
            node.config = config.to_string();
        }
    }

    /// One run on the flow driver, counting the bytes the sink accepted;
    /// the report is what this run added to the flow's counts.
    async fn run_on<C: Calls<I>>(
        &mut self,
        mut delivered: impl FnMut(&Element),
    ) -> Result<PipelineReport> {
        let started = Instant::now();
        let before = self.flow.report(Duration::ZERO);
        let mut bytes = 0;
        let mut sink = |_: &str, element: &Element| {
            bytes += element.payload.len() as u64;
            delivered(element);
        };
        self.flow.stream_with::<C>(&mut sink, false).await?;
        let after = self.flow.report(Duration::ZERO);
        let mut report = PipelineReport::between(&before, &after, started.elapsed());
        report.bytes_delivered = bytes;
        Ok(report)
    }
}

/// The same flow as futures: run each flow as a task (`tokio::spawn`),
/// as many as you like on one runtime; guest calls yield every time slice,
/// so flows on the same worker thread take turns. The source is pulled in
/// step with the rest (no queue between them: one source, one line).
///
/// # Cancel safety
///
/// Dropping a future of these methods (an aborted task, a `timeout`)
/// cancels the stage call under way: that instance is poisoned (and what
/// its guest held released); the others are untouched. Elements already
/// delivered stay delivered; the element in flight is lost with its flow.
impl<I: AsyncComponentInvoker> Pipeline<I> {
    /// [`init`](Pipeline::init), awaiting each stage.
    pub async fn init_async(&mut self, config: &str) -> Result<()> {
        self.configure(config);
        self.flow.init_with::<AsyncCalls>().await
    }

    /// [`teardown`](Pipeline::teardown), awaiting each stage.
    pub async fn teardown_async(&mut self) -> Result<()> {
        self.flow.teardown_with::<AsyncCalls>().await
    }

    /// [`run`](Pipeline::run), awaiting each stage call.
    pub async fn run_async(
        &mut self,
        delivered: impl FnMut(&Element) + Send,
    ) -> Result<PipelineReport> {
        self.run_on::<AsyncCalls>(delivered).await
    }
}
