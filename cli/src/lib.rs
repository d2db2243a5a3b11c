//! The `torvyn` command-line tool's commands, as a library so the
//! benchmarks (`benches/engine.rs`) and the tests share them.
#![deny(missing_docs)]

pub mod bundled;
pub mod check;
pub mod commands;
mod contract_calls;
pub mod error;
pub mod load;
pub mod metrics;
pub mod output;
pub mod project;
pub mod run;
