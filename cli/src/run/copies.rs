//! `--flows N`: N copies of the flow at once, each a tokio task.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use torvyn_engine::{CompiledComponent, Flow, FlowSpec, WasmtimeEngine};

use super::choose::metered;
use super::runtime::tokio_runtime;
use super::watch;
use super::RunArgs;
use crate::error::CliError;
use crate::output::{
    describe, nodes_of, to_line, write_upgrades, CopyDocument, ElementDocument, Format,
    RunDocument, UpgradeDocument, SCHEMA,
};

/// `--flows N`: N copies of the flow, each a task on a multi-thread tokio
/// runtime, every stage call awaited.
pub(super) fn run_copies(
    args: &RunArgs,
    engine: Arc<WasmtimeEngine>,
    spec: FlowSpec,
    components: &BTreeMap<String, CompiledComponent>,
    locations: &BTreeMap<String, String>,
    worker_threads: Option<usize>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let runtime = tokio_runtime(worker_threads)?;
    let watcher = args
        .watch
        .then(|| watch::start(args, engine.clone(), &spec, locations, None));
    let upgraders = watcher.as_ref().map(watch::Watcher::upgraders);
    let metered = metered(&engine, &spec);
    let started = Instant::now();
    let reports = runtime.block_on(async {
        let mut flows = tokio::task::JoinSet::new();
        for copy in 0..args.flows as usize {
            let (engine, spec, components, count, print) = (
                engine.clone(),
                spec.clone(),
                components.clone(),
                args.count,
                args.print,
            );
            let json = args.format == Format::Json;
            let upgraders = upgraders.clone();
            flows.spawn(async move {
                let report = async {
                    let mut flow = Flow::instantiate_async(&*engine, spec, &components).await?;
                    if let Some(count) = count {
                        flow = flow.limit(count);
                    }
                    if let Some(upgraders) = &upgraders {
                        let _ = upgraders.send(flow.upgrader());
                    }
                    let mut bytes = 0u64;
                    let mut printed = Vec::new();
                    let report = flow
                        .run_async(|sink, element| {
                            bytes += element.payload.len() as u64;
                            if print {
                                printed.push(match json {
                                    true => ElementDocument::line(copy, sink, element),
                                    false => format!("flow {copy} {}", describe(sink, element)),
                                });
                            }
                        })
                        .await?;
                    let upgrades = UpgradeDocument::of(copy, flow.upgrades());
                    Ok::<_, torvyn_engine::Error>((report, bytes, printed, upgrades))
                }
                .await;
                (copy, report)
            });
        }
        let mut reports = Vec::with_capacity(args.flows as usize);
        while let Some(joined) = flows.join_next().await {
            reports
                .push(joined.map_err(|e| CliError::Runtime(format!("a flow task failed: {e}")))?);
        }
        reports.sort_by_key(|(copy, _)| *copy);
        Ok::<_, CliError>(reports)
    })?;
    let not_handed_over = watcher.map(|watcher| watcher.finish().failed);
    let elapsed = started.elapsed();
    let mut reports = reports
        .into_iter()
        .map(|(copy, report)| report.map(|report| (copy, report)))
        .collect::<Result<Vec<_>, _>>()?;
    // With `--print`: every copy's elements, copy by copy, then the counts.
    for (_, (_, _, printed, _)) in &reports {
        for line in printed {
            writeln!(out, "{line}")?;
        }
    }
    let delivered: u64 = reports.iter().map(|(_, (r, ..))| r.delivered()).sum();
    let total_rate = delivered as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    let per_copy: Vec<CopyDocument> = reports
        .iter()
        .map(|(copy, (report, bytes, ..))| CopyDocument {
            copy: *copy,
            delivered: report.delivered(),
            dropped: report.nodes.iter().map(|n| n.dropped).sum(),
            bytes: *bytes,
            elements_per_second: report.delivered() as f64
                / report.elapsed.as_secs_f64().max(f64::EPSILON),
        })
        .collect();
    let upgrades: Vec<UpgradeDocument> = reports
        .iter_mut()
        .flat_map(|(_, (.., upgrades))| std::mem::take(upgrades))
        .collect();
    if args.format == Format::Json {
        let nodes = nodes_of(reports.iter().map(|(_, (report, ..))| report));
        let document = RunDocument {
            kind: "run",
            schema: SCHEMA,
            flow: reports
                .first()
                .map_or_else(String::new, |(_, (r, ..))| r.flow.clone()),
            copies: args.flows as usize,
            delivered,
            dropped: per_copy.iter().map(|c| c.dropped).sum(),
            bytes: per_copy.iter().map(|c| c.bytes).sum(),
            elements_per_second: total_rate,
            fuel: metered.then(|| nodes.iter().map(|n| n.fuel).sum()),
            error: None,
            nodes,
            per_copy,
            upgrades,
        };
        writeln!(out, "{}", to_line(&document))?;
        return Ok(());
    }
    for copy in &per_copy {
        writeln!(
            out,
            "flow {}: elements: {} delivered, {} dropped; bytes: {}; {:.0} elements/s",
            copy.copy, copy.delivered, copy.dropped, copy.bytes, copy.elements_per_second,
        )?;
    }
    writeln!(
        out,
        "total: {} flows, {delivered} elements delivered; {total_rate:.0} elements/s; errors: 0",
        args.flows,
    )?;
    write_upgrades(out, &upgrades, args.flows as usize, not_handed_over)?;
    Ok(())
}
