//! `torvyn run`'s arguments, declared once: clap reads them into
//! [`RunArgs`] and every part of the run takes them from there.

use std::time::Duration;

use crate::commands::LimitArgs;
use crate::output::Format;

/// What `torvyn run` does: a flow file, or the linear shortcut, and how
/// to run it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// A flow file (the Torvyn runtime's `Torvyn.toml` shape); instead
    /// of --source/--processor/--sink.
    pub flow_file: Option<std::path::PathBuf>,
    /// Which flow of the file (when it has several).
    #[arg(long)]
    pub flow: Option<String>,
    /// The source component (linear shortcut).
    #[arg(long)]
    pub source: Option<String>,
    /// A processor component (repeat for several, in order).
    #[arg(long = "processor")]
    pub processors: Vec<String>,
    /// The sink component (linear shortcut).
    #[arg(long)]
    pub sink: Option<String>,
    /// Config text for `init`: once for every stage, or once per stage
    /// in order (source, processors, sink).
    #[arg(long = "config")]
    pub configs: Vec<String>,
    /// Stop after this many elements.
    #[arg(long)]
    pub count: Option<u64>,
    /// Run this many copies of the flow at once, each a task on a tokio
    /// runtime with one worker per core; prints per-flow and total rates.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub flows: u32,
    /// Print each delivered element, with the sink it reached.
    #[arg(long)]
    pub print: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// WASI: give guests this process's stdin, stdout and stderr.
    #[arg(long)]
    pub inherit_stdio: bool,
    /// WASI: an environment variable guests see (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// WASI: a directory guests see (repeatable; `:ro` for read-only).
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro]")]
    pub dirs: Vec<String>,
    /// Log engine events (poisonings) and node calls to stderr at this
    /// level: error, warn, info, debug or trace.
    #[arg(long)]
    pub log: Option<tracing::Level>,
    /// Flows with connector nodes: end after this many seconds without
    /// an input (batch jobs, tests); default: run until SIGINT/SIGTERM.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub idle_timeout: Option<std::time::Duration>,
    /// Flows with connector nodes: the value of `{partition}` in
    /// connector settings (bind this worker to one partition subject).
    #[arg(long)]
    pub partition: Option<String>,
    /// Flows with connector nodes: share N partitions (`{partition}` =
    /// 0..N-1 in connector settings) among every worker run with the same
    /// flow and N, by leases in a JetStream key-value bucket; a dead
    /// worker's partitions are taken over after the lease TTL.
    #[arg(long, value_name = "N", conflicts_with = "partition",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub partitions: Option<u32>,
    /// With --partitions: the leases' time to live (default 10 s): a dead
    /// worker's partitions move after it; each is renewed every third.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, requires = "partitions")]
    pub lease_ttl: Option<std::time::Duration>,
    /// With --partitions: the leases' bucket, on the server of the flow's
    /// first `nats` node (default `TORVYN_LEASES_` + the flow's name).
    #[arg(long, value_name = "BUCKET", requires = "partitions")]
    pub lease_bucket: Option<String>,
    /// Flows with connector nodes: serve Prometheus metrics at this
    /// address (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Flows with connector nodes: most inputs per batch from each
    /// source (default 100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: Option<u32>,
    /// Flows with connector nodes: most batches whose outputs are sent
    /// and not yet confirmed stored (default 2; 1: one batch at a time).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub batches_in_flight: Option<u32>,
    /// Flow files: run each component project's build first (its
    /// `build_command`, else `cargo component build` with `[build]`).
    #[arg(long)]
    pub build: bool,
    /// Upgrade nodes in place while the flow runs: when a component's
    /// file (or the flow file naming it) changes, or on SIGHUP, the new
    /// version takes over between two elements, with its state.
    #[arg(long)]
    pub watch: bool,
    /// Flows with connector nodes: keep the state of stages exporting
    /// torvyn:state in this directory: saved at SIGINT/SIGTERM (their
    /// inputs then acked), restored at start, removed at the stream's end.
    #[arg(long, value_name = "DIR", conflicts_with = "state_bucket")]
    pub state_dir: Option<std::path::PathBuf>,
    /// Flows with connector nodes: as --state-dir, in this JetStream
    /// key-value bucket on the server of the flow's first `nats` node
    /// (created when missing).
    #[arg(long, value_name = "BUCKET")]
    pub state_bucket: Option<String>,
    /// How to write the report: `json` is one JSON document (with
    /// --print, one JSON line per element before it).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Limits per call.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// `--idle-timeout SECONDS` as a duration.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|e| format!("`{text}` is not a number of seconds: {e}"))?;
    if !(0.0..=1e9).contains(&seconds) {
        return Err(format!("`{text}`: expected 0 to 1e9 seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}
