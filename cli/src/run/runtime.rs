//! The tokio runtimes `torvyn run` makes, their failure in one place's words.

use crate::error::CliError;

/// A multi-thread tokio runtime with the flow file's `[runtime]
/// worker_threads`, else one worker per core.
pub(crate) fn tokio_runtime(
    worker_threads: Option<usize>,
) -> Result<tokio::runtime::Runtime, CliError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = worker_threads.filter(|&threads| threads > 0) {
        builder.worker_threads(threads);
    }
    built(&mut builder)
}

/// The runtime `builder` makes, its failure in the CLI's words.
pub(crate) fn built(
    builder: &mut tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, CliError> {
    builder
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the tokio runtime: {e}")))
}
