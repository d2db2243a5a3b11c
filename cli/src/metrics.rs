//! `torvyn run --metrics ADDR`: Prometheus text exposition of a served
//! flow, per node and per connector, encoded by `prometheus-client` and
//! served over plain HTTP/1.1 on `ADDR` (any path answers).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `torvyn_node_elements_in_total` | flow, node, role | elements that reached the node |
//! | `torvyn_node_elements_out_total` | flow, node, role | elements it sent on (a sink: accepted) |
//! | `torvyn_node_dropped_total` | flow, node, role | elements it dropped |
//! | `torvyn_node_errors_total` | flow, node, role | calls that failed |
//! | `torvyn_node_upgrades_total` | flow, node, role | live upgrades that took over (`--watch`) |
//! | `torvyn_node_upgrades_refused_total` | flow, node, role | live upgrades refused; the old version kept serving |
//! | `torvyn_node_recycled_total` | flow, node, role | instances replaced before they could fail (`recycle_after_elements`, `recycle_at_memory_percent`) |
//! | `torvyn_node_call_seconds` | flow, node, role | histogram of its call times |
//! | `torvyn_source_pending` | flow, node | messages the broker still has for the consumer |
//! | `torvyn_source_ack_pending` | flow, node | delivered, not yet acknowledged |
//! | `torvyn_source_redeliveries_total` | flow, node | messages received that were delivered before |
//! | `torvyn_source_dead_lettered_total` | flow, node | messages set aside after `max_deliver` failures |
//! | `torvyn_sink_stored_total` | flow, node | outputs stored |
//! | `torvyn_sink_duplicates_total` | flow, node | outputs the server already had (same `Nats-Msg-Id`) |
//! | `torvyn_connector_lost_requests_total` | flow, node | requests the broker lost (a pull, a batch of publishes) and that were sent again |
//! | `torvyn_engine_instances` | | component instances alive in the process (stores not yet dropped) |
//! | `torvyn_engine_guest_buffer_bytes` | | buffer bytes the process's guests hold (charged to their budgets) |
//! | `process_resident_memory_bytes` | | the process's resident memory (Linux) |
//! | `process_open_fds` | | the process's open file descriptors (Linux) |
//!
//! The flows' numbers are refreshed after every batch (the driver hands
//! over its report), so a scrape costs the flow nothing; the engine's and
//! the process's are read when scraped, so an idle worker shows them as
//! they are (what a leak would show: they are what a soak watches).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use torvyn_engine::flow::ConnectorReport;
use torvyn_engine::{FlowReport, Interface, WasmtimeEngine};

type Labels = Vec<(String, String)>;

fn call_histogram() -> Histogram {
    // 1 µs to ~4 s, ×4 a bucket.
    Histogram::new(exponential_buckets(1e-6, 4.0, 12))
}

/// The metrics of one process, fed by the flow's batch reports.
pub struct Metrics {
    registry: Registry,
    elements_in: Family<Labels, Counter>,
    elements_out: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    upgrades: Family<Labels, Counter>,
    upgrades_refused: Family<Labels, Counter>,
    recycled: Family<Labels, Counter>,
    call_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    pending: Family<Labels, Gauge>,
    ack_pending: Family<Labels, Gauge>,
    redeliveries: Family<Labels, Counter>,
    dead_lettered: Family<Labels, Counter>,
    stored: Family<Labels, Counter>,
    duplicates: Family<Labels, Counter>,
    lost_requests: Family<Labels, Counter>,
    resources: Resources,
    /// What was already counted, per (node, metric): reports carry totals.
    seen: HashMap<(String, &'static str), u64>,
    seen_calls: HashMap<(String, u128), u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family registered, none with a value yet.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let mut counter = |name: &str, help: &str| {
            let family = Family::<Labels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let elements_in = counter("torvyn_node_elements_in", "Elements that reached the node");
        let elements_out = counter(
            "torvyn_node_elements_out",
            "Elements the node sent on (a sink: accepted)",
        );
        let dropped = counter("torvyn_node_dropped", "Elements the node dropped");
        let errors = counter("torvyn_node_errors", "Calls of the node that failed");
        let upgrades = counter(
            "torvyn_node_upgrades",
            "Live upgrades that took over at the node",
        );
        let upgrades_refused = counter(
            "torvyn_node_upgrades_refused",
            "Live upgrades refused at the node (the old version kept serving)",
        );
        let recycled = counter(
            "torvyn_node_recycled",
            "Instances of the node replaced by a fresh one before they could fail",
        );
        let redeliveries = counter(
            "torvyn_source_redeliveries",
            "Messages received that had been delivered before",
        );
        let dead_lettered = counter(
            "torvyn_source_dead_lettered",
            "Messages set aside after failing max_deliver times",
        );
        let stored = counter("torvyn_sink_stored", "Outputs stored by the sink");
        let duplicates = counter(
            "torvyn_sink_duplicates",
            "Outputs the server already had (same Nats-Msg-Id): not stored again",
        );
        let lost_requests = counter(
            "torvyn_connector_lost_requests",
            "Requests the broker lost (sent before the connection broke, or unanswered) and that were sent again",
        );
        let call_seconds =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(call_histogram);
        registry.register(
            "torvyn_node_call_seconds",
            "Call times of the node's stage calls",
            call_seconds.clone(),
        );
        let pending = Family::<Labels, Gauge>::default();
        registry.register(
            "torvyn_source_pending",
            "Messages the broker still has for the consumer",
            pending.clone(),
        );
        let ack_pending = Family::<Labels, Gauge>::default();
        registry.register(
            "torvyn_source_ack_pending",
            "Messages delivered and not yet acknowledged",
            ack_pending.clone(),
        );
        let resources = Resources::register(&mut registry);
        Metrics {
            registry,
            elements_in,
            elements_out,
            dropped,
            errors,
            upgrades,
            upgrades_refused,
            recycled,
            call_seconds,
            pending,
            ack_pending,
            redeliveries,
            dead_lettered,
            stored,
            duplicates,
            lost_requests,
            resources,
            seen: HashMap::new(),
            seen_calls: HashMap::new(),
        }
    }

    /// Shows `engine`'s live instances and guest buffer bytes, read at
    /// each scrape.
    pub fn watch_engine(&mut self, engine: Arc<WasmtimeEngine>) {
        self.resources.engine = Some(engine);
    }

    /// Adds what the report says beyond what was counted before.
    fn advance(
        &mut self,
        family: &Family<Labels, Counter>,
        labels: &Labels,
        key: (String, &'static str),
        total: u64,
    ) {
        // Created even at 0: a series that exists from the start is one a
        // dashboard can rate.
        let counter = family.get_or_create(labels);
        let seen = self.seen.entry(key).or_default();
        if total > *seen {
            counter.inc_by(total - *seen);
            *seen = total;
        }
    }

    /// Takes in a batch's report.
    pub fn update(&mut self, report: &FlowReport, connectors: &[ConnectorReport]) {
        for node in &report.nodes {
            let labels: Labels = vec![
                ("flow".into(), report.flow.clone()),
                ("node".into(), node.name.clone()),
                ("role".into(), node.role.role().into()),
            ];
            let name = || node.name.clone();
            let families = [
                (self.elements_in.clone(), "in", node.elements_in),
                (self.elements_out.clone(), "out", node.elements_out),
                (self.dropped.clone(), "dropped", node.dropped),
                (self.errors.clone(), "errors", node.errors),
                (self.upgrades.clone(), "upgrades", node.upgrades),
                (
                    self.upgrades_refused.clone(),
                    "upgrades_refused",
                    node.upgrades_refused,
                ),
                (self.recycled.clone(), "recycled", node.recycled),
            ];
            for (family, metric, total) in families {
                self.advance(&family, &labels, (name(), metric), total);
            }
            let histogram = self.call_seconds.get_or_create(&labels);
            for (upper, count) in node.call_times() {
                let seen = self
                    .seen_calls
                    .entry((name(), upper.as_nanos()))
                    .or_default();
                for _ in *seen..count {
                    histogram.observe(upper.as_secs_f64());
                }
                *seen = count.max(*seen);
            }
        }
        for connector in connectors {
            let labels: Labels = vec![
                ("flow".into(), report.flow.clone()),
                ("node".into(), connector.node.clone()),
            ];
            let stats = &connector.stats;
            let name = || connector.node.clone();
            let lost = self.lost_requests.clone();
            self.advance(&lost, &labels, (name(), "lost"), stats.lost_requests);
            if connector.role == Interface::Source {
                if let Some(pending) = stats.pending {
                    self.pending
                        .get_or_create(&labels)
                        .set(i64::try_from(pending).unwrap_or(i64::MAX));
                }
                if let Some(ack_pending) = stats.ack_pending {
                    self.ack_pending
                        .get_or_create(&labels)
                        .set(i64::try_from(ack_pending).unwrap_or(i64::MAX));
                }
                let (redeliveries, dead) = (self.redeliveries.clone(), self.dead_lettered.clone());
                self.advance(
                    &redeliveries,
                    &labels,
                    (name(), "redeliveries"),
                    stats.redeliveries,
                );
                self.advance(&dead, &labels, (name(), "dead"), stats.dead_lettered);
            } else {
                let (stored, duplicates) = (self.stored.clone(), self.duplicates.clone());
                self.advance(&stored, &labels, (name(), "stored"), stats.stored);
                self.advance(
                    &duplicates,
                    &labels,
                    (name(), "duplicates"),
                    stats.duplicates,
                );
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn text(&self) -> String {
        self.resources.read();
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// What the process holds, read when scraped.
struct Resources {
    engine: Option<Arc<WasmtimeEngine>>,
    instances: Gauge,
    guest_buffer_bytes: Gauge,
    resident_bytes: Gauge,
    open_fds: Gauge,
}

impl Resources {
    fn register(registry: &mut Registry) -> Resources {
        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        Resources {
            engine: None,
            instances: gauge(
                "torvyn_engine_instances",
                "Component instances alive in the process",
            ),
            guest_buffer_bytes: gauge(
                "torvyn_engine_guest_buffer_bytes",
                "Buffer bytes the process's guests hold",
            ),
            resident_bytes: gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
            ),
            open_fds: gauge("process_open_fds", "Number of open file descriptors"),
        }
    }

    fn read(&self) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        if let Some(engine) = &self.engine {
            let totals = engine.totals();
            self.instances.set(clamp(totals.live_instances()));
            self.guest_buffer_bytes
                .set(clamp(totals.guest_buffer_bytes()));
        }
        if let Some(bytes) = resident_bytes() {
            self.resident_bytes.set(clamp(bytes));
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            // The folder's own handle is one of them, open while counted.
            self.open_fds
                .set(clamp(entries.count().saturating_sub(1) as u64));
        }
    }
}

/// `VmRSS` of `/proc/self/status` (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Serves `metrics` on `listener` until the task is aborted: every request
/// (any method, any path) gets the current exposition.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Mutex<Metrics>>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // Read the request head (bounded); its content does not matter.
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            let body = metrics.lock().map(|m| m.text()).unwrap_or_default();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; \
                 charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
