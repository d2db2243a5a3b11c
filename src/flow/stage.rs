//! A node's stage during a run: its slot and report borrowed together,
//! and one pull from a source, numbered and stamped as it enters the flow.

use super::report::NodeReport;
use super::slot::Slot;
use crate::calls::Calls;
use crate::error::Result;
use crate::invoker::Element;

/// A node's instance (or connector) and report, borrowed for one run.
pub(super) struct Stage<'a, I> {
    pub(super) slot: &'a mut Slot<I>,
    pub(super) report: &'a mut NodeReport,
}

/// One pull, numbered in the source's pull order.
pub(super) async fn pull_one<I, C: Calls<I>>(stage: &mut Stage<'_, I>) -> Result<Option<Element>> {
    let started = stage.report.latencies.start();
    let pulled = C::pull(stage.slot.instance()).await;
    let report = &mut *stage.report;
    report.latencies.stop(started);
    let pulled = pulled.inspect_err(|_| report.errors += 1)?;
    Ok(pulled.map(|element| enter(report, element)))
}

/// `element` entering the flow at a source whose counts are `report`:
/// numbered in the source's order, stamped with the time it entered unless
/// its source gave it a time of its own (its event time), counted in and
/// out (a source passes on all it takes). Component sources' pulls and
/// connectors' fetches both go through here.
pub(super) fn enter(report: &mut NodeReport, mut element: Element) -> Element {
    element.meta.sequence = report.elements_in;
    if element.meta.timestamp_ns == 0 {
        element.meta.timestamp_ns = now_ns();
    }
    report.elements_in += 1;
    report.elements_out += 1;
    element
}

/// Nanoseconds since the Unix epoch (the runtime's element timestamps).
fn now_ns() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}
