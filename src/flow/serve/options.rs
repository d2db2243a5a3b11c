//! How a served flow runs and what it reports.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::connect::ConnectorStats;
use crate::error::Result;
use crate::flow::{FlowReport, NodeSpec, StateOptions};
use crate::interfaces::Interface;

/// Makes a fresh instance for a node whose instance a failure poisoned.
///
/// ```
/// use std::sync::Arc;
/// use torvyn_engine::flow::{NodeSpec, Respawn, ServeOptions};
/// use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine, WasmtimeInstance};
///
/// let engine = Arc::new(WasmtimeEngine::new(EngineConfig::builder().build()?)?);
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// // A node whose instance trapped gets a fresh one; its input is retried.
/// let respawn: Respawn<WasmtimeInstance> = Box::new(move |node: &NodeSpec| {
///     let (engine, upper) = (engine.clone(), upper.clone());
///     println!("replacing the instance of {}", node.name);
///     Box::pin(async move { engine.instantiate_async(&upper).await })
/// });
/// let mut options = ServeOptions::default();
/// options.respawn = Some(respawn);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
pub type Respawn<I> = Box<dyn FnMut(&NodeSpec) -> BoxFuture<'static, Result<I>> + Send>;

/// Called after every batch with the report so far and the connectors' counters.
///
/// ```
/// use torvyn_engine::flow::{BatchObserver, ServeOptions};
/// use torvyn_engine::WasmtimeInstance;
///
/// let observer: BatchObserver = Box::new(|report, connectors| {
///     let acked: u64 = connectors.iter().map(|c| c.stats.acked).sum();
///     println!("{} delivered, {acked} inputs acknowledged", report.delivered());
/// });
/// let mut options: ServeOptions<WasmtimeInstance> = ServeOptions::default();
/// options.on_batch = Some(observer);
/// ```
pub type BatchObserver = Box<dyn FnMut(&FlowReport, &[ConnectorReport]) + Send>;

/// How [`Flow::serve`](crate::Flow::serve) runs. Start from `default()` and
/// set the fields you need (more will come, so it cannot be written as a
/// struct literal outside this crate).
///
/// ```
/// use std::time::Duration;
/// use torvyn_engine::flow::ServeOptions;
/// use torvyn_engine::WasmtimeInstance;
///
/// let (stop, stopped) = tokio::sync::watch::channel(false);
/// let mut options: ServeOptions<WasmtimeInstance> = ServeOptions::default();
/// options.batch = 500;
/// options.idle_timeout = Some(Duration::from_secs(2));
/// options.shutdown = Some(stopped); // `stop.send(true)` ends the run cleanly
/// options.on_batch = Some(Box::new(|report, _connectors| println!("{} delivered", report.delivered())));
/// ```
#[non_exhaustive]
pub struct ServeOptions<I> {
    /// Most inputs taken from each source per batch (default 100).
    pub batch: usize,
    /// Most batches whose outputs are sent and not yet confirmed stored
    /// (default 2): the next batch is fetched and processed while the
    /// broker answers the last one's publishes. 1: one batch at a time.
    /// Each input is still acknowledged only after all of its outputs are
    /// stored (acknowledgements come in batch order, not input order);
    /// everything out is stored when a fetch finds nothing, an upgrade
    /// takes over, or the run stops.
    pub batches_in_flight: usize,
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
            .field("batches_in_flight", &self.batches_in_flight)
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
            batches_in_flight: 2,
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
///
/// ```
/// # use std::collections::BTreeMap;
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// use torvyn_engine::connect::{ConnectorSpec, Connectors};
/// use torvyn_engine::flow::{Flow, FlowSpec, NodeSpec, ServeOptions, Stop};
/// use torvyn_engine::Interface;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> torvyn_engine::Result<()> {
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// let dir = std::env::temp_dir().join(format!("torvyn-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("in.txt"), "one\ntwo\n").unwrap();
/// let file = |path: &std::path::Path| ConnectorSpec::new("file", [("path", path.display().to_string())]);
/// let spec = FlowSpec::linear(
///     NodeSpec::connector("in", Interface::Source, file(&dir.join("in.txt"))),
///     vec![NodeSpec::component("upper", "upper", Interface::Processor, "")],
///     NodeSpec::connector("out", Interface::Sink, file(&dir.join("out.txt"))),
/// );
/// let mut components = BTreeMap::new();
/// components.insert("upper".to_string(), engine.compile("upper", &torvyn_fixtures::uppercase_processor())?);
/// let mut flow = Flow::instantiate_connected(&engine, spec, &components, &Connectors::builtin()).await?;
/// let report = flow.serve(ServeOptions::default(), |_node, _element| {}).await?;
/// match report.stop {
///     Stop::Ended => println!("every source ended"),
///     Stop::Idle | Stop::Limit | Stop::Shutdown => println!("stopped: {:?}", report.stop),
///     _ => println!("stopped another way"), // more reasons may come
/// }
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
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
///
/// ```
/// # use std::collections::BTreeMap;
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// use torvyn_engine::connect::{ConnectorSpec, Connectors};
/// use torvyn_engine::flow::{Flow, FlowSpec, NodeSpec, ServeOptions, Stop};
/// use torvyn_engine::Interface;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> torvyn_engine::Result<()> {
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// let dir = std::env::temp_dir().join(format!("torvyn-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("in.txt"), "one\ntwo\n").unwrap();
/// let file = |path: &std::path::Path| ConnectorSpec::new("file", [("path", path.display().to_string())]);
/// let spec = FlowSpec::linear(
///     NodeSpec::connector("in", Interface::Source, file(&dir.join("in.txt"))),
///     vec![NodeSpec::component("upper", "upper", Interface::Processor, "")],
///     NodeSpec::connector("out", Interface::Sink, file(&dir.join("out.txt"))),
/// );
/// let mut components = BTreeMap::new();
/// components.insert("upper".to_string(), engine.compile("upper", &torvyn_fixtures::uppercase_processor())?);
/// let mut flow = Flow::instantiate_connected(&engine, spec, &components, &Connectors::builtin()).await?;
/// let report = flow.serve(ServeOptions::default(), |_node, _element| {}).await?;
/// for connector in &report.connectors {
///     println!("{} ({}): {:?}", connector.node, connector.kind, connector.stats);
/// }
/// assert_eq!(report.connectors.len(), 2);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
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
///
/// ```
/// # use std::collections::BTreeMap;
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// use torvyn_engine::connect::{ConnectorSpec, Connectors};
/// use torvyn_engine::flow::{Flow, FlowSpec, NodeSpec, ServeOptions, Stop};
/// use torvyn_engine::Interface;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> torvyn_engine::Result<()> {
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// let dir = std::env::temp_dir().join(format!("torvyn-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("in.txt"), "one\ntwo\n").unwrap();
/// let file = |path: &std::path::Path| ConnectorSpec::new("file", [("path", path.display().to_string())]);
/// let spec = FlowSpec::linear(
///     NodeSpec::connector("in", Interface::Source, file(&dir.join("in.txt"))),
///     vec![NodeSpec::component("upper", "upper", Interface::Processor, "")],
///     NodeSpec::connector("out", Interface::Sink, file(&dir.join("out.txt"))),
/// );
/// let mut components = BTreeMap::new();
/// components.insert("upper".to_string(), engine.compile("upper", &torvyn_fixtures::uppercase_processor())?);
/// let mut flow = Flow::instantiate_connected(&engine, spec, &components, &Connectors::builtin()).await?;
/// let report = flow.serve(ServeOptions::default(), |_node, _element| {}).await?;
/// assert_eq!(report.stop, Stop::Ended);
/// assert_eq!(report.failed_inputs, 0);
/// assert_eq!(std::fs::read_to_string(dir.join("out.txt")).unwrap(), "ONE\nTWO\n");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
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
    /// Inputs that came again although a restored state had counted them
    /// (the broker lost their acks): acknowledged again, not processed.
    pub already_counted: u64,
}

/// Counters of one run of [`Flow::serve`].
#[derive(Default)]
pub(in crate::flow) struct Counts {
    pub(in crate::flow) failed_inputs: u64,
    pub(in crate::flow) respawned: u64,
    pub(in crate::flow) states_restored: u64,
    pub(in crate::flow) states_saved: u64,
    pub(in crate::flow) already_counted: u64,
}
