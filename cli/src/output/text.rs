//! The text summaries `torvyn run` prints: the per-node and per-connector
//! tables, one element per line, the stop, the upgrades.

use std::io::Write;
use std::time::Duration;

use torvyn_engine::flow::{ConnectorReport, ServeReport, Stop};
use torvyn_engine::{Element, FlowReport, Interface};

use super::UpgradeDocument;
use crate::error::CliError;

/// With `--watch`: what the watcher handed over and what each upgrade did.
pub(crate) fn write_upgrades(
    out: &mut dyn Write,
    upgrades: &[UpgradeDocument],
    copies: usize,
    not_handed_over: Option<u64>,
) -> std::io::Result<()> {
    let Some(not_handed_over) = not_handed_over else {
        return Ok(());
    };
    let refused = upgrades.iter().filter(|u| u.failed.is_some()).count();
    writeln!(
        out,
        "upgrades: {} applied, {} refused by the flow, {} not handed over (see the watch lines)",
        upgrades.len() - refused,
        refused,
        not_handed_over
    )?;
    for upgrade in upgrades {
        writeln!(out, "{}", upgrade.text(copies))?;
    }
    Ok(())
}

/// One printed element: `[sink] #sequence content-type "payload"`.
pub(crate) fn describe(sink: &str, element: &Element) -> String {
    let payload = String::from_utf8_lossy(&element.payload);
    let shown: String = payload.chars().take(120).collect();
    let more = if payload.chars().count() > 120 {
        "…"
    } else {
        ""
    };
    format!(
        "[{sink}] #{:<5} {:<12} {shown:?}{more}",
        element.meta.sequence, element.meta.content_type
    )
}

/// The per-node report.
pub(crate) fn write_nodes(out: &mut dyn Write, report: &FlowReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:<10} {:>9} {:>9} {:>8} {:>6} {:>12} {:>10} {:>10}",
        "node", "role", "in", "out", "dropped", "errors", "fuel", "p50", "p99"
    )?;
    for node in &report.nodes {
        writeln!(
            out,
            "{:<16} {:<10} {:>9} {:>9} {:>8} {:>6} {:>12} {:>10} {:>10}",
            node.name,
            node.role.role(),
            node.elements_in,
            node.elements_out,
            node.dropped,
            node.errors,
            node.fuel,
            format_duration(node.p50()),
            format_duration(node.p99()),
        )?;
    }
    for node in report
        .nodes
        .iter()
        .filter(|n| n.role == Interface::Windowed)
    {
        let watermark = node
            .watermark_ms
            .map_or_else(|| "none yet".to_string(), |ms| format!("{ms} ms"));
        writeln!(
            out,
            "windowed {}: {} late, watermark {watermark}",
            node.name, node.late
        )?;
    }
    Ok(())
}

fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    match nanos {
        0 => "-".into(),
        n if n < 10_000 => format!("{n} ns"),
        n if n < 10_000_000 => format!("{} µs", n / 1_000),
        n => format!("{} ms", n / 1_000_000),
    }
}

fn stop_text(stop: Stop) -> &'static str {
    match stop {
        Stop::Ended => "every source ended",
        Stop::Idle => "idle timeout",
        Stop::Limit => "--count reached",
        Stop::Shutdown => "signal: in-flight batch finished, held inputs handed back",
        _ => "stopped",
    }
}

pub(crate) fn write_summary(
    out: &mut dyn Write,
    served: &ServeReport,
    bytes: u64,
) -> Result<(), CliError> {
    let report = &served.flow;
    let taken: u64 = report
        .nodes
        .iter()
        .filter(|n| n.role == torvyn_engine::Interface::Source)
        .map(|n| n.elements_out)
        .sum();
    let dropped: u64 = report.nodes.iter().map(|n| n.dropped).sum();
    writeln!(out, "stopped: {}", stop_text(served.stop))?;
    writeln!(
        out,
        "elements: {taken} in, {} delivered, {dropped} dropped; failed inputs: {}; instances \
         replaced: {}; bytes: {bytes}; {:.0} elements/s",
        report.delivered(),
        served.failed_inputs,
        served.respawned,
        report.delivered() as f64 / report.elapsed.as_secs_f64().max(f64::EPSILON),
    )?;
    if served.states_restored + served.states_saved > 0 {
        writeln!(
            out,
            "state: {} restored at start, {} saved at stop",
            served.states_restored, served.states_saved
        )?;
    }
    if served.already_counted > 0 {
        writeln!(
            out,
            "state: {} inputs came again that a restored state had counted (acknowledged, not counted twice)",
            served.already_counted
        )?;
    }
    write_nodes(out, report)?;
    write_connectors(out, &served.connectors)?;
    Ok(())
}

/// The per-connector report.
fn write_connectors(out: &mut dyn Write, connectors: &[ConnectorReport]) -> std::io::Result<()> {
    if connectors.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{:<16} {:<8} {:<6} {:>9} {:>9} {:>12} {:>13} {:>10} {:>9} {:>11} {:>13}",
        "connector",
        "kind",
        "role",
        "acked",
        "stored",
        "redelivered",
        "dead-lettered",
        "duplicates",
        "pending",
        "ack-pending",
        "lost-requests"
    )?;
    let known = |value: Option<u64>| value.map_or_else(|| "-".to_string(), |v| v.to_string());
    for connector in connectors {
        let stats = &connector.stats;
        writeln!(
            out,
            "{:<16} {:<8} {:<6} {:>9} {:>9} {:>12} {:>13} {:>10} {:>9} {:>11} {:>13}",
            connector.node,
            connector.kind,
            connector.role.role(),
            stats.acked,
            stats.stored,
            stats.redeliveries,
            stats.dead_lettered,
            stats.duplicates,
            known(stats.pending),
            known(stats.ack_pending),
            stats.lost_requests,
        )?;
    }
    Ok(())
}
