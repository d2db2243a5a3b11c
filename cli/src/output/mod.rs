//! What the CLI writes: the `--format json` documents (`json.rs`) and the
//! text summaries (`text.rs`).

mod json;
mod text;

pub use json::*;
pub(crate) use text::{describe, write_nodes, write_summary, write_upgrades};
