//! How a served flow runs and what it reports.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::connect::ConnectorStats;
use crate::error::Result;
use crate::flow::{FlowReport, NodeSpec, StateOptions};
use crate::interfaces::Interface;

/// Makes a fresh instance for a node whose instance a failure poisoned.
pub type Respawn<I> = Box<dyn FnMut(&NodeSpec) -> BoxFuture<'static, Result<I>> + Send>;

/// Called after every batch with the report so far and the connectors' counters.
pub type BatchObserver = Box<dyn FnMut(&FlowReport, &[ConnectorReport]) + Send>;

/// How [`Flow::serve`](crate::Flow::serve) runs.
pub struct ServeOptions<I> {
    /// Most inputs taken from each source per batch (default 100).
    pub batch: usize,
    /// End the stream after this long without an input (batch jobs and
    /// tests); `None`: run until the sources end or a shutdown.
    pub idle_timeout: Option<Duration>,
    /// Set to `true` to stop: the batch in flight is finished, held inputs
    /// are handed back, stages are torn down.
    pub shutdown: Option<tokio::sync::watch::Receiver<bool>>,
    /// A fresh instance for a node whose instance failed; without it such a
    /// failure ends the run with its error.
    pub respawn: Option<Respawn<I>>,
    /// How long sink flushes are retried (the broker away) before the run
    /// fails (default 60 s).
    pub sink_retry: Duration,
    /// Called after every batch.
    pub on_batch: Option<BatchObserver>,
    /// Where stages exporting `torvyn:state` keep their state across a
    /// stop: restored at the start, saved at a requested stop (their inputs
    /// then acknowledged, not handed back), removed at the end of the
    /// stream. See [`crate::flow::state`].
    pub state: Option<StateOptions>,
}

impl<I> std::fmt::Debug for ServeOptions<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("batch", &self.batch)
            .field("idle_timeout", &self.idle_timeout)
            .field("sink_retry", &self.sink_retry)
            .field("respawn", &self.respawn.is_some())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<I> Default for ServeOptions<I> {
    fn default() -> Self {
        ServeOptions {
            batch: 100,
            idle_timeout: None,
            shutdown: None,
            respawn: None,
            sink_retry: Duration::from_secs(60),
            on_batch: None,
            state: None,
        }
    }
}

/// Why a served flow stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stop {
    /// Every source ended.
    Ended,
    /// No input for the idle timeout.
    Idle,
    /// The flow's element limit was reached.
    Limit,
    /// It was told to stop.
    Shutdown,
}

/// One connector's part of a served run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectorReport {
    /// The node.
    pub node: String,
    /// The connector kind.
    pub kind: String,
    /// Source or sink.
    pub role: Interface,
    /// Its counters.
    pub stats: ConnectorStats,
}

/// What a served run did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeReport {
    /// Per node, as [`Flow::run`](crate::Flow::run) reports.
    pub flow: FlowReport,
    /// Per connector node.
    pub connectors: Vec<ConnectorReport>,
    /// Why it stopped.
    pub stop: Stop,
    /// Inputs whose processing failed (each retried or dead-lettered).
    pub failed_inputs: u64,
    /// Instances replaced after a failure.
    pub respawned: u64,
    /// Stages whose stored state was restored at the start.
    pub states_restored: u64,
    /// Stages whose state was saved at a requested stop.
    pub states_saved: u64,
}

/// Counters of one run of [`Flow::serve`].
#[derive(Default)]
pub(in crate::flow) struct Counts {
    pub(in crate::flow) failed_inputs: u64,
    pub(in crate::flow) respawned: u64,
    pub(in crate::flow) states_restored: u64,
    pub(in crate::flow) states_saved: u64,
}
