//! `torvyn run`: a flow from a flow file, or the linear shortcut
//! (`--source`, `--processor`..., `--sink`), on the sync driver or as N
//! concurrent copies on tokio; prints a summary, a per-node report and,
//! with `--print`, every delivered element.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use torvyn_engine::Flow;

use super::choose::{compile_all, engine, flow_of, metered, Chosen};
use super::copies::run_copies;
use super::partitioned::run_partitioned;
use super::served::{run_served, Service};
use super::watch;
use super::RunArgs;
use crate::error::CliError;
use crate::output::{
    describe, nodes_of, to_line, write_nodes, write_upgrades, CopyDocument, ElementDocument,
    Format, RunDocument, UpgradeDocument, SCHEMA,
};

/// `torvyn run`.
pub fn run(args: &RunArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let chosen = flow_of(args)?;
    let worker_threads = chosen.worker_threads();
    let Chosen {
        spec,
        locations,
        file,
    } = chosen;
    let engine = engine(args, file.as_ref())?;
    let connected = spec.nodes.iter().any(|node| node.connector.is_some());
    if connected {
        if args.format == Format::Json {
            return Err(CliError::Usage(
                "--format json is for flows of components; a flow with connectors reports \
                 through --metrics (Prometheus) and its summary lines"
                    .into(),
            ));
        }
        if args.flows > 1 {
            return Err(CliError::Usage(
                "--flows is for flows of components; to share a stream's work, run more \
                 processes on the same consumer"
                    .into(),
            ));
        }
        let service = Service::start(worker_threads)?;
        let components = compile_all(&engine, &spec, &locations)?;
        if let Some(partitions) = args.partitions {
            if args.watch
                || args.metrics.is_some()
                || args.idle_timeout.is_some()
                || args.count.is_some()
            {
                return Err(CliError::Usage(
                    "--partitions runs until SIGINT/SIGTERM, without --watch, --metrics, \
                     --idle-timeout or --count (not yet: each partition is a flow of its own)"
                        .into(),
                ));
            }
            return run_partitioned(args, partitions, service, engine, spec, components, out);
        }
        return run_served(args, service, engine, spec, components, &locations, out);
    }
    let components = compile_all(&engine, &spec, &locations)?;
    if args.partition.is_some()
        || args.partitions.is_some()
        || args.metrics.is_some()
        || args.idle_timeout.is_some()
    {
        return Err(CliError::Usage(
            "--partition, --partitions, --metrics and --idle-timeout are for flows with \
             connector nodes"
                .into(),
        ));
    }
    if args.state_dir.is_some() || args.state_bucket.is_some() {
        return Err(CliError::Usage(
            "--state-dir and --state-bucket are for flows with connector nodes: a flow of \
             components alone runs its sources from their start every time"
                .into(),
        ));
    }
    if args.flows > 1 {
        return run_copies(
            args,
            Arc::new(engine),
            spec,
            &components,
            &locations,
            worker_threads,
            out,
        );
    }
    let metered = metered(&engine, &spec);
    let json = args.format == Format::Json;
    let engine = Arc::new(engine);
    let watcher = args
        .watch
        .then(|| watch::start(args, engine.clone(), &spec, &locations, None));
    let mut flow = Flow::instantiate(&*engine, spec, &components)?;
    if let Some(count) = args.count {
        flow = flow.limit(count);
    }
    if let Some(watcher) = &watcher {
        let _ = watcher.upgraders().send(flow.upgrader());
    }
    let bar = (!args.quiet && !json).then(|| progress_bar(args.count));
    let mut bytes = 0u64;
    let mut printed = Vec::new();
    let started = Instant::now();
    let result = flow.run(|sink, element| {
        bytes += element.payload.len() as u64;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        if args.print {
            printed.push(match json {
                true => ElementDocument::line(0, sink, element),
                false => describe(sink, element),
            });
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let not_handed_over = watcher.map(|watcher| watcher.finish().failed);
    for line in &printed {
        writeln!(out, "{line}")?;
    }
    let upgrades = UpgradeDocument::of(0, flow.upgrades());
    let report = flow.report(started.elapsed());
    let dropped: u64 = report.nodes.iter().map(|n| n.dropped).sum();
    let fuel: u64 = report.nodes.iter().map(|n| n.fuel).sum();
    let rate = report.delivered() as f64 / report.elapsed.as_secs_f64().max(f64::EPSILON);
    if json {
        let document = RunDocument {
            kind: "run",
            schema: SCHEMA,
            flow: report.flow.clone(),
            copies: 1,
            delivered: report.delivered(),
            dropped,
            bytes,
            elements_per_second: rate,
            fuel: metered.then_some(fuel),
            error: result.as_ref().err().map(ToString::to_string),
            nodes: nodes_of([&report]),
            per_copy: vec![CopyDocument {
                copy: 0,
                delivered: report.delivered(),
                dropped,
                bytes,
                elements_per_second: rate,
            }],
            upgrades,
        };
        writeln!(out, "{}", to_line(&document))?;
        return result.map(drop).map_err(Into::into);
    }
    if let Err(error) = result {
        // What ran before the failure is still worth seeing.
        write_nodes(out, &report)?;
        write_upgrades(&mut std::io::stderr(), &upgrades, 1, not_handed_over)?;
        return Err(error.into());
    }
    writeln!(
        out,
        "elements: {} delivered, {dropped} dropped; bytes: {bytes}; {rate:.0} elements/s; fuel: {}; errors: 0",
        report.delivered(),
        if metered {
            fuel.to_string()
        } else {
            "not metered".into()
        },
    )?;
    write_nodes(out, &report)?;
    write_upgrades(out, &upgrades, 1, not_handed_over)?;
    Ok(())
}

fn progress_bar(count: Option<u64>) -> indicatif::ProgressBar {
    let bar = match count {
        Some(count) => indicatif::ProgressBar::new(count),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos} elements ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
