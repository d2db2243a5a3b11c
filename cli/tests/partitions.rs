//! `torvyn run FLOW --partitions 8`: workers share a flow's partitions by
//! leases (each partition a subject `pin.P` read by its own consumer); one
//! is SIGKILLed mid-run and a new one started; the killed worker's
//! partitions are taken over after the lease TTL, and every input's output
//! is stored exactly once, every input acknowledged.
//!
//! Bounded waits throughout; times printed, not asserted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::nats::*;

const PARTITIONS: u32 = 8;
const PER_PARTITION: usize = 250;

/// `pin.{partition}` (consumer `upper-{partition}`, acks waited for 3 s) →
/// uppercase → `pout`.
fn partitioned_flow(dir: &tempfile::TempDir, server: &Server) -> std::path::PathBuf {
    nats_flow(
        dir.path(),
        "flow.toml",
        &server.url(),
        "bundled:uppercase",
        PROCESSOR,
        "stream = \"PIN\"\nsubject = \"pin.{partition}\"\nconsumer = \"upper-{partition}\"\n\
         create = true\nack_wait_ms = 3000",
        "stream = \"POUT\"\nsubject = \"pout\"\ncreate = true",
    )
}

fn inputs(round: usize) -> Vec<(String, Vec<String>)> {
    (0..PARTITIONS)
        .map(|p| {
            let payloads = (0..PER_PARTITION)
                .map(|i| format!("round-{round}-p{p}-msg-{i:04}"))
                .collect();
            (format!("pin.{p}"), payloads)
        })
        .collect()
}

/// Each held partition's holder, by the pid in its worker id
/// (`HOST-PID-RANDOM`), from the lease bucket.
async fn holders(js: &async_nats::jetstream::Context) -> BTreeMap<u32, u32> {
    let Ok(bucket) = js.get_key_value("TORVYN_LEASES_main").await else {
        return BTreeMap::new();
    };
    let mut held = BTreeMap::new();
    for p in 0..PARTITIONS {
        let Ok(Some(entry)) = bucket.entry(format!("lease.{p}")).await else {
            continue;
        };
        if entry.operation != async_nats::jetstream::kv::Operation::Put {
            continue;
        }
        let id = String::from_utf8_lossy(&entry.value).into_owned();
        if let Some(pid) = id.rsplit('-').nth(1).and_then(|pid| pid.parse().ok()) {
            held.insert(p, pid);
        }
    }
    held
}

fn pid(worker: &Worker) -> u32 {
    worker.0.as_ref().expect("running").id()
}

/// The partitions a worker's report names (`partition P:` lines).
fn partitions_served(stdout: &str) -> BTreeSet<u32> {
    stdout
        .lines()
        .filter_map(|line| {
            line.strip_prefix("partition ")?
                .strip_suffix(':')?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn partitions_move_from_a_killed_worker_and_every_output_is_stored_once() {
    let setup = Setup::new(&[], None);
    setup.rt.block_on(make_stream(&setup.js, "PIN", &["pin.*"]));
    let flow = partitioned_flow(&setup.dir, &setup.server);
    let args = ["--partitions", "8", "--lease-ttl", "2"];
    let mut wanted = Vec::new();
    for (subject, payloads) in inputs(0) {
        setup.rt.block_on(publish(&setup.js, &subject, &payloads));
        wanted.extend(payloads.iter().map(|p| p.to_uppercase()));
    }
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&flow, &args)).collect();
    // Shares settled (every partition held, by all three) with work under
    // way: the worker holding the most is killed mid-run.
    let pids: BTreeSet<u32> = workers.iter().map(pid).collect();
    setup.rt.block_on(until(
        "three workers holding every partition, outputs flowing",
        Duration::from_secs(60),
        || async {
            let held = holders(&setup.js).await;
            let by: BTreeSet<u32> = held.values().copied().collect();
            held.len() == PARTITIONS as usize && by == pids && count(&setup.js, "POUT").await >= 600
        },
    ));
    let held = setup.rt.block_on(holders(&setup.js));
    let victim = (0..workers.len())
        .max_by_key(|&i| held.values().filter(|&&p| p == pid(&workers[i])).count())
        .expect("three workers");
    let victim_pid = pid(&workers[victim]);
    let its: Vec<u32> = held
        .iter()
        .filter(|(_, &p)| p == victim_pid)
        .map(|(partition, _)| *partition)
        .collect();
    let killed_at = Instant::now();
    kill(workers.remove(victim));
    workers.push(worker(&flow, &args));
    setup.rt.block_on(until(
        "the killed worker's partitions held by others",
        Duration::from_secs(30),
        || async {
            let held = holders(&setup.js).await;
            its.iter()
                .all(|p| held.get(p).is_some_and(|&holder| holder != victim_pid))
        },
    ));
    println!(
        "the killed worker's partitions {its:?} held by others {:?} after the kill (TTL 2 s)",
        killed_at.elapsed()
    );
    for (subject, payloads) in inputs(1) {
        setup.rt.block_on(publish(&setup.js, &subject, &payloads));
        wanted.extend(payloads.iter().map(|p| p.to_uppercase()));
    }
    let total = wanted.len() as u64;
    setup.rt.block_on(until(
        "every output stored",
        Duration::from_secs(120),
        || async { count(&setup.js, "POUT").await >= total },
    ));
    println!(
        "all {total} outputs stored {:?} after the kill",
        killed_at.elapsed()
    );
    // Inputs the killed worker held come again after the ack wait (3 s),
    // their outputs dropped as copies.
    setup.rt.block_on(until(
        "every input acknowledged",
        Duration::from_secs(60),
        || async {
            for p in 0..PARTITIONS {
                let consumer = format!("upper-{p}");
                let settled = try_consumer_info(&setup.js, "PIN", &consumer)
                    .await
                    .is_some_and(|info| info.num_ack_pending == 0 && info.num_pending == 0);
                if !settled {
                    return false;
                }
            }
            true
        },
    ));
    setup
        .rt
        .block_on(assert_exactly_once(&setup.js, "POUT", &wanted));
    // The three left served every partition between them.
    let mut served = BTreeSet::new();
    for worker in workers {
        let stdout = stop(worker);
        let mine = partitions_served(&stdout);
        println!("a worker served partitions {mine:?}");
        assert!(!mine.is_empty(), "a worker served nothing:\n{stdout}");
        served.extend(mine);
    }
    assert_eq!(served, (0..PARTITIONS).collect::<BTreeSet<u32>>());
}

#[test]
fn a_flow_whose_settings_name_no_partition_is_refused_with_partitions() {
    let setup = Setup::new(&[], None);
    let flow = in_out_flow(
        &setup.dir,
        &setup.server,
        "bundled:uppercase",
        PROCESSOR,
        "upper",
        "",
        "",
    );
    let output = finish(
        worker(&flow, &["--partitions", "4"]),
        Duration::from_secs(60),
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("--partitions: no connector setting") && stderr.contains("{partition}"),
        "{stderr}"
    );
}
