//! `torvyn bench --streams`, partition leases: how long a killed worker's
//! partitions take to be held by the others (issue 36's target: within the
//! leases' TTL + 2 s). Three workers share 8 partitions through
//! [`PartitionLeases`] on the bench's server; one is killed (its ticking
//! task ended, its leases left to expire) at a different point of its tick
//! each round; the time runs from the kill until the two others hold all 8.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use torvyn_engine::connect::nats::PartitionLeases;
use torvyn_engine::connect::ConnectorSpec;

use super::bare_nats::BenchResult;

const PARTITIONS: u32 = 8;

/// A worker's leases ticked on a task; what it holds, shared.
struct Holder {
    held: Arc<Mutex<BTreeSet<u32>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Holder {
    async fn start(url: &str, bucket: &str, ttl: Duration) -> BenchResult<Holder> {
        let spec = ConnectorSpec::new("nats", [("url", url)]);
        let mut leases = PartitionLeases::open("leases", &spec, bucket, PARTITIONS, ttl)
            .await
            .map_err(|e| e.to_string())?;
        let held = Arc::new(Mutex::new(BTreeSet::new()));
        let shared = held.clone();
        let task = tokio::spawn(async move {
            loop {
                // A failed tick is tried again at the next: the bench's
                // bound below reports a takeover that never comes.
                if let Ok(changes) = leases.tick().await {
                    for &partition in changes.to_release() {
                        let _ = leases.release(partition).await;
                    }
                }
                if let Ok(mut shared) = shared.lock() {
                    *shared = leases.held().collect();
                }
                tokio::time::sleep(leases.tick_every()).await;
            }
        });
        Ok(Holder { held, task })
    }

    fn held(&self) -> BTreeSet<u32> {
        self.held
            .lock()
            .map(|held| held.clone())
            .unwrap_or_default()
    }
}

/// Waits (bounded: 30 s) until `holders` hold every partition between
/// them; the time it took.
async fn until_all_held(holders: &[&Holder]) -> BenchResult<Duration> {
    let started = Instant::now();
    loop {
        let all: BTreeSet<u32> = holders.iter().flat_map(|h| h.held()).collect();
        if all.len() == PARTITIONS as usize {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("partitions not all held after 30 s: {all:?}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The report's table: a killed worker's partitions taken over, the worst
/// of 2 kills (`quick`) or 5, against the target.
pub(crate) async fn report(url: &str, quick: bool) -> BenchResult<String> {
    let ttl = Duration::from_secs(2);
    let times = takeovers(url, ttl, if quick { 2 } else { 5 }).await?;
    let worst = times.iter().max().copied().unwrap_or_default();
    let each: Vec<String> = times
        .iter()
        .map(|time| format!("{:.2}", time.as_secs_f64()))
        .collect();
    Ok(format!(
        "\n| partition leases: 8 partitions, 3 workers, TTL {:.0} s | s |\n|---|---|\n\
         | a killed worker's partitions all held again, worst of {} kills (each: {}) | {:.2} |\n\
         | target: within the TTL + 2 s | {} |\n",
        ttl.as_secs_f64(),
        times.len(),
        each.join(", "),
        worst.as_secs_f64(),
        if worst <= ttl + Duration::from_secs(2) {
            "met"
        } else {
            "not met"
        },
    ))
}

/// The takeover time of each of `rounds` kills, with leases of `ttl`.
async fn takeovers(url: &str, ttl: Duration, rounds: u32) -> BenchResult<Vec<Duration>> {
    let mut times = Vec::new();
    for round in 0..rounds {
        let bucket = format!("TORVYN_BENCH_LEASES_{round}");
        let victim = Holder::start(url, &bucket, ttl).await?;
        let others = [
            Holder::start(url, &bucket, ttl).await?,
            Holder::start(url, &bucket, ttl).await?,
        ];
        until_all_held(&[&victim, &others[0], &others[1]]).await?;
        // Settled shares, then the kill a different share of a tick later
        // each round.
        tokio::time::sleep(ttl + ttl / 3 * round / rounds.max(1)).await;
        victim.task.abort();
        times.push(until_all_held(&[&others[0], &others[1]]).await?);
        for holder in others {
            holder.task.abort();
        }
    }
    Ok(times)
}
