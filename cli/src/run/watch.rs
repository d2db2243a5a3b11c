//! `torvyn run --watch`: the flow file and its component files are watched
//! while the flow runs; a component whose bytes changed is compiled,
//! instantiated and handed to every running copy of the flow, where it takes
//! over between two elements at each node that uses it
//! ([`Upgrader`](torvyn_engine::flow::Upgrader)). SIGHUP asks for the same
//! check at once.
//!
//! The watcher is a thread of its own: compiling a new version takes
//! milliseconds to seconds and must not stall the flow. It polls every
//! [`POLL`] each watched file's modification time and length (cheap), and only
//! when one of them moved (or on SIGHUP) reads the files and compares their
//! SHA-256 with what runs: touching a file without changing it upgrades
//! nothing. What changes in the flow file other than its components' bytes
//! (nodes, edges, configs) needs a restart, and is said so.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use torvyn_engine::flow::Upgrader;
use torvyn_engine::{CompiledComponent, FlowSpec, WasmEngine, WasmtimeEngine, WasmtimeInstance};

use super::RunArgs;
use crate::load;

/// How often the watched files' times and lengths are looked at.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// Compiled components by name, shared with whatever else makes instances
/// of them (the service's respawn): after an upgrade a respawned node gets
/// the new version, not the one the flow started with.
pub(crate) type Shared = Arc<Mutex<BTreeMap<String, CompiledComponent>>>;

/// Each watched file's (modified, length); None where it cannot be read.
type Stamps = BTreeMap<PathBuf, Option<(SystemTime, u64)>>;

/// What the watcher did, for the summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WatchTotals {
    /// New versions handed to the flows (each node of each copy counts once).
    pub(crate) queued: u64,
    /// Changes that could not be handed over (read, compile, instantiate,
    /// role or `init` failed): the running version kept serving.
    pub(crate) failed: u64,
}

/// The watcher thread; [`Watcher::finish`] stops it.
pub(crate) struct Watcher {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<WatchTotals>>,
    upgraders: mpsc::Sender<Upgrader<WasmtimeInstance>>,
}

impl Watcher {
    /// Where each running copy of the flow sends its upgrader (copies on
    /// tokio are instantiated after the watcher starts).
    pub(crate) fn upgraders(&self) -> mpsc::Sender<Upgrader<WasmtimeInstance>> {
        self.upgraders.clone()
    }

    /// Stops watching; what was done.
    pub(crate) fn finish(mut self) -> WatchTotals {
        self.stop_thread()
    }

    fn stop_thread(&mut self) -> WatchTotals {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// What runs, as the watcher knows it.
struct Watched {
    /// The flow file (None for the linear shortcut: only its files are watched).
    flow_file: Option<PathBuf>,
    flow_name: Option<String>,
    partition: Option<String>,
    /// The running flow (its nodes, limits and configs stay as started).
    spec: FlowSpec,
    /// Component name → the file it was loaded from.
    locations: BTreeMap<String, String>,
    /// Component name → SHA-256 of the bytes running.
    digests: BTreeMap<String, [u8; 32]>,
    /// The last look at every watched file.
    seen: Stamps,
    engine: Arc<WasmtimeEngine>,
    shared: Option<Shared>,
    upgraders: Vec<Upgrader<WasmtimeInstance>>,
    totals: WatchTotals,
}

/// Starts watching `spec`'s components (loaded from `locations`) and, with a
/// flow file, the file itself.
pub(crate) fn start(
    args: &RunArgs,
    engine: Arc<WasmtimeEngine>,
    spec: &FlowSpec,
    locations: &BTreeMap<String, String>,
    shared: Option<Shared>,
) -> Watcher {
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (upgraders, incoming) = mpsc::channel();
    let mut watched = Watched {
        flow_file: args.flow_file.clone(),
        flow_name: args.flow.clone(),
        partition: args.partition.clone(),
        spec: spec.clone(),
        locations: locations.clone(),
        digests: BTreeMap::new(),
        seen: BTreeMap::new(),
        engine,
        shared,
        upgraders: Vec::new(),
        totals: WatchTotals::default(),
    };
    // What runs now is the baseline: read before the flow starts, so a
    // change made while it starts is seen as one.
    for (component, location) in &watched.locations {
        if let Ok((_, bytes)) = load::load(location) {
            watched
                .digests
                .insert(component.clone(), Sha256::digest(&bytes).into());
        }
    }
    watched.seen = watched.look();
    let thread = std::thread::Builder::new()
        .name("torvyn-watch".into())
        .spawn(move || watched.run(stopped, incoming))
        .expect("a thread can be started");
    Watcher {
        stop: Some(stop),
        thread: Some(thread),
        upgraders,
    }
}

/// Why the watcher woke.
enum Wake {
    Poll,
    Hangup,
    Stop,
}

impl Watched {
    fn run(
        mut self,
        mut stopped: tokio::sync::oneshot::Receiver<()>,
        incoming: mpsc::Receiver<Upgrader<WasmtimeInstance>>,
    ) -> WatchTotals {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            eprintln!("watch: cannot start its runtime; not watching");
            return self.totals;
        };
        #[cfg(unix)]
        let mut hangup = runtime.block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
        });
        loop {
            let wake = runtime.block_on(async {
                #[cfg(unix)]
                let hup = async {
                    match hangup.as_mut() {
                        Some(signal) => {
                            signal.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let hup = std::future::pending::<()>();
                tokio::select! {
                    _ = &mut stopped => Wake::Stop,
                    _ = hup => Wake::Hangup,
                    _ = tokio::time::sleep(POLL) => Wake::Poll,
                }
            });
            self.upgraders.extend(incoming.try_iter());
            match wake {
                Wake::Stop => break,
                Wake::Hangup => {
                    eprintln!("watch: SIGHUP: checking the flow's files");
                    self.check();
                }
                Wake::Poll => {
                    let seen = self.look();
                    if seen != self.seen {
                        self.check();
                    }
                }
            }
        }
        self.totals
    }

    /// Every watched file's (modified, length) as it is now: the flow file
    /// read again and its project directories resolved again (a newer build
    /// may have appeared), else the files loaded.
    fn look(&self) -> Stamps {
        match self.reread(&mut std::io::sink()) {
            Ok((_, locations)) => self.stamps(&locations),
            Err(_) => self.stamps(&self.locations),
        }
    }

    /// (modified, length) of the flow file and of each of `locations`, None
    /// where one cannot be read (a file being replaced).
    fn stamps(&self, locations: &BTreeMap<String, String>) -> Stamps {
        let files = self
            .flow_file
            .iter()
            .cloned()
            .chain(locations.values().map(PathBuf::from));
        files
            .map(|file| {
                let stamp = std::fs::metadata(&file)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())));
                (file, stamp)
            })
            .collect()
    }

    /// The flow file read again: the flow and its components' files.
    fn reread(
        &self,
        log: &mut dyn Write,
    ) -> Result<(Option<FlowSpec>, BTreeMap<String, String>), String> {
        let Some(path) = &self.flow_file else {
            return Ok((None, self.locations.clone()));
        };
        let file = load::flow_file(path, self.partition.as_deref()).map_err(|e| e.to_string())?;
        let (spec, locations) =
            load::flow_in(&file, self.flow_name.as_deref(), log).map_err(|e| e.to_string())?;
        Ok((Some(spec), locations))
    }

    /// Reads what changed and hands every changed component to the flows.
    fn check(&mut self) {
        let reread = self.reread(&mut std::io::stderr());
        self.seen = match &reread {
            Ok((_, locations)) => self.stamps(locations),
            Err(_) => self.stamps(&self.locations),
        };
        let (spec, locations) = match reread {
            Ok(found) => found,
            Err(why) => {
                eprintln!("watch: the flow file cannot be used ({why}); the running flow goes on unchanged");
                self.totals.failed += 1;
                return;
            }
        };
        if let Some(spec) = &spec {
            // Anything else of the flow (nodes, edges, configs, limits,
            // queue depths) is fixed while it runs.
            if spec != &self.spec {
                eprintln!(
                    "watch: flow `{}`: its nodes, edges or configs changed; those changes need a \
                     restart (only components' bytes are upgraded in place)",
                    self.spec.name
                );
            }
        }
        for (component, location) in locations {
            if !self.locations.contains_key(&component) {
                continue;
            }
            let bytes = match load::load(&location) {
                Ok((_, bytes)) => bytes,
                Err(error) => {
                    // A file being written may be read again at the next poll.
                    eprintln!("watch: component `{component}`: {error}; the running version keeps serving");
                    self.totals.failed += 1;
                    continue;
                }
            };
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            if self.digests.get(&component) == Some(&digest) {
                continue;
            }
            self.upgrade(&component, &location, &bytes);
            // Tried once per version: a broken one is not retried at every
            // poll, and the next change is tried again.
            self.digests.insert(component.clone(), digest);
            self.locations.insert(component, location);
        }
    }

    /// A changed component: compiled once, then a new instance for every
    /// node using it in every copy.
    fn upgrade(&mut self, component: &str, location: &str, bytes: &[u8]) {
        let compiled = match load::compile_bytes(&self.engine, component, location, bytes) {
            Ok(compiled) => compiled,
            Err(error) => {
                eprintln!(
                    "watch: component `{component}`: {error}; the running version keeps serving"
                );
                self.totals.failed += 1;
                return;
            }
        };
        if let Some(shared) = &self.shared {
            if let Ok(mut shared) = shared.lock() {
                shared.insert(component.to_string(), compiled.clone());
            }
        }
        let nodes: Vec<_> = self
            .spec
            .nodes
            .iter()
            .filter(|node| node.connector.is_none() && node.component == component)
            .cloned()
            .collect();
        for node in &nodes {
            let for_node = match self.engine.with_node_limits(&compiled, &node.limits) {
                Ok(component) => component,
                Err(error) => {
                    eprintln!(
                        "watch: node `{}`: new version of `{component}` refused by its limits: \
                         {error}; the running version keeps serving",
                        node.name
                    );
                    self.totals.failed += 1;
                    continue;
                }
            };
            let mut queued = 0;
            for upgrader in &self.upgraders {
                let handed = self
                    .engine
                    .instantiate(&for_node)
                    .and_then(|instance| upgrader.upgrade(&node.name, instance));
                match handed {
                    Ok(()) => queued += 1,
                    Err(error) => {
                        eprintln!(
                            "watch: node `{}`: new version of `{component}` refused: {error}; \
                             the running version keeps serving",
                            node.name
                        );
                        self.totals.failed += 1;
                    }
                }
            }
            if queued > 0 {
                eprintln!(
                    "watch: node `{}`: new version of `{component}` ({location}) queued for {queued} \
                     flow{}",
                    node.name,
                    if queued == 1 { "" } else { "s" }
                );
                self.totals.queued += queued;
            }
        }
    }
}
