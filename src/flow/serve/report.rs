//! The connectors' part of a service's report.

use super::ConnectorReport;
use crate::flow::graph::Graph;
use crate::flow::slot::Slot;
use crate::flow::NodeSpec;

pub(in crate::flow) fn connector_reports<'a, I: 'a>(
    nodes: impl Iterator<Item = (&'a NodeSpec, &'a Slot<I>)>,
    order: &[usize],
) -> Vec<ConnectorReport> {
    let mut reports: Vec<(usize, ConnectorReport)> = nodes
        .enumerate()
        .filter_map(|(index, (node, slot))| {
            let stats = match slot {
                Slot::Source(source) => source.stats(),
                Slot::Sink(sink) => sink.stats(),
                Slot::Component(_) => return None,
            };
            Some((
                order.iter().position(|&i| i == index).unwrap_or(index),
                ConnectorReport {
                    node: node.name.clone(),
                    kind: node
                        .connector
                        .as_ref()
                        .map_or_else(String::new, |c| c.kind.clone()),
                    role: node.role,
                    stats,
                },
            ))
        })
        .collect();
    reports.sort_by_key(|(position, _)| *position);
    reports.into_iter().map(|(_, report)| report).collect()
}

/// The connectors' reports of a run's graph.
pub(super) fn graph_connectors<I>(graph: &Graph<'_, I>) -> Vec<ConnectorReport> {
    connector_reports(
        graph.spec.nodes.iter().zip(
            graph
                .stages
                .iter()
                .map(|stage| &*stage.as_ref().expect("no stage is taken out here").slot),
        ),
        &graph.plan.order,
    )
}
