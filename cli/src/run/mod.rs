//! `torvyn run`: a flow from a flow file, or the linear shortcut
//! (`--source`, `--processor`..., `--sink`), on the sync driver or as N
//! concurrent copies on tokio, or as a service when it has connector
//! nodes; prints a summary, a per-node report and, with `--print`, every
//! delivered element.
//!
//! Here: the arguments in `args.rs`; which flow, engine and components in
//! `choose.rs`; one run in `one.rs`; `--flows N` copies in `copies.rs`;
//! connector flows as a service in `served.rs`; `--partitions N` shared
//! out by leases in `partitioned.rs` (one partition's flow in
//! `partition.rs`); `--watch` in `watch.rs`;
//! the tokio runtimes in `runtime.rs`.

mod args;
mod choose;
mod copies;
mod one;
mod partition;
mod partitioned;
mod runtime;
mod served;
mod watch;

pub use args::{parse_seconds, RunArgs};
pub use one::run;
