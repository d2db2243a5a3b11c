//! Partition leases (`torvyn_engine::connect::nats::PartitionLeases`)
//! against a real nats-server: workers ticking on tasks of their own share
//! 8 partitions out evenly, one killed mid-run has its partitions taken by
//! the others after its leases' TTL, new workers take their share from the
//! others (released, not fought over), and one leaving gracefully hands its
//! partitions on at once. Throughout, sampled every 20 ms, no partition is
//! held by two workers at once.
//!
//! Every wait is bounded; the times are printed, not asserted (they are the
//! benches' to judge).

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::nats::*;
use torvyn_engine::connect::nats::PartitionLeases;
use torvyn_engine::connect::ConnectorSpec;

const PARTITIONS: u32 = 8;
const TTL: Duration = Duration::from_millis(1_500);
const BUCKET: &str = "TORVYN_LEASES_test";

/// A worker's leases ticked on a task: its held partitions shared for the
/// test to read; over its share, it releases at once (it has no work to
/// stop).
struct Holder {
    held: Arc<Mutex<BTreeSet<u32>>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Holder {
    async fn start(url: &str) -> Holder {
        let spec = ConnectorSpec::new("nats", [("url", url)]);
        let mut leases = PartitionLeases::open("leases", &spec, BUCKET, PARTITIONS, TTL)
            .await
            .expect("leases opened");
        let held = Arc::new(Mutex::new(BTreeSet::new()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let shared = held.clone();
        let task = tokio::spawn(async move {
            loop {
                let changes = leases.tick().await.expect("a tick");
                for &partition in changes.to_release() {
                    // Not held any more before the lease is deleted: the
                    // work stops first.
                    shared.lock().unwrap().remove(&partition);
                    leases.release(partition).await.expect("released");
                }
                *shared.lock().unwrap() = leases.held().collect();
                tokio::select! {
                    _ = tokio::time::sleep(leases.tick_every()) => {}
                    _ = stopped.changed() => {
                        shared.lock().unwrap().clear();
                        leases.release_all().await.expect("released all");
                        return;
                    }
                }
            }
        });
        Holder { held, stop, task }
    }

    fn held(&self) -> BTreeSet<u32> {
        self.held.lock().unwrap().clone()
    }

    /// Killed: the task ends where it is, its leases left to expire.
    fn kill(self) {
        self.task.abort();
        self.held.lock().unwrap().clear();
    }

    /// Stopped: its leases released.
    async fn leave(self) {
        self.stop.send(true).expect("the holder is running");
        self.task.await.expect("the holder ended");
    }
}

/// Each holder's partition count, sorted, once every partition is held;
/// `None` while some is not.
fn shares(holders: &[&Holder]) -> Option<Vec<usize>> {
    let sets: Vec<BTreeSet<u32>> = holders.iter().map(|h| h.held()).collect();
    let all: BTreeSet<u32> = sets.iter().flatten().copied().collect();
    if all.len() != PARTITIONS as usize {
        return None;
    }
    let mut counts: Vec<usize> = sets.iter().map(BTreeSet::len).collect();
    counts.sort();
    Some(counts)
}

/// Fails when a partition is in two holders' sets.
fn assert_no_partition_held_twice(holders: &[&Holder], when: &str) {
    let sets: Vec<BTreeSet<u32>> = holders.iter().map(|h| h.held()).collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<u32> = sets.iter().flatten().copied().collect();
    assert_eq!(
        total,
        union.len(),
        "{when}: a partition held twice: {sets:?}"
    );
}

/// Waits (bounded: 20 s) until the holders share every partition as
/// `want`, checking meanwhile that none is held twice; the time it took.
async fn until_shared(holders: &[&Holder], want: &[usize], when: &str) -> Duration {
    let started = Instant::now();
    loop {
        assert_no_partition_held_twice(holders, when);
        if shares(holders).as_deref() == Some(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{when}: the partitions were not shared as {want:?} in 20 s: {:?}",
            holders.iter().map(|h| h.held()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn partitions_are_shared_out_and_move_when_workers_die_come_and_go() {
    let server = Server::start(&[]);
    let url = server.url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let a = Holder::start(&url).await;
        let b = Holder::start(&url).await;
        let c = Holder::start(&url).await;
        let took = until_shared(&[&a, &b, &c], &[2, 3, 3], "three workers").await;
        println!("three workers share 8 partitions after {took:?}");

        // One killed: its partitions move to the others after the TTL.
        let dead = a.held();
        a.kill();
        let took = until_shared(&[&b, &c], &[4, 4], "a worker killed").await;
        println!("a killed worker's partitions {dead:?} taken over after {took:?} (TTL {TTL:?})");
        assert!(
            took >= TTL / 2,
            "taken over after {took:?}: before the TTL ({TTL:?}) could have run out"
        );

        // Two more: the others release the partitions over their share.
        let d = Holder::start(&url).await;
        let e = Holder::start(&url).await;
        let took = until_shared(&[&b, &c, &d, &e], &[2, 2, 2, 2], "two workers added").await;
        println!("two new workers have their share after {took:?}");

        // One leaves: its leases are released, not left to expire.
        b.leave().await;
        let took = until_shared(&[&c, &d, &e], &[2, 3, 3], "a worker left").await;
        println!("a leaving worker's partitions taken over after {took:?}");
        for holder in [c, d, e] {
            holder.leave().await;
        }
    });
}
