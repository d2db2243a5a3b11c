//! `torvyn`: inspect, run, invoke and benchmark WebAssembly stream components.
//!
//! Exit codes: 0 success; 1 the engine or a component failed; 2 bad usage;
//! 3 a component file could not be read.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use torvyn_bench::alloc_counter::CountingAllocator;
use torvyn_cli::commands::{self, LimitArgs};
use torvyn_cli::error::CliError;
use torvyn_cli::output::Format;
use torvyn_cli::run::{self, RunArgs};

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

// Parsed once per process: the size of the `run` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Imports, exports, world match, and whether each export runs typed or dynamic.
    Inspect {
        /// The component.
        component: String,
        /// How to write the report.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Everything `run` would refuse in a flow file, found without running a
    /// stage: the file, each component's path, its compilation, the export
    /// of each node's role, imports nobody serves, connector settings, the
    /// graph. Prints each problem with its place; exit 1 if any.
    Check {
        /// The flow file.
        flow_file: std::path::PathBuf,
        /// Only this flow of the file.
        #[arg(long)]
        flow: Option<String>,
        /// How to write the report.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Runs a flow (from a flow file, or source → processors → sink) and
    /// prints a summary and a per-node report.
    Run(RunArgs),
    /// Calls an export by name with WAVE arguments: `torvyn invoke c.wasm 'add(1, 2)'`.
    Invoke {
        /// The component.
        component: String,
        /// The call, `name(args...)`, args in WAVE.
        call: String,
        /// WASI: an environment variable the guest sees (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// WASI: a directory the guest sees (repeatable; `:ro` for read-only).
        #[arg(long = "dir", value_name = "HOST::GUEST[:ro]")]
        dirs: Vec<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Measures the hot paths and prints ns/call, allocations and ratios.
    Bench(BenchArgs),
    /// Lists the bundled components.
    Bundled,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Not locked for the whole command: a flow with a `stdout` connector writes
    // to it from tokio's blocking threads (a held lock would deadlock them).
    let mut out = std::io::stdout();
    let result = match cli.command {
        Command::Inspect { component, format } => commands::inspect(&component, format, &mut out),
        Command::Check {
            flow_file,
            flow,
            format,
        } => torvyn_cli::check::check(&flow_file, flow.as_deref(), format, &mut out),
        Command::Run(args) => {
            if let Some(level) = args.log {
                // At trace level, each node call's span is printed as it
                // closes, with its time.
                tracing_subscriber::fmt()
                    .with_max_level(level)
                    .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr)
                    .init();
            }
            run::run(&args, &mut out)
        }
        Command::Invoke {
            component,
            call,
            env,
            dirs,
            limits: l,
        } => commands::invoke(
            &component,
            &call,
            &l,
            &commands::WasiArgs { env, dirs },
            &mut out,
        ),
        Command::Bench(args) => bench(&args, &mut out),
        Command::Bundled => torvyn_cli::bundled::BUNDLED
            .iter()
            .try_for_each(|(name, what, _)| writeln!(out, "bundled:{name:<18} {what}"))
            .map_err(CliError::Output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut said = error.to_string();
            eprintln!("error: {said}");
            // Errors keep their causes as sources and often quote them in
            // their message too: a cause is printed when it adds something.
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                let text = inner.to_string();
                if !said.contains(&text) {
                    eprintln!("  caused by: {text}");
                    said.push_str(&text);
                }
                cause = inner.source();
            }
            // A guest's trap: where in the guest, frame by frame.
            if let Some(frames) = error.engine_error().and_then(|e| e.backtrace()) {
                for line in frames.to_string().lines() {
                    eprintln!("  {line}");
                }
            }
            ExitCode::from(error.exit_code() as u8)
        }
    }
}

/// `torvyn bench`'s arguments.
#[derive(clap::Args)]
struct BenchArgs {
    /// Fewer iterations (for CI).
    #[arg(long)]
    quick: bool,
    /// Measures only the operations whose names contain this text (`swap`:
    /// the live-upgrade table), for
    /// longer (e.g. under `perf record`), and prints their rows.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Measures the NATS JetStream pipeline instead (source → Wasm
    /// uppercase → sink beside a bare async-nats loop; starts its own
    /// nats-server).
    #[arg(long, conflicts_with = "only")]
    streams: bool,
    /// With `--only element`: also counts instructions and cache misses
    /// per element under callgrind (needs `valgrind`), for the engine,
    /// the fair floor host and the floor host, with their ratios.
    #[arg(long)]
    counts: bool,
    /// Runs one element row for `--counts` (inside callgrind).
    #[arg(long, hide = true, value_name = "ROW")]
    count_row: Option<String>,
    /// Elements the `--count-row` run counts.
    #[arg(long, hide = true, default_value_t = 2_000)]
    count_elements: u32,
}

fn bench(args: &BenchArgs, out: &mut impl Write) -> Result<(), CliError> {
    if let Some(row) = &args.count_row {
        // One row inside callgrind, for the parent's `--counts`.
        return torvyn_bench::counts::run_counted(row, args.count_elements)
            .map_err(CliError::Bench);
    }
    if args.counts && args.only.as_deref() != Some("element") {
        return Err(CliError::Usage(
            "`--counts` counts the element's rows: use it with `--only element`".into(),
        ));
    }
    let mut report = match &args.only {
        _ if args.streams => torvyn_bench::streams::report(args.quick),
        Some(filter) => torvyn_bench::only(filter, args.quick),
        None => torvyn_bench::report(args.quick),
    };
    if args.counts {
        let exe = std::env::current_exe().map_err(|e| CliError::Bench(e.to_string()))?;
        let child = |row: &str, elements: u32| {
            let mut command = std::process::Command::new(&exe);
            command
                .args(["bench", "--count-row", row, "--count-elements"])
                .arg(elements.to_string());
            command
        };
        report
            .push_str(&torvyn_bench::counts::counts(args.quick, &child).map_err(CliError::Bench)?);
    }
    write!(out, "{report}").map_err(CliError::Output)
}
