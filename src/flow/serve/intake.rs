//! The service's intake: inputs fetched from the source connectors (or
//! pulled from component sources), each numbered as it enters the flow.

use crate::calls::AsyncCalls;
use crate::connect::{Fetched, SourceConnector};
use crate::error::{Error, Result};
use crate::flow::graph::Graph;
use crate::flow::slot::Slot;
use crate::flow::stage::{enter, pull_one};
use crate::flow::FlowSpec;
use crate::invoker::{AsyncComponentInvoker, Element};

/// A connector's fetch, given up when a stop is asked for meanwhile (a
/// source waiting on stdin or an idle broker must not hold the shutdown).
async fn fetch_or_stop(
    connector: &mut Box<dyn SourceConnector>,
    max: usize,
    shutdown: &Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<Fetched> {
    let Some(shutdown) = shutdown else {
        return connector.fetch(max).await;
    };
    let mut shutdown = shutdown.clone();
    // (`wait_for`'s guard is not `Send`: only whether it came is kept.)
    let asked = async move { shutdown.wait_for(|stop| *stop).await.is_ok() };
    tokio::select! {
        fetched = connector.fetch(max) => fetched,
        asked = asked => if asked {
            Ok(Fetched::Idle)
        } else {
            // Nobody can ask any more: only the fetch can end this wait.
            connector.fetch(max).await
        },
    }
}

/// Up to `batch` inputs from every source not ended, each numbered as it
/// enters the flow: (source, element, connector handle, origin).
pub(super) async fn take_batch<I: AsyncComponentInvoker>(
    graph: &mut Graph<'_, I>,
    sources: &[usize],
    batch: usize,
    ended: &mut [bool],
    shutdown: &Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<Vec<(usize, Element, Option<u64>, String)>> {
    let mut inputs = Vec::new();
    for &source in sources {
        if ended[source] || graph.budget == 0 {
            continue;
        }
        let want = batch.min(usize::try_from(graph.budget).unwrap_or(usize::MAX));
        let flow: &FlowSpec = graph.spec;
        let name = &flow.nodes[source].name;
        let Some(stage) = &mut graph.stages[source] else {
            continue;
        };
        match &mut *stage.slot {
            Slot::Source(connector) => match fetch_or_stop(connector, want, shutdown).await? {
                Fetched::Inputs(fetched) if fetched.len() > want => {
                    // More than asked for: taking them would pass the
                    // flow's limit, dropping them would lose them.
                    return Err(Error::Flow {
                        flow: flow.name.clone(),
                        detail: format!(
                            "source connector `{name}` returned {} inputs when asked for at most {want}",
                            fetched.len()
                        ),
                    });
                }
                Fetched::Inputs(fetched) => {
                    for input in fetched {
                        let element = enter(stage.report, input.element);
                        graph.budget -= 1;
                        inputs.push((source, element, Some(input.handle), input.origin));
                    }
                }
                Fetched::Idle => {}
                Fetched::Ended => ended[source] = true,
            },
            Slot::Component(_) => {
                for _ in 0..want {
                    match pull_one::<I, AsyncCalls>(stage).await? {
                        Some(element) => {
                            graph.budget -= 1;
                            let origin = format!("{}.{name}:{}", flow.name, element.meta.sequence);
                            inputs.push((source, element, None, origin));
                        }
                        None => {
                            ended[source] = true;
                            break;
                        }
                    }
                }
            }
            Slot::Sink(_) => unreachable!("validation: a sink is no source"),
        }
    }
    Ok(inputs)
}

pub(super) fn source_connector<'g, I: AsyncComponentInvoker>(
    graph: &'g mut Graph<'_, I>,
    source: usize,
) -> Result<&'g mut Box<dyn SourceConnector>> {
    match graph.stages[source].as_mut().map(|stage| &mut *stage.slot) {
        Some(Slot::Source(connector)) => Ok(connector),
        _ => Err(Error::Flow {
            flow: graph.spec.name.clone(),
            detail: format!(
                "node `{}` is no source connector",
                graph.spec.nodes[source].name
            ),
        }),
    }
}
