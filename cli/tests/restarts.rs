//! The server restarted under running workers, with the restart landing
//! on work in flight: a pull request open on an empty stream, a batch whose
//! publish acks are outstanding, a state being stored at a stop. Each test
//! restarts the server many times (`ROUNDS`), moving the moment of the
//! restart each round so that it falls in every phase, and checks each
//! round's outputs arrive within a bound of the restart (the ack wait plus
//! a few seconds): a worker that waited forever on a request the old
//! server took with it fails here. At the end every output is stored
//! exactly once, no input is left unacknowledged, and the workers' reports
//! show the fault hit them (requests lost and sent again).
//!
//! Each test reports its longest stall (restart → the round's last output)
//! in `target/tmp/restarts.txt`; `.ci/run` shows it.

mod common;

use std::time::{Duration, Instant};

use common::nats::*;

/// Restarts per test.
const ROUNDS: usize = 20;
/// The consumer's ack wait in these tests.
const ACK_WAIT: Duration = Duration::from_secs(2);
/// How long after a restart a round's outputs may take: a delivery lost
/// with the old server comes back after the ack wait; the rest is the
/// reconnection and a loaded machine.
const RECOVERY: Duration = Duration::from_secs(2 + 6);

/// Waits (up to `RECOVERY`) until `OUT` holds `total` outputs and every
/// input is acknowledged: a delivery lost with the old server comes back
/// after the ack wait, and its outputs are stored once.
fn settled_within(setup: &Setup, round: usize, consumer: &str, total: u64) {
    setup.rt.block_on(until(
        &format!("round {round}: {total} outputs and every input acked within {RECOVERY:?} of the restart"),
        RECOVERY,
        || async {
            count(&setup.js, "OUT").await >= total
                && try_consumer_info(&setup.js, "IN", consumer)
                    .await
                    .is_some_and(|info| info.num_ack_pending == 0 && info.num_pending == 0)
        },
    ));
}

fn assert_all_acked(setup: &Setup, consumer: &str) {
    let info = setup.rt.block_on(consumer_info(&setup.js, "IN", consumer));
    assert_eq!(
        (info.num_ack_pending, info.num_pending),
        (0, 0),
        "every input acknowledged"
    );
}

/// The test's client after a restart (its old connection went with the server).
fn reconnect(setup: &mut Setup) {
    setup.js = setup.rt.block_on(context(&setup.server.url(), None));
}

/// (a) Crashed and restarted while the worker's pull request waits on an empty stream
/// (the worker idles with one open most of the time; the restart lands at
/// a different point of its wait each round). The round's inputs,
/// published after the restart, come out within `RECOVERY`.
#[test]
fn a_restart_while_a_pull_waits_loses_nothing() {
    const CONSUMER: &str = "idle";
    let mut setup = Setup::new(&[], None);
    let flow = in_out_flow(
        &setup.dir,
        &setup.server,
        "bundled:uppercase",
        PROCESSOR,
        CONSUMER,
        // A long wait, as JetStream clients use (theirs default to 30 s):
        // a lost request must not be waited out.
        &format!(
            "ack_wait_ms = {}\nfetch_wait_ms = 5000",
            ACK_WAIT.as_millis()
        ),
        "",
    );
    let running = worker(&flow, &["--log", "warn"]);
    let mut wanted = Vec::new();
    let mut longest = Duration::ZERO;
    for round in 0..ROUNDS {
        // The worker is up and pulling: the server holds its request.
        setup.rt.block_on(until(
            "a pull request waiting at the server",
            Duration::from_secs(20),
            || async {
                try_consumer_info(&setup.js, "IN", CONSUMER)
                    .await
                    .is_some_and(|info| info.num_waiting > 0)
            },
        ));
        std::thread::sleep(Duration::from_millis((round as u64 * 131) % 1000));
        // A crash (SIGKILL): a server shutting down gracefully answers its
        // waiting pulls; a crashed one takes them with it. Nothing else is
        // in flight, so no acknowledged write can be lost with it.
        setup.server.restart();
        let restarted = Instant::now();
        reconnect(&mut setup);
        let inputs: Vec<String> = (0..20).map(|i| format!("a{round:02}-{i:02}")).collect();
        setup.rt.block_on(publish_once(&setup.js, "in", &inputs));
        wanted.extend(inputs.iter().map(|p| p.to_uppercase()));
        let total = wanted.len() as u64;
        settled_within(&setup, round, CONSUMER, total);
        longest = longest.max(restarted.elapsed());
    }
    let stdout = stop(running);
    setup
        .rt
        .block_on(assert_exactly_once(&setup.js, "OUT", &wanted));
    assert_all_acked(&setup, CONSUMER);
    let lost = connector_count(&stdout, "input", "lost-requests");
    assert!(lost > 0, "no pull was lost to a restart:\n{stdout}");
    common::report(
        "restarts.txt",
        &format!(
            "longest stall (restart with a pull waiting): {} ms; pulls lost and sent again: {lost}",
            longest.as_millis()
        ),
    );
}

/// (b) Restarted while a batch is in flight: inputs are published, and the
/// restart lands when a different share of their outputs is in each round
/// (a fetch open, outputs being published, their acks outstanding, inputs
/// being acknowledged). The round's outputs are all in within `RECOVERY`.
#[test]
fn a_restart_while_a_batch_is_in_flight_loses_nothing() {
    const CONSUMER: &str = "busy";
    let mut setup = Setup::new(&[], None);
    let flow = in_out_flow(
        &setup.dir,
        &setup.server,
        "bundled:uppercase",
        PROCESSOR,
        CONSUMER,
        &format!("ack_wait_ms = {}\nbatch = 50", ACK_WAIT.as_millis()),
        "",
    );
    let running = worker(&flow, &["--log", "warn"]);
    let mut wanted = Vec::new();
    let mut longest = Duration::ZERO;
    let mut hit_in_flight = 0;
    for round in 0..ROUNDS {
        let before = wanted.len() as u64;
        let inputs: Vec<String> = (0..500).map(|i| format!("b{round:02}-{i:03}")).collect();
        wanted.extend(inputs.iter().map(|p| p.to_uppercase()));
        let total = wanted.len() as u64;
        // Published in the background, so the worker is busy meanwhile.
        let js = setup.js.clone();
        let publishing = setup
            .rt
            .spawn(async move { publish_once(&js, "in", &inputs).await });
        // Restart once this round's outputs reach a share moving with the
        // round: from the first few to almost all.
        let share = before + 10 + (round as u64 * 23) % 480;
        setup.rt.block_on(until(
            &format!("round {round}: {share} outputs before the restart"),
            Duration::from_secs(30),
            || async { count(&setup.js, "OUT").await >= share },
        ));
        let at_restart = setup.rt.block_on(count(&setup.js, "OUT"));
        if at_restart < total {
            hit_in_flight += 1;
        }
        setup.server.restart_gracefully();
        let restarted = Instant::now();
        // The rest of the round's inputs are published once it is back.
        setup.rt.block_on(publishing).expect("publisher task");
        reconnect(&mut setup);
        settled_within(&setup, round, CONSUMER, total);
        longest = longest.max(restarted.elapsed());
    }
    let stdout = stop(running);
    setup
        .rt
        .block_on(assert_exactly_once(&setup.js, "OUT", &wanted));
    assert_all_acked(&setup, CONSUMER);
    assert!(
        hit_in_flight >= ROUNDS / 2,
        "only {hit_in_flight} of {ROUNDS} restarts landed with outputs still to come"
    );
    // A request the restart hit and that was sent again: a pull or a
    // batch of publishes the server lost, or a flush of the outputs that
    // failed with the connection and was retried (which of the two a
    // restart meets depends on where in the request it lands).
    let lost = connector_count(&stdout, "input", "lost-requests")
        + connector_count(&stdout, "output", "lost-requests");
    let retried_flushes = table_count(&stdout, "node", "output", "errors");
    assert!(
        lost + retried_flushes > 0,
        "no request in flight was hit by a restart:\n{stdout}"
    );
    common::report(
        "restarts.txt",
        &format!(
            "longest stall (restart with a batch in flight): {} ms; {hit_in_flight} of {ROUNDS} \
         restarts with outputs still to come; requests lost and sent again: {lost}; flushes \
         retried: {retried_flushes}",
            longest.as_millis()
        ),
    );
}

/// (c) Restarted while a worker told to stop stores its aggregator's state
/// in a key-value bucket (`--state-bucket`): in half the rounds the server
/// is down when the worker is told to stop and comes back after a delay
/// moving with the round (the put waits for it); in the others the restart
/// follows the SIGTERM by a delay moving with the round, landing around the
/// put and the acks' confirmation. The put lost with the server is sent again; the inputs
/// the state absorbed are acknowledged once the server confirms it; the
/// next worker restores the count. The one aggregate at the end counts every
/// input exactly once.
#[test]
fn a_restart_while_a_state_is_stored_counts_every_input_once() {
    let mut setup = Setup::new(&[], None);
    let flow = in_out_flow(
        &setup.dir,
        &setup.server,
        "bundled:counter",
        AGGREGATOR,
        "count",
        &format!(
            "ack_wait_ms = {}\nanswer_timeout_ms = 1000",
            ACK_WAIT.as_millis()
        ),
        "",
    );
    let rounds = ROUNDS / 2;
    let mut published = 0u64;
    let mut retried = 0;
    for round in 0..rounds {
        let inputs: Vec<String> = (0..10).map(|i| format!("c{round:02}-{i}")).collect();
        setup.rt.block_on(publish_once(&setup.js, "in", &inputs));
        published += 10;
        let running = worker(&flow, &["--state-bucket", "STATE", "--log", "warn"]);
        setup.rt.block_on(until(
            &format!("round {round}: its 10 inputs held by the aggregator"),
            Duration::from_secs(30),
            || async {
                try_consumer_info(&setup.js, "IN", "count")
                    .await
                    .is_some_and(|info| info.num_ack_pending == 10 && info.num_pending == 0)
            },
        ));
        if round % 2 == 0 {
            // The server goes first: the stopping worker's put waits for
            // it, from well inside its answer timeout (1 s) to past it.
            setup.server.stop_gracefully();
            signal(&running, libc::SIGTERM);
            std::thread::sleep(Duration::from_millis(300 + round as u64 * 120));
            setup.server.launch();
        } else {
            // The worker goes first: the restart lands around its put and
            // the acks' confirmation, a little later each round.
            signal(&running, libc::SIGTERM);
            std::thread::sleep(Duration::from_millis(round as u64 * 2));
            setup.server.restart_gracefully();
        }
        let output = finish(running, RECOVERY);
        let (stdout, stderr) = text(&output);
        assert!(
            output.status.success(),
            "round {round}:\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("1 saved at stop"),
            "round {round}: the state was not stored:\n{stdout}\n{stderr}"
        );
        // The put or an ack's confirmation met the restart and was sent again.
        if stderr.contains("storing a state failed; retrying")
            || stderr.contains("acknowledgement not confirmed; sending it again")
        {
            retried += 1;
        }
        reconnect(&mut setup);
        // Read from a server that may have started a moment ago: its
        // consumer's state is given a second to be read back from disk.
        // An ack that was lost stays pending (no worker runs to take the
        // message again), so waiting hides none.
        let settled = setup.rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(1);
            loop {
                let info = try_consumer_info(&setup.js, "IN", "count").await;
                let acked = info
                    .as_ref()
                    .is_some_and(|info| (info.num_ack_pending, info.num_pending) == (0, 0));
                if acked || Instant::now() > deadline {
                    return (acked, info);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        assert!(
            settled.0,
            "round {round}: every input acknowledged:\n{stdout}\n{stderr}\n{:?}",
            settled.1
        );
    }
    let last = worker(&flow, &["--state-bucket", "STATE", "--idle-timeout", "2"]);
    let output = finish(last, Duration::from_secs(30));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let outputs = setup.rt.block_on(read_stream(&setup.js, "OUT"));
    let payloads: Vec<&str> = outputs.iter().map(|o| o.payload.as_str()).collect();
    assert_eq!(
        payloads,
        [published.to_string()],
        "one total over every worker, each input counted once"
    );
    assert_all_acked(&setup, "count");
    assert!(
        retried > 0,
        "no put or ack confirmation was sent again: the restarts missed the store"
    );
    common::report(
        "restarts.txt",
        &format!(
            "stops storing a state with a restart: {rounds}; {retried} sent the put or an ack's \
         confirmation again"
        ),
    );
}
