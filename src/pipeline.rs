//! A linear pipeline: one source, any number of processors, one sink.
//!
//! The runtime proper schedules stages on its own; this driver runs one
//! flow's stages in order, element by element: on the calling thread
//! ([`Pipeline::run`]) or as a future ([`Pipeline::run_async`], one tokio
//! task per flow, many flows sharing a runtime's workers). Both are the
//! same code: the flow logic is written once over a `Calls` strategy that
//! either calls the sync [`ComponentInvoker`] or awaits the
//! [`AsyncComponentInvoker`].

use std::time::{Duration, Instant};

use crate::calls::{AsyncCalls, Calls, SyncCalls};
use crate::error::Result;
use crate::gate::run_ready;
use crate::invoker::{
    AsyncComponentInvoker, Backpressure, ComponentInvoker, Element, ProcessOutcome,
};

/// What a pipeline run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
}

/// Source → processors → sink.
#[derive(Debug)]
pub struct Pipeline<I> {
    source: I,
    processors: Vec<I>,
    sink: I,
    limit: Option<u64>,
}

impl<I: ComponentInvoker> Pipeline<I> {
    /// A pipeline of the given stages.
    pub fn new(source: I, processors: Vec<I>, sink: I) -> Self {
        Pipeline {
            source,
            processors,
            sink,
            limit: None,
        }
    }

    /// Stops after `count` elements even if the source has more.
    pub fn limit(mut self, count: u64) -> Self {
        self.limit = Some(count);
        self
    }

    /// Calls `init(config)` on every stage that exports a lifecycle.
    pub fn init(&mut self, config: &str) -> Result<()> {
        run_ready(self.init_with::<SyncCalls>(config))
    }

    /// Calls `teardown` on every stage that exports a lifecycle. Every
    /// stage's teardown is attempted, even after one fails; the first
    /// failure is returned.
    pub fn teardown(&mut self) -> Result<()> {
        run_ready(self.teardown_with::<SyncCalls>())
    }

    /// Moves elements until the source is exhausted (or the limit is hit),
    /// then calls the sink's `complete`. `delivered` sees each element the
    /// sink accepted. The runtime numbers elements in pull order.
    pub fn run(&mut self, delivered: impl FnMut(&Element)) -> Result<PipelineReport> {
        run_ready(self.run_with::<SyncCalls>(delivered))
    }

    /// The stages, for inspection after a run: (source, processors, sink).
    pub fn stages(&mut self) -> (&mut I, &mut [I], &mut I) {
        (&mut self.source, &mut self.processors, &mut self.sink)
    }

    fn stages_mut(&mut self) -> impl Iterator<Item = &mut I> {
        std::iter::once(&mut self.source)
            .chain(self.processors.iter_mut())
            .chain(std::iter::once(&mut self.sink))
    }

    async fn init_with<C: Calls<I>>(&mut self, config: &str) -> Result<()> {
        for stage in self.stages_mut() {
            if stage.has(crate::Interface::Lifecycle) {
                C::init(stage, config).await?;
            }
        }
        Ok(())
    }

    async fn teardown_with<C: Calls<I>>(&mut self) -> Result<()> {
        let mut first_error = None;
        for stage in self.stages_mut() {
            if stage.has(crate::Interface::Lifecycle) {
                if let Err(error) = C::teardown(stage).await {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn run_with<C: Calls<I>>(
        &mut self,
        mut delivered: impl FnMut(&Element),
    ) -> Result<PipelineReport> {
        let start = Instant::now();
        let mut report = PipelineReport::default();
        let mut paused = false;
        while self.limit.is_none_or(|limit| report.pulled < limit) {
            let Some(mut element) = C::pull(&mut self.source).await? else {
                break;
            };
            element.meta.sequence = report.pulled;
            element.meta.timestamp_ns = now_ns();
            report.pulled += 1;
            let Some(element) = self.transform::<C>(element).await? else {
                report.dropped += 1;
                continue;
            };
            let signal = C::push(&mut self.sink, &element).await?;
            report.delivered += 1;
            report.bytes_delivered += element.payload.len() as u64;
            delivered(&element);
            // Tell the source only when the sink's answer changes.
            let pause = signal == Backpressure::Pause;
            if pause {
                report.pauses += 1;
            }
            if pause != paused {
                C::notify_backpressure(&mut self.source, signal).await?;
                paused = pause;
            }
        }
        C::complete(&mut self.sink).await?;
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// Runs an element through the processors; `None` if one dropped it.
    async fn transform<C: Calls<I>>(&mut self, mut element: Element) -> Result<Option<Element>> {
        for processor in &mut self.processors {
            match C::process(processor, &element).await? {
                ProcessOutcome::Emit(mut output) => {
                    // Sequence and timestamp of outputs are advisory: keep the runtime's.
                    output.meta.sequence = element.meta.sequence;
                    output.meta.timestamp_ns = element.meta.timestamp_ns;
                    element = output;
                }
                ProcessOutcome::Drop => return Ok(None),
            }
        }
        Ok(Some(element))
    }
}

/// The same flow as futures: run each flow as a task (`tokio::spawn`),
/// as many as you like on one runtime; guest calls yield every time slice,
/// so flows on the same worker thread take turns.
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
        self.init_with::<AsyncCalls>(config).await
    }

    /// [`teardown`](Pipeline::teardown), awaiting each stage.
    pub async fn teardown_async(&mut self) -> Result<()> {
        self.teardown_with::<AsyncCalls>().await
    }

    /// [`run`](Pipeline::run), awaiting each stage call.
    pub async fn run_async(
        &mut self,
        delivered: impl FnMut(&Element) + Send,
    ) -> Result<PipelineReport> {
        self.run_with::<AsyncCalls>(delivered).await
    }
}

/// Nanoseconds since the Unix epoch (the runtime's element timestamps).
pub(crate) fn now_ns() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}
