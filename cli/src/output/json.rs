//! `--format json`: the machine-readable shape of `run`, `inspect` and
//! `check`. Every document is one JSON object on one line with `"kind"`
//! (`run`, `element`, `inspect`, `check`) and `"schema": 1`; a field is
//! never removed or changes meaning within a schema number (docs/src/cli.md's
//! "Machine-readable output" lists them).

use serde::Serialize;
use torvyn_engine::{Element, FlowReport};

/// How a command writes its report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for people (the default).
    #[default]
    Text,
    /// One JSON document (and with `run --print`, one JSON line per
    /// element before it).
    Json,
}

/// The schema number of every document.
pub const SCHEMA: u32 = 1;

/// `run`'s document.
#[derive(Debug, Serialize)]
pub struct RunDocument {
    /// Always `run`.
    pub kind: &'static str,
    /// [`SCHEMA`].
    pub schema: u32,
    /// The flow's name.
    pub flow: String,
    /// Copies run at once (`--flows`).
    pub copies: usize,
    /// Elements delivered to sinks, over all copies.
    pub delivered: u64,
    /// Elements dropped by filters and processors, over all copies.
    pub dropped: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Delivered elements per second of the run.
    pub elements_per_second: f64,
    /// Fuel used, when metered; `null` when not.
    pub fuel: Option<u64>,
    /// The error that ended the run, `null` when it succeeded.
    pub error: Option<String>,
    /// Per node (summed over copies).
    pub nodes: Vec<NodeDocument>,
    /// Per copy (one entry without `--flows`).
    pub per_copy: Vec<CopyDocument>,
    /// Every live upgrade taken by a copy (`--watch`), in order.
    pub upgrades: Vec<UpgradeDocument>,
}

/// One live upgrade at a node of one copy.
#[derive(Debug, Serialize)]
pub struct UpgradeDocument {
    /// The copy (0 without `--flows`).
    pub copy: usize,
    /// The node.
    pub node: String,
    /// Elements the node had taken in when the new version took over.
    pub after_inputs: u64,
    /// `state` (saved and restored), `flushed` (an aggregator without
    /// state), or `nothing`.
    pub carried: &'static str,
    /// Bytes of state carried (0 unless `carried` is `state`).
    pub state_bytes: usize,
    /// Why the old version kept serving; `null` when the upgrade took over.
    pub failed: Option<String>,
}

impl UpgradeDocument {
    /// The outcomes of one copy's upgrades.
    pub fn of(
        copy: usize,
        outcomes: &[torvyn_engine::flow::UpgradeOutcome],
    ) -> Vec<UpgradeDocument> {
        use torvyn_engine::flow::Carried;
        outcomes
            .iter()
            .map(|o| UpgradeDocument {
                copy,
                node: o.node.clone(),
                after_inputs: o.after_inputs,
                carried: match o.carried {
                    Carried::State(_) => "state",
                    Carried::Flushed => "flushed",
                    Carried::Nothing => "nothing",
                    _ => "other",
                },
                state_bytes: match o.carried {
                    Carried::State(bytes) => bytes,
                    _ => 0,
                },
                failed: o.failed.clone(),
            })
            .collect()
    }

    /// The text line of this upgrade (the summary's); `copies` > 1 names
    /// the copy.
    pub fn text(&self, copies: usize) -> String {
        let copy = match copies {
            0 | 1 => String::new(),
            _ => format!("flow {} ", self.copy),
        };
        match &self.failed {
            Some(why) => format!(
                "upgrade: {copy}node `{}` refused after {} inputs: {why}",
                self.node, self.after_inputs
            ),
            None => format!(
                "upgrade: {copy}node `{}` after {} inputs; carried: {}",
                self.node,
                self.after_inputs,
                match self.carried {
                    "state" => format!("state ({} bytes)", self.state_bytes),
                    other => other.to_string(),
                }
            ),
        }
    }
}

/// One node's row.
#[derive(Debug, Serialize)]
pub struct NodeDocument {
    /// The node's name.
    pub name: String,
    /// Its role (`source`, `processor`, ...).
    pub role: &'static str,
    /// Elements in.
    pub elements_in: u64,
    /// Elements out.
    pub elements_out: u64,
    /// Elements dropped.
    pub dropped: u64,
    /// Failed calls.
    pub errors: u64,
    /// Fuel used (0 when unmetered).
    pub fuel: u64,
    /// Times its instance was replaced by a fresh one (recycling).
    pub recycled: u64,
    /// A windowed node's late elements (0 for other roles).
    pub late: u64,
    /// A windowed node's watermark, ms of event time; `null` when it has
    /// none (or the report sums several copies).
    pub watermark_ms: Option<i64>,
    /// Median call time in nanoseconds; `null` when calls were not timed.
    pub p50_ns: Option<u64>,
    /// 99th percentile call time in nanoseconds; `null` when not timed.
    pub p99_ns: Option<u64>,
}

/// One copy's totals.
#[derive(Debug, Serialize)]
pub struct CopyDocument {
    /// The copy's index (0 without `--flows`).
    pub copy: usize,
    /// Elements delivered.
    pub delivered: u64,
    /// Elements dropped.
    pub dropped: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Delivered elements per second of this copy.
    pub elements_per_second: f64,
}

/// One delivered element (`run --print --format json`).
#[derive(Debug, Serialize)]
pub struct ElementDocument {
    /// Always `element`.
    pub kind: &'static str,
    /// [`SCHEMA`].
    pub schema: u32,
    /// The copy it ran in (0 without `--flows`).
    pub copy: usize,
    /// The sink node it reached.
    pub sink: String,
    /// Its sequence number at that sink.
    pub sequence: u64,
    /// Its content type.
    pub content_type: String,
    /// Its payload as text (invalid UTF-8 replaced).
    pub payload: String,
}

impl ElementDocument {
    /// The line for `element` delivered at `sink` in copy `copy`.
    pub fn line(copy: usize, sink: &str, element: &Element) -> String {
        to_line(&ElementDocument {
            kind: "element",
            schema: SCHEMA,
            copy,
            sink: sink.to_string(),
            sequence: element.meta.sequence,
            content_type: element.meta.content_type.clone(),
            payload: String::from_utf8_lossy(&element.payload).into_owned(),
        })
    }
}

/// Node rows of reports of the same flow, summed node by node.
pub fn nodes_of<'r>(reports: impl IntoIterator<Item = &'r FlowReport>) -> Vec<NodeDocument> {
    let mut nodes: Vec<NodeDocument> = Vec::new();
    let mut copies = 0;
    for report in reports {
        copies += 1;
        for (i, node) in report.nodes.iter().enumerate() {
            if nodes.len() <= i {
                let timed = |d: std::time::Duration| {
                    (d > std::time::Duration::ZERO).then_some(d.as_nanos() as u64)
                };
                nodes.push(NodeDocument {
                    name: node.name.clone(),
                    role: node.role.role(),
                    elements_in: 0,
                    elements_out: 0,
                    dropped: 0,
                    errors: 0,
                    fuel: 0,
                    recycled: 0,
                    late: 0,
                    watermark_ms: node.watermark_ms,
                    p50_ns: timed(node.p50()),
                    p99_ns: timed(node.p99()),
                });
            }
            let row = &mut nodes[i];
            row.elements_in += node.elements_in;
            row.elements_out += node.elements_out;
            row.dropped += node.dropped;
            row.errors += node.errors;
            row.fuel += node.fuel;
            row.recycled += node.recycled;
            row.late += node.late;
        }
    }
    // Percentiles of one copy do not describe several.
    if copies > 1 {
        for row in &mut nodes {
            row.p50_ns = None;
            row.p99_ns = None;
            row.watermark_ms = None;
        }
    }
    nodes
}

/// `inspect`'s document.
#[derive(Debug, Serialize)]
pub struct InspectDocument {
    /// Always `inspect`.
    pub kind: &'static str,
    /// [`SCHEMA`].
    pub schema: u32,
    /// The component's name.
    pub component: String,
    /// The SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its imports and who serves each.
    pub imports: Vec<ImportDocument>,
    /// Its exports and how each is called.
    pub exports: Vec<ExportDocument>,
    /// The contract world it matches (`torvyn:streaming/data-source@0.1.0`),
    /// `null` if none.
    pub world: Option<String>,
}

/// One import.
#[derive(Debug, Serialize)]
pub struct ImportDocument {
    /// The import's name.
    pub name: String,
    /// `contract`, `wasi`, `served-as`, `custom` or `missing`.
    pub provider: &'static str,
    /// For `served-as`: the contract version serving it.
    pub served_as: Option<String>,
}

/// One export.
#[derive(Debug, Serialize)]
pub struct ExportDocument {
    /// The export's name.
    pub name: String,
    /// The contract role it plays, `null` if none.
    pub role: Option<&'static str>,
    /// `typed`, `dynamic` or `by-name` (callable only by `torvyn invoke`).
    pub path: &'static str,
    /// Why it takes that path (for `dynamic` and `by-name`).
    pub reason: Option<String>,
}

/// `check`'s document.
#[derive(Debug, Serialize)]
pub struct CheckDocument {
    /// Always `check`.
    pub kind: &'static str,
    /// [`SCHEMA`].
    pub schema: u32,
    /// The flow file.
    pub file: String,
    /// Whether nothing was found wrong.
    pub ok: bool,
    /// Each problem with its place.
    pub problems: Vec<ProblemDocument>,
    /// Each component node checked.
    pub nodes: Vec<CheckedNodeDocument>,
}

/// A problem `check` found.
#[derive(Debug, Serialize)]
pub struct ProblemDocument {
    /// Where: `file`, `flow NAME`, `flow NAME, node NODE`, `component NAME`.
    pub place: String,
    /// What is wrong.
    pub problem: String,
}

/// A node `check` looked at.
#[derive(Debug, Serialize)]
pub struct CheckedNodeDocument {
    /// Its flow.
    pub flow: String,
    /// The node.
    pub node: String,
    /// Its role.
    pub role: &'static str,
    /// Its component (`connector:KIND` for a connector).
    pub component: String,
    /// The file its component is loaded from, `null` when not found.
    pub file: Option<String>,
    /// How its role is called: `typed`, `dynamic`, `connector`, or `null`
    /// when it cannot be.
    pub path: Option<&'static str>,
}

/// `value` as one line of JSON.
pub fn to_line<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail.
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
