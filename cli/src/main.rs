//! `torvyn`: inspect, run, invoke and benchmark WebAssembly stream components.
//!
//! Exit codes: 0 success; 1 the engine or a component failed; 2 bad usage;
//! 3 a component file could not be read.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use torvyn_cli::alloc_counter::CountingAllocator;
use torvyn_cli::commands::{self, CliError, LimitArgs, RunArgs};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Inspect, run, invoke and benchmark WebAssembly stream components.
///
/// A component is a path to a `.wasm` file or `bundled:<name>` (see
/// `torvyn bundled`).
#[derive(Parser)]
#[command(
    name = "torvyn",
    version,
    after_help = "Exit codes: 0 success, 1 engine or component failure, 2 bad usage, 3 unreadable component file."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone, Default)]
struct Limits {
    /// Fuel per call (turns fuel metering on).
    #[arg(long)]
    fuel: Option<u64>,
    /// Wall-clock deadline per call, in milliseconds (default 5000).
    #[arg(long)]
    deadline_ms: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Imports, exports, world match, and whether each export runs typed or dynamic.
    Inspect {
        /// The component.
        component: String,
    },
    /// Runs source → processors → sink and prints a summary.
    Run {
        /// The source component.
        #[arg(long)]
        source: String,
        /// A processor component (repeat for several, in order).
        #[arg(long = "processor")]
        processors: Vec<String>,
        /// The sink component.
        #[arg(long)]
        sink: String,
        /// Config text given to every stage's `init`.
        #[arg(long, default_value = "")]
        config: String,
        /// Stop after this many elements.
        #[arg(long)]
        count: Option<u64>,
        /// Run this many copies of the flow at once, each a task on a tokio
        /// runtime with one worker per core; prints per-flow and total rates.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        flows: u32,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        limits: Limits,
    },
    /// Calls an export by name with WAVE arguments: `torvyn invoke c.wasm 'add(1, 2)'`.
    Invoke {
        /// The component.
        component: String,
        /// The call, `name(args...)`, args in WAVE.
        call: String,
        #[command(flatten)]
        limits: Limits,
    },
    /// Measures the hot paths and prints ns/call, allocations and ratios.
    Bench {
        /// Fewer iterations (for CI).
        #[arg(long)]
        quick: bool,
    },
    /// Lists the bundled components.
    Bundled,
}

fn limits(limits: Limits) -> LimitArgs {
    LimitArgs {
        fuel: limits.fuel,
        deadline_ms: limits.deadline_ms,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Inspect { component } => commands::inspect(&component, &mut out),
        Command::Run {
            source,
            processors,
            sink,
            config,
            count,
            flows,
            quiet,
            limits: l,
        } => commands::run(
            &RunArgs {
                source,
                processors,
                sink,
                config,
                count,
                flows: flows as usize,
                progress: !quiet,
                limits: limits(l),
            },
            &mut out,
        ),
        Command::Invoke {
            component,
            call,
            limits: l,
        } => commands::invoke(&component, &call, &limits(l), &mut out),
        Command::Bench { quick } => {
            write!(out, "{}", torvyn_cli::bench::report(quick)).map_err(CliError::Output)
        }
        Command::Bundled => torvyn_cli::bundled::BUNDLED
            .iter()
            .try_for_each(|(name, what, _)| writeln!(out, "bundled:{name:<18} {what}"))
            .map_err(CliError::Output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                eprintln!("  caused by: {inner}");
                cause = inner.source();
            }
            ExitCode::from(error.exit_code() as u8)
        }
    }
}
