//! The delivery rules of `Flow::serve`, checked with connectors an embedder
//! writes (in memory, every call logged): an input is acknowledged only
//! after the flush that stored what derives from it; an aggregator's inputs
//! only after the aggregate holding them is stored; a failing input is
//! handed back and the poisoned instance replaced; a shutdown hands back
//! what is held; a sink that fails to flush is retried before anything is
//! acknowledged. Real components, real wasmtime, a real tokio runtime.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use torvyn_engine::connect::{
    Connector, ConnectorFactory, ConnectorSpec, Connectors, Failed, Fetched, Input, Settings,
    SinkConnector, SourceConnector,
};
use torvyn_engine::flow::{DirStore, NodeSpec, ServeOptions, StateOptions, Stop};
use torvyn_engine::{
    CompiledComponent, Element, Error, Flow, FlowSpec, Interface, WasmEngine, WasmtimeEngine,
    WasmtimeInstance,
};

use common::{compile, engine, flow_edge, runtime};

/// What the connectors were asked, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Fetched(Vec<u64>),
    /// A flush stored these output ids.
    Stored(Vec<String>),
    /// A pipelined sink sent these output ids (its send number).
    Sent(u64, Vec<String>),
    FlushFailed,
    Acked(Vec<u64>),
    Failed(u64, String),
    Kept(Vec<u64>),
    Released(Vec<u64>),
    /// The run is over for the source.
    Stopped,
}

type Log = Arc<Mutex<Vec<Event>>>;

/// What the sink stored: (id, payload).
type Stored = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

struct MemorySource {
    inputs: Vec<Vec<u8>>,
    next: usize,
    /// Returns this many more inputs than asked for (a broken connector).
    extra: usize,
    log: Log,
}

#[async_trait]
impl SourceConnector for MemorySource {
    async fn fetch(&mut self, max: usize) -> torvyn_engine::Result<Fetched> {
        if self.next == self.inputs.len() {
            return Ok(Fetched::Ended);
        }
        let end = (self.next + max + self.extra).min(self.inputs.len());
        let inputs: Vec<Input> = (self.next..end)
            .map(|i| {
                Input::new(
                    Element::new(0, "text/plain", self.inputs[i].clone()),
                    i as u64,
                    format!("mem:{i}"),
                )
            })
            .collect();
        self.next = end;
        self.log
            .lock()
            .unwrap()
            .push(Event::Fetched(inputs.iter().map(|i| i.handle).collect()));
        Ok(Fetched::Inputs(inputs))
    }

    async fn ack(&mut self, handles: &[u64]) -> torvyn_engine::Result<()> {
        if !handles.is_empty() {
            self.log
                .lock()
                .unwrap()
                .push(Event::Acked(handles.to_vec()));
        }
        Ok(())
    }

    async fn fail(&mut self, handle: u64, error: &str) -> torvyn_engine::Result<Failed> {
        self.log
            .lock()
            .unwrap()
            .push(Event::Failed(handle, error.to_string()));
        Ok(Failed::DeadLettered)
    }

    async fn keep(&mut self, handles: &[u64]) -> torvyn_engine::Result<()> {
        if !handles.is_empty() {
            self.log.lock().unwrap().push(Event::Kept(handles.to_vec()));
        }
        Ok(())
    }

    async fn release(&mut self, handles: &[u64]) -> torvyn_engine::Result<()> {
        self.log
            .lock()
            .unwrap()
            .push(Event::Released(handles.to_vec()));
        Ok(())
    }

    async fn stop(&mut self) -> torvyn_engine::Result<()> {
        self.log.lock().unwrap().push(Event::Stopped);
        Ok(())
    }
}

/// Outputs held by the sink: (id, payload).
type Outputs = Vec<(String, Vec<u8>)>;

struct MemorySink {
    pending: Vec<(String, Vec<u8>)>,
    failures_left: u32,
    log: Log,
    stored: Stored,
    /// Overrides `send`/`flush_through`: sends are numbered groups stored
    /// only by a flush through them.
    pipelined: bool,
    sent: Vec<(u64, Outputs)>,
    sends: u64,
}

impl MemorySink {
    fn store(&mut self, outputs: Vec<(String, Vec<u8>)>) {
        if !outputs.is_empty() {
            self.log.lock().unwrap().push(Event::Stored(
                outputs.iter().map(|(id, _)| id.clone()).collect(),
            ));
        }
        self.stored.lock().unwrap().extend(outputs);
    }
}

#[async_trait]
impl SinkConnector for MemorySink {
    fn accept(&mut self, element: &Element, id: &str) -> torvyn_engine::Result<()> {
        self.pending
            .push((id.to_string(), element.payload.to_vec()));
        Ok(())
    }

    async fn flush(&mut self) -> torvyn_engine::Result<()> {
        if self.failures_left > 0 {
            self.failures_left -= 1;
            self.log.lock().unwrap().push(Event::FlushFailed);
            return Err(Error::Connector {
                node: "output".into(),
                kind: "memory".into(),
                detail: "the store is away".into(),
                source: None,
            });
        }
        if self.pipelined {
            let send = self.send().await?;
            return self.flush_through(send).await;
        }
        let flushed = std::mem::take(&mut self.pending);
        self.store(flushed);
        Ok(())
    }

    async fn send(&mut self) -> torvyn_engine::Result<u64> {
        if !self.pipelined || self.pending.is_empty() {
            return Ok(self.sends);
        }
        self.sends += 1;
        let outputs = std::mem::take(&mut self.pending);
        self.log.lock().unwrap().push(Event::Sent(
            self.sends,
            outputs.iter().map(|(id, _)| id.clone()).collect(),
        ));
        self.sent.push((self.sends, outputs));
        Ok(self.sends)
    }

    async fn flush_through(&mut self, send: u64) -> torvyn_engine::Result<()> {
        if !self.pipelined {
            return self.flush().await;
        }
        while self.sent.first().is_some_and(|(number, _)| *number <= send) {
            let (_, outputs) = self.sent.remove(0);
            self.store(outputs);
        }
        Ok(())
    }
}

/// The `memory` kind: a source of `count` payloads `item <i>`, and a sink
/// failing its first `failures` flushes.
struct Memory {
    log: Log,
    stored: Stored,
}

#[async_trait]
impl ConnectorFactory for Memory {
    fn keys(&self) -> &'static [&'static str] {
        &["count", "failures", "extra", "pipelined"]
    }

    fn roles(&self) -> &'static [Interface] {
        &[Interface::Source, Interface::Sink]
    }

    async fn open(
        &self,
        role: Interface,
        settings: &Settings<'_>,
    ) -> torvyn_engine::Result<Connector> {
        if role == Interface::Source {
            let count: usize = settings.parse("count", 10)?;
            return Ok(Connector::Source(Box::new(MemorySource {
                inputs: (0..count)
                    .map(|i| format!("item {i}").into_bytes())
                    .collect(),
                next: 0,
                extra: settings.parse("extra", 0)?,
                log: self.log.clone(),
            })));
        }
        Ok(Connector::Sink(Box::new(MemorySink {
            pending: Vec::new(),
            failures_left: settings.parse("failures", 0)?,
            log: self.log.clone(),
            stored: self.stored.clone(),
            pipelined: settings.flag("pipelined", false)?,
            sent: Vec::new(),
            sends: 0,
        })))
    }
}

struct Setup {
    engine: WasmtimeEngine,
    components: BTreeMap<String, CompiledComponent>,
    connectors: Connectors,
    log: Log,
    stored: Stored,
}

fn setup(stage: &[u8]) -> Setup {
    let engine = engine();
    let components = BTreeMap::from([("stage".to_string(), compile(&engine, "stage", stage))]);
    let log = Log::default();
    let stored = Stored::default();
    let mut connectors = Connectors::builtin();
    connectors.register(
        "memory",
        Arc::new(Memory {
            log: log.clone(),
            stored: stored.clone(),
        }),
    );
    Setup {
        engine,
        components,
        connectors,
        log,
        stored,
    }
}

/// memory source (`count`) → stage (`role`, `config`) → memory sink.
fn flow(count: usize, role: Interface, config: &str, sink_failures: u32) -> FlowSpec {
    let memory = |settings: Vec<(&str, String)>| ConnectorSpec::new("memory", settings);
    let mut spec = FlowSpec::new(
        "mem",
        vec![
            NodeSpec::connector(
                "input",
                Interface::Source,
                memory(vec![("count", count.to_string())]),
            ),
            NodeSpec::component("stage", "stage", role, config),
            NodeSpec::connector(
                "output",
                Interface::Sink,
                memory(vec![("failures", sink_failures.to_string())]),
            ),
        ],
        vec![
            flow_edge("input", "output", "stage"),
            flow_edge("stage", "output", "output"),
        ],
    );
    spec.queue_depth = 4;
    spec
}

fn serve(
    setup: &Setup,
    spec: FlowSpec,
    options: ServeOptions<WasmtimeInstance>,
) -> torvyn_engine::Result<torvyn_engine::flow::ServeReport> {
    runtime(1).block_on(async {
        let mut flow: Flow<WasmtimeInstance> =
            Flow::instantiate_connected(&setup.engine, spec, &setup.components, &setup.connectors)
                .await?;
        flow.serve(options, |_, _| {}).await
    })
}

/// Sets connector node `node`'s setting `key` in `spec`.
fn set_setting(spec: &mut FlowSpec, node: usize, key: &str, value: &str) {
    let connector = spec.nodes[node]
        .connector
        .as_mut()
        .expect("a connector node");
    connector.settings.insert(key.into(), value.into());
}

fn batches(batch: usize) -> ServeOptions<WasmtimeInstance> {
    let mut options = ServeOptions::default();
    options.batch = batch;
    options
}

/// The position in the log of the flush that stored `id`.
fn stored_at(log: &[Event], id: &str) -> usize {
    log.iter()
        .position(|e| matches!(e, Event::Stored(ids) if ids.iter().any(|i| i == id)))
        .unwrap_or_else(|| panic!("{id} never stored: {log:?}"))
}

/// The position in the log of the ack of `handle`.
fn acked_at(log: &[Event], handle: u64) -> usize {
    log.iter()
        .position(|e| matches!(e, Event::Acked(h) if h.contains(&handle)))
        .unwrap_or_else(|| panic!("{handle} never acked: {log:?}"))
}

#[test]
fn an_input_is_acked_after_the_flush_that_stored_its_output() {
    let setup = setup(&torvyn_fixtures::uppercase_processor());
    let report = serve(&setup, flow(10, Interface::Processor, "", 0), batches(4)).unwrap();
    assert_eq!(report.stop, Stop::Ended);
    let log = setup.log.lock().unwrap().clone();
    let stored = setup.stored.lock().unwrap().clone();
    let ids: Vec<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("mem:{i}:output:0")).collect();
    assert_eq!(
        ids, expected,
        "one output per input, named after its origin"
    );
    assert_eq!(stored[3].1, b"ITEM 3");
    for i in 0..10u64 {
        assert!(
            stored_at(&log, &format!("mem:{i}:output:0")) < acked_at(&log, i),
            "input {i} acked before its output was stored: {log:?}"
        );
    }
    // Batches of 4: acks come per batch, after its flush.
    assert_eq!(
        log.last(),
        Some(&Event::Stopped),
        "stopped once, last: {log:?}"
    );
    let acks: Vec<&Event> = log
        .iter()
        .filter(|e| matches!(e, Event::Acked(_)))
        .collect();
    assert_eq!(
        acks,
        [
            &Event::Acked(vec![0, 1, 2, 3]),
            &Event::Acked(vec![4, 5, 6, 7]),
            &Event::Acked(vec![8, 9])
        ]
    );
}

/// The batches of a pipelined run: (position of the batch's fetch, of
/// the send of its outputs, of the flush that stored them), in order.
fn batch_times(log: &[Event]) -> Vec<(usize, usize, usize)> {
    let mut times = Vec::new();
    for (fetched_at, event) in log.iter().enumerate() {
        let Event::Fetched(handles) = event else {
            continue;
        };
        let first = format!("mem:{}:output:0", handles[0]);
        let sent_at = log
            .iter()
            .position(|e| matches!(e, Event::Sent(_, ids) if ids.contains(&first)))
            .unwrap_or_else(|| panic!("{first} never sent: {log:?}"));
        times.push((fetched_at, sent_at, stored_at(log, &first)));
    }
    times
}

#[test]
fn batches_in_flight_overlap_and_each_input_is_acked_after_its_outputs_are_stored() {
    let pipelined = |in_flight: usize| {
        let setup = setup(&torvyn_fixtures::uppercase_processor());
        let mut spec = flow(10, Interface::Processor, "", 0);
        set_setting(&mut spec, 2, "pipelined", "true");
        let mut options = batches(2);
        options.batches_in_flight = in_flight;
        let report = serve(&setup, spec, options).unwrap();
        assert_eq!(report.stop, Stop::Ended);
        let log = setup.log.lock().unwrap().clone();
        let stored = setup.stored.lock().unwrap().clone();
        let ids: Vec<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
        let expected: Vec<String> = (0..10).map(|i| format!("mem:{i}:output:0")).collect();
        assert_eq!(ids, expected, "every output stored once, in order");
        for i in 0..10u64 {
            assert!(
                stored_at(&log, &format!("mem:{i}:output:0")) < acked_at(&log, i),
                "{in_flight} in flight: input {i} acked before its output was stored: {log:?}"
            );
        }
        (batch_times(&log), log)
    };
    // Two in flight: batch N+1 is fetched (and sent) before batch N is
    // stored — the broker's answer to N overlaps the work on N+1.
    let (times, log) = pipelined(2);
    assert_eq!(times.len(), 5, "5 batches of 2: {log:?}");
    for pair in times.windows(2) {
        let ((_, sent, stored), (next_fetched, next_sent, _)) = (pair[0], pair[1]);
        assert!(
            sent < next_fetched && next_fetched < stored && stored > next_sent,
            "2 in flight: the next batch waited for this one to be stored: {log:?}"
        );
    }
    // One in flight: each batch is stored before the next is fetched.
    let (times, log) = pipelined(1);
    for pair in times.windows(2) {
        let ((_, _, stored), (next_fetched, _, _)) = (pair[0], pair[1]);
        assert!(
            stored < next_fetched,
            "1 in flight: a batch fetched before the last was stored: {log:?}"
        );
    }
}

#[test]
fn an_aggregators_inputs_are_acked_when_its_aggregate_is_stored() {
    let setup = setup(&torvyn_fixtures::concat_aggregator());
    // Concatenates every 4 inputs; batches of 3 do not line up with them.
    let report = serve(&setup, flow(10, Interface::Aggregator, "4", 0), batches(3)).unwrap();
    assert_eq!(report.stop, Stop::Ended);
    let log = setup.log.lock().unwrap().clone();
    let stored = setup.stored.lock().unwrap().clone();
    let payloads: Vec<String> = stored
        .iter()
        .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(
        payloads,
        [
            "item 0item 1item 2item 3",
            "item 4item 5item 6item 7",
            "item 8item 9"
        ]
    );
    // The first aggregate is emitted by input 3 and named after it; the last
    // is the end-of-stream flush, named after the aggregator.
    assert_eq!(stored[0].0, "mem:3:output:0");
    assert_eq!(stored[2].0, "stage:flush:mem:9:output:0");
    for (inputs, aggregate) in [
        (0..4, &stored[0].0),
        (4..8, &stored[1].0),
        (8..10, &stored[2].0),
    ] {
        let stored_at = stored_at(&log, aggregate);
        for input in inputs {
            assert!(
                stored_at < acked_at(&log, input),
                "input {input} acked before the aggregate holding it: {log:?}"
            );
        }
    }
    // Held across a batch boundary: kept alive meanwhile (0..2 after the first batch).
    assert!(log.contains(&Event::Kept(vec![0, 1, 2])), "{log:?}");
}

#[test]
fn a_failing_input_is_handed_back_and_its_instance_replaced() {
    let setup = setup(&torvyn_fixtures::faults::unreachable_on_third());
    let engine = Arc::new(engine());
    let component = setup.components["stage"].clone();
    let respawned = Arc::new(Mutex::new(0));
    let count = respawned.clone();
    let options = {
        let mut options = ServeOptions::default();
        options.batch = 10;
        options.respawn = Some(Box::new(move |node: &NodeSpec| {
            assert_eq!(node.name, "stage");
            *count.lock().unwrap() += 1;
            let (engine, component) = (engine.clone(), component.clone());
            Box::pin(async move { engine.instantiate_async(&component).await })
        }));
        options
    };
    let report = serve(&setup, flow(6, Interface::Processor, "", 0), options).unwrap();
    assert_eq!((report.failed_inputs, report.respawned), (1, 1));
    assert_eq!(*respawned.lock().unwrap(), 1);
    let log = setup.log.lock().unwrap().clone();
    let failed: Vec<&Event> = log
        .iter()
        .filter(|e| matches!(e, Event::Failed(..)))
        .collect();
    assert_eq!(failed.len(), 1, "{log:?}");
    let Event::Failed(handle, error) = failed[0] else {
        unreachable!()
    };
    assert_eq!(*handle, 2);
    assert!(
        error.contains("trap") && error.contains("unreachable"),
        "{error}"
    );
    // Every other input went through (the fresh instance sees sequence 3
    // on): this processor drops what it takes, and a drop settles an input.
    let stage = report.flow.node("stage").unwrap();
    assert_eq!((stage.elements_in, stage.dropped, stage.errors), (6, 5, 1));
    assert_eq!(
        log.iter().filter(|e| matches!(e, Event::Acked(_))).count(),
        1
    );
    assert!(log.contains(&Event::Acked(vec![0, 1, 3, 4, 5])), "{log:?}");

    // Without a way to replace the instance, the failure ends the run.
    let setup = self::setup(&torvyn_fixtures::faults::unreachable_on_third());
    let error = serve(&setup, flow(6, Interface::Processor, "", 0), batches(10)).unwrap_err();
    assert!(matches!(error, Error::Trap { .. }), "{error}");
}

#[test]
fn a_shutdown_hands_back_what_an_aggregator_holds() {
    let setup = setup(&torvyn_fixtures::concat_aggregator());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let options = {
        let mut options = ServeOptions::default();
        options.batch = 3;
        options.shutdown = Some(stopped);
        // Asked to stop after the second batch.
        options.on_batch = Some(Box::new(move |report, _| {
            if report.node("stage").is_some_and(|n| n.elements_in >= 6) {
                let _ = stop.send(true);
            }
        }));
        options
    };
    let report = serve(&setup, flow(10, Interface::Aggregator, "4", 0), options).unwrap();
    assert_eq!(report.stop, Stop::Shutdown);
    let log = setup.log.lock().unwrap().clone();
    // Inputs 0..4 made the first aggregate (stored, acked); 4 and 5 were
    // held when the stop came: handed back, and no partial aggregate stored.
    assert_eq!(setup.stored.lock().unwrap().len(), 1);
    assert!(log.contains(&Event::Acked(vec![0, 1, 2, 3])), "{log:?}");
    assert_eq!(
        log[log.len() - 2..],
        [Event::Released(vec![4, 5]), Event::Stopped],
        "handed back, then the source stopped: {log:?}"
    );
}

/// A broker may deliver again inputs whose acks it confirmed (a JetStream
/// cluster electing a leader as they arrived). A state stored at a stop
/// keeps the record of the inputs it settled: when they come again to the
/// run that restored it, they are acknowledged again, not counted twice.
#[test]
fn inputs_a_restored_state_counted_are_acked_again_not_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DirStore::open(dir.path()).unwrap());
    let stateful = |shutdown: Option<tokio::sync::watch::Receiver<bool>>| {
        let mut options = batches(5);
        options.shutdown = shutdown;
        options.state = Some(StateOptions::new(store.clone(), "run"));
        options
    };
    // First run: the count of inputs 0..5 is stored at a stop after the
    // first batch, and those inputs acknowledged.
    let first = setup(&torvyn_fixtures::counting_aggregator(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut options = stateful(Some(stopped));
    options.on_batch = Some(Box::new(move |report, _| {
        if report.node("stage").is_some_and(|n| n.elements_in >= 5) {
            let _ = stop.send(true);
        }
    }));
    let report = serve(&first, flow(10, Interface::Aggregator, "", 0), options).unwrap();
    assert_eq!((report.stop, report.states_saved), (Stop::Shutdown, 1));
    let log = first.log.lock().unwrap().clone();
    assert!(log.contains(&Event::Acked(vec![0, 1, 2, 3, 4])), "{log:?}");
    // Second run: the broker lost those acks and delivers all ten again.
    let second = setup(&torvyn_fixtures::counting_aggregator(0));
    let report = serve(
        &second,
        flow(10, Interface::Aggregator, "", 0),
        stateful(None),
    )
    .unwrap();
    assert_eq!((report.stop, report.states_restored), (Stop::Ended, 1));
    assert_eq!(report.already_counted, 5, "inputs 0..5 came again");
    let stored = second.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        String::from_utf8_lossy(&stored[0].1),
        "10",
        "each of the ten inputs counted once"
    );
    let log = second.log.lock().unwrap().clone();
    for input in 0..10 {
        acked_at(&log, input);
    }
    // The state and its record are removed with the emitted count.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A connector that returns more than it was asked for breaks the flow's
/// limit if taken and loses inputs if dropped: the run ends with an error
/// naming it, and nothing it returned is acknowledged.
#[test]
fn a_source_returning_more_than_asked_is_an_error_naming_it() {
    let setup = setup(&torvyn_fixtures::uppercase_processor());
    let mut spec = flow(10, Interface::Processor, "", 0);
    set_setting(&mut spec, 0, "extra", "1");
    let error = serve(&setup, spec, batches(4)).unwrap_err();
    assert!(
        matches!(&error, Error::Flow { flow, detail } if flow == "mem"
            && detail == "source connector `input` returned 5 inputs when asked for at most 4"),
        "{error:?}"
    );
    let log = setup.log.lock().unwrap().clone();
    assert_eq!(log, [Event::Fetched(vec![0, 1, 2, 3, 4])], "nothing acked");
}

#[test]
fn a_sink_that_fails_to_flush_is_retried_before_anything_is_acked() {
    let setup = setup(&torvyn_fixtures::uppercase_processor());
    let report = serve(&setup, flow(3, Interface::Processor, "", 2), batches(10)).unwrap();
    assert_eq!(report.stop, Stop::Ended);
    let log = setup.log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            Event::Fetched(vec![0, 1, 2]),
            Event::FlushFailed,
            Event::FlushFailed,
            Event::Stored(vec![
                "mem:0:output:0".into(),
                "mem:1:output:0".into(),
                "mem:2:output:0".into()
            ]),
            Event::Acked(vec![0, 1, 2]),
            Event::Stopped,
        ]
    );
    let output = report.flow.node("output").unwrap();
    assert_eq!(output.errors, 2, "each failed flush is counted");

    // A sink that stays away past `sink_retry` fails the run, acking nothing.
    let setup = self::setup(&torvyn_fixtures::uppercase_processor());
    let options = {
        let mut options = batches(10);
        options.sink_retry = Duration::from_millis(300);
        options
    };
    let error = serve(&setup, flow(3, Interface::Processor, "", 1000), options).unwrap_err();
    assert!(error.to_string().contains("the store is away"), "{error}");
    let log = setup.log.lock().unwrap().clone();
    assert!(!log.iter().any(|e| matches!(e, Event::Acked(_))), "{log:?}");
}

#[test]
fn connector_flows_are_refused_by_the_sync_entry_points_and_unknown_settings_named() {
    let setup = setup(&torvyn_fixtures::uppercase_processor());
    let error = Flow::<WasmtimeInstance>::instantiate(
        &setup.engine,
        flow(3, Interface::Processor, "", 0),
        &setup.components,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains(
            "node `input` is a `memory` connector: Flow::instantiate runs components only"
        ),
        "{error}"
    );
    let mut spec = flow(3, Interface::Processor, "", 0);
    set_setting(&mut spec, 0, "cuont", "3");
    let error = serve(&setup, spec, batches(10)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "node `input` (memory connector): setting `cuont`: unknown for a `memory` connector \
         (its settings: count, failures, extra, pipelined)"
    );
    let mut spec = flow(3, Interface::Processor, "", 0);
    spec.nodes[0].connector.as_mut().unwrap().kind = "kafka".into();
    let error = serve(&setup, spec, batches(10)).unwrap_err();
    let known = if cfg!(feature = "nats") {
        "file, memory, nats, stdin, stdout"
    } else {
        "file, memory, stdin, stdout"
    };
    assert!(
        error
            .to_string()
            .contains(&format!("no connector of this kind (known: {known})")),
        "{error}"
    );
}
