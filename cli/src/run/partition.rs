//! One partition's flow on a `--partitions` worker: started on a task of
//! its own (its state store opened there too, so a server slow to answer
//! holds up only it), stopped gracefully on a task of its own while the
//! lease loop goes on renewing, and **dropped by itself** the moment its
//! lease's renewal is overdue ([`PartitionLeases::held_until`]): whatever
//! the lease loop is waiting for, a partition this worker may have lost
//! is not run on, so two workers never fold one partition's inputs.
//!
//! [`PartitionLeases::held_until`]: torvyn_engine::connect::nats::PartitionLeases::held_until

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use torvyn_engine::connect::Connectors;
use torvyn_engine::flow::ServeReport;
use torvyn_engine::{
    CompiledComponent, Flow, FlowReport, FlowSpec, WasmtimeEngine, WasmtimeInstance,
};

use super::served::{serve_options, state_options};
use super::watch::Shared;
use super::RunArgs;
use crate::error::CliError;

/// How a partition's flow ended.
pub(super) enum Outcome {
    /// It stopped (asked to, or its sources ended).
    Served(ServeReport),
    /// Its lease's renewal was overdue: dropped mid-batch, its states not
    /// stored, its inputs not acknowledged (they come again to whoever
    /// holds it next, as after a crash).
    Abandoned,
    /// It failed; its nodes' report once it had any.
    Failed(CliError, Option<FlowReport>),
}

/// A partition's flow that ended, for the report.
pub(super) struct Served {
    pub(super) partition: u32,
    pub(super) outcome: Outcome,
    pub(super) bytes: u64,
}

/// A partition's flow running on this worker.
pub(super) struct Running {
    partition: u32,
    stop: watch::Sender<bool>,
    /// When its lease must count as lost unless renewed: the flow is
    /// dropped then, by its own task.
    held_until: watch::Sender<Instant>,
    task: tokio::task::JoinHandle<Served>,
}

impl Running {
    /// Moves its deadline to `until` (its lease was renewed).
    pub(super) fn held_until(&self, until: Instant) {
        self.held_until.send_if_modified(|held| {
            let later = until > *held;
            if later {
                *held = until;
            }
            later
        });
    }

    /// Asks it to stop: its batch in flight finished, its states stored.
    /// Returns at once; [`Running::is_finished`] says when it has.
    pub(super) fn ask_to_stop(&self) {
        let _ = self.stop.send(true);
    }

    pub(super) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Its report, once [`Running::is_finished`] (else waits for it).
    pub(super) async fn ended(self) -> Served {
        let partition = self.partition;
        match self.task.await {
            Ok(served) => served,
            Err(error) => Served {
                partition,
                outcome: Outcome::Failed(
                    CliError::Engine(torvyn_engine::Error::Flow {
                        flow: format!("partition {partition}"),
                        detail: format!("its task ended abnormally: {error}"),
                    }),
                    None,
                ),
                bytes: 0,
            },
        }
    }

    /// Drops it now, mid-batch (its lease is lost: another worker may hold
    /// it already and have restored its stored states, so this one must
    /// neither store its states once more nor acknowledge what it took).
    pub(super) async fn abandon(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Returns once `until`'s instant has passed without a later one replacing
/// it.
async fn overdue(mut until: watch::Receiver<Instant>) {
    loop {
        let deadline = *until.borrow_and_update();
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {
                if *until.borrow() <= deadline {
                    return;
                }
            }
            changed = until.changed() => {
                if changed.is_err() {
                    // No one renews it any more: the last deadline stands.
                    tokio::time::sleep_until(deadline.into()).await;
                    return;
                }
            }
        }
    }
}

/// What this worker runs every partition with: the flow as the file has
/// it (read once, `{partition}` not filled in), its engine and components.
pub(super) struct Partitions<'a> {
    pub(super) args: &'a RunArgs,
    pub(super) spec: FlowSpec,
    pub(super) engine: Arc<WasmtimeEngine>,
    pub(super) components: Shared,
}

impl Partitions<'_> {
    /// Starts partition `partition`'s flow on this thread's task set, to be
    /// dropped at `held_until` unless renewed.
    pub(super) fn start(&self, partition: u32, held_until: Instant) -> Running {
        let partition_text = partition.to_string();
        let mut spec = self.spec.clone();
        spec.substitute("partition", &partition_text);
        let components: BTreeMap<String, CompiledComponent> = self
            .components
            .lock()
            .map(|components| components.clone())
            .unwrap_or_default();
        let (stop, stopped) = watch::channel(false);
        let (held_until, lease) = watch::channel(held_until);
        let mut options = serve_options(self.args, &self.engine, &self.components, stopped);
        let args = self.args.clone();
        let engine = self.engine.clone();
        let print = self.args.print;
        let task = tokio::task::spawn_local(async move {
            let started = Instant::now();
            let mut bytes = 0u64;
            let serve = async {
                options.state = state_options(&args, &spec, Some(&partition_text)).await?;
                let mut flow: Flow<WasmtimeInstance> = Flow::instantiate_connected(
                    &*engine,
                    spec,
                    &components,
                    &Connectors::builtin(),
                )
                .await?;
                let served = flow
                    .serve(options, |sink, element| {
                        bytes += element.payload.len() as u64;
                        if print {
                            println!("[{partition}] {}", crate::output::describe(sink, element));
                        }
                    })
                    .await;
                Ok::<_, CliError>(served.map_err(|error| (error, flow.report(started.elapsed()))))
            };
            // Dropping `serve` mid-batch is what `abandon` does by abort.
            let outcome = tokio::select! {
                served = serve => match served {
                    Ok(Ok(report)) => Outcome::Served(report),
                    Ok(Err((error, report))) => Outcome::Failed(error.into(), Some(report)),
                    Err(error) => Outcome::Failed(error, None),
                },
                () = overdue(lease) => Outcome::Abandoned,
            };
            Served {
                partition,
                outcome,
                bytes,
            }
        });
        Running {
            partition,
            stop,
            held_until,
            task,
        }
    }
}
