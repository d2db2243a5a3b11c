//! The host's state of a windowed node: one state per (key, window), as
//! bytes the guest defines, folded an element at a time, merged when two
//! sessions meet, handed out once when the watermark closes the window.
//!
//! The host owns these states (not the guest) so it can store the ones a
//! batch changed before acking the batch's inputs, and move a partition's
//! states to another worker: [`KeyedWindows::take_changes`] and
//! [`KeyedWindows::restore`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::fold::{AsyncWindowFold, Ready};
use super::{Window, WindowFold, WindowSpec};
use crate::gate::run_ready;

/// Where an element went: into how many windows, and how many it belonged
/// to had closed already.
///
/// ```
/// use torvyn_engine::window::{KeyedWindows, Window, WindowFold, WindowSpec};
/// # struct Count;
/// # impl WindowFold for Count {
/// #     type Error = std::convert::Infallible;
/// #     fn fold(&mut self, _: &str, _: Window, s: Option<&[u8]>) -> Result<Vec<u8>, Self::Error> {
/// #         Ok(vec![s.map_or(0, |s| s[0]) + 1])
/// #     }
/// #     fn merge(&mut self, _: &str, _: Window, a: &[u8], b: &[u8]) -> Result<Vec<u8>, Self::Error> {
/// #         Ok(vec![a[0] + b[0]])
/// #     }
/// # }
///
/// let mut windows = KeyedWindows::new(WindowSpec::tumbling(1_000)?);
/// windows.advance(1_999);
/// let placed = windows.add("k", 1_500, &mut Count).unwrap();
/// assert!(placed.is_late() && placed.late_windows() == 1);
/// # Ok::<(), torvyn_engine::window::WindowSpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    windows: usize,
    late_windows: usize,
}

impl Placement {
    /// The windows the element went into.
    pub fn windows(&self) -> usize {
        self.windows
    }

    /// The windows it belonged to that had closed.
    pub fn late_windows(&self) -> usize {
        self.late_windows
    }

    /// Whether it went into no window: every one it belonged to had
    /// closed. It goes to the node's side output.
    pub fn is_late(&self) -> bool {
        self.windows == 0
    }
}

/// A window the watermark closed: its key, its bounds and its final state,
/// handed out once.
///
/// ```
/// use torvyn_engine::window::{ClosedWindow, KeyedWindows, Window, WindowFold, WindowSpec};
/// # struct Count;
/// # impl WindowFold for Count {
/// #     type Error = std::convert::Infallible;
/// #     fn fold(&mut self, _: &str, _: Window, s: Option<&[u8]>) -> Result<Vec<u8>, Self::Error> {
/// #         Ok(vec![s.map_or(0, |s| s[0]) + 1])
/// #     }
/// #     fn merge(&mut self, _: &str, _: Window, a: &[u8], b: &[u8]) -> Result<Vec<u8>, Self::Error> {
/// #         Ok(vec![a[0] + b[0]])
/// #     }
/// # }
///
/// let mut windows = KeyedWindows::new(WindowSpec::tumbling(1_000)?);
/// windows.add("sensor-7", 1_200, &mut Count).unwrap();
/// windows.add("sensor-7", 1_700, &mut Count).unwrap();
/// let closed: Vec<ClosedWindow> = windows.advance(1_999);
/// assert_eq!(closed[0].state(), [2]);
/// // The id its result is published with: the same after any replay.
/// assert_eq!(closed[0].result_id("counts"), "counts/1000-2000/sensor-7");
/// # Ok::<(), torvyn_engine::window::WindowSpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedWindow {
    key: String,
    window: Window,
    state: Vec<u8>,
}

impl ClosedWindow {
    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The window.
    pub fn window(&self) -> Window {
        self.window
    }

    /// Its final state, for the guest's result.
    pub fn state(&self) -> &[u8] {
        &self.state
    }

    /// Its state, taken.
    pub fn into_state(self) -> Vec<u8> {
        self.state
    }

    /// The id the window's result is published with (`Nats-Msg-Id`):
    /// node, window, key (last: a key may hold `/`). It depends on nothing
    /// but these, so a result published again after a crash, whatever
    /// order the inputs came in the second time, is dropped as a copy.
    pub fn result_id(&self, node: &str) -> String {
        format!("{node}/{}/{}", self.window, self.key)
    }
}

/// A state a batch changed, for the store: put (the window is open with
/// this state) or removed (closed, or merged into another session).
///
/// ```
/// use torvyn_engine::window::{KeyedWindows, StateChange, Window, WindowFold, WindowSpec};
/// # struct Count;
/// # impl WindowFold for Count {
/// #     type Error = std::convert::Infallible;
/// #     fn fold(&mut self, _: &str, _: Window, s: Option<&[u8]>) -> Result<Vec<u8>, Self::Error> {
/// #         Ok(vec![s.map_or(0, |s| s[0]) + 1])
/// #     }
/// #     fn merge(&mut self, _: &str, _: Window, a: &[u8], b: &[u8]) -> Result<Vec<u8>, Self::Error> {
/// #         Ok(vec![a[0] + b[0]])
/// #     }
/// # }
///
/// let mut windows = KeyedWindows::new(WindowSpec::tumbling(1_000)?);
/// windows.add("k", 10, &mut Count).unwrap();
/// let changes = windows.take_changes();
/// assert!(matches!(&changes[..], [StateChange::Put { key, state, .. }] if key == "k" && state == &[1]));
/// assert!(windows.take_changes().is_empty(), "taken once");
/// # Ok::<(), torvyn_engine::window::WindowSpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateChange {
    /// Store `state` for `key`'s `window`.
    Put {
        /// The key.
        key: String,
        /// The window.
        window: Window,
        /// Its state now.
        state: Vec<u8>,
    },
    /// `key`'s `window` has no state any more.
    Removed {
        /// The key.
        key: String,
        /// The window.
        window: Window,
    },
}

/// The states of one windowed node (or one partition of it): which
/// windows are open for which keys, what each holds, and which close next.
///
/// Elements go in with [`add`](Self::add); the watermark goes in with
/// [`advance`](Self::advance), which hands out every window it closes, in
/// the order they close. A window closes once: its state is gone after.
///
/// ```
/// use torvyn_engine::window::{KeyedWindows, Window, WindowFold, WindowSpec};
/// # struct Count;
/// # impl WindowFold for Count {
/// #     type Error = std::convert::Infallible;
/// #     fn fold(&mut self, _: &str, _: Window, s: Option<&[u8]>) -> Result<Vec<u8>, Self::Error> {
/// #         Ok(vec![s.map_or(0, |s| s[0]) + 1])
/// #     }
/// #     fn merge(&mut self, _: &str, _: Window, a: &[u8], b: &[u8]) -> Result<Vec<u8>, Self::Error> {
/// #         Ok(vec![a[0] + b[0]])
/// #     }
/// # }
///
/// // Sessions ended by 100 ms of silence.
/// let mut sessions = KeyedWindows::new(WindowSpec::session(100)?);
/// for at in [0, 50, 400, 120] {
///     sessions.add("user-1", at, &mut Count).unwrap();
/// }
/// // 0, 50 and 120 are one session; 400 another.
/// assert_eq!(sessions.len(), 2);
/// let closed = sessions.close_all();
/// assert_eq!(closed[0].window(), Window::new(0, 220).unwrap());
/// assert_eq!(closed[0].state(), [3]);
/// assert_eq!(closed[1].state(), [1]);
/// # Ok::<(), torvyn_engine::window::WindowSpecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct KeyedWindows {
    spec: WindowSpec,
    states: HashMap<(String, Window), Vec<u8>>,
    /// Open windows by the watermark that closes them.
    closing: BTreeSet<(i64, String, Window)>,
    /// Each key's open sessions by start (sessions only): those an
    /// element's own session meets are found by range.
    sessions: HashMap<String, BTreeMap<i64, Window>>,
    watermark: Option<i64>,
    /// Windows changed since the last `take_changes`.
    changed: BTreeSet<(String, Window)>,
}

impl KeyedWindows {
    /// No open windows, no watermark yet.
    pub fn new(spec: WindowSpec) -> KeyedWindows {
        KeyedWindows {
            spec,
            states: HashMap::new(),
            closing: BTreeSet::new(),
            sessions: HashMap::new(),
            watermark: None,
            changed: BTreeSet::new(),
        }
    }

    /// The windows' spec.
    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    /// Open (key, window) states.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether no window is open.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The watermark as last advanced.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// The state of `key`'s `window`, if open.
    pub fn state(&self, key: &str, window: Window) -> Option<&[u8]> {
        self.states
            .get(&(key.to_owned(), window))
            .map(Vec::as_slice)
    }

    fn is_closed(&self, window: &Window) -> bool {
        self.watermark
            .is_some_and(|watermark| self.spec.closes_at(window) <= watermark)
    }

    /// Puts an element of `key` at `event_ms` into each of its windows not
    /// closed yet, through `fold` (and, for sessions, merges the sessions
    /// it joins). All or nothing: when a call fails, no state has changed.
    pub fn add<F: WindowFold>(
        &mut self,
        key: &str,
        event_ms: i64,
        fold: &mut F,
    ) -> Result<Placement, F::Error> {
        run_ready(self.add_async(key, event_ms, &mut Ready(fold)))
    }

    /// [`add`](Self::add) with a fold whose calls are futures (a guest
    /// called through the async invoker): the one body of both.
    pub(crate) async fn add_async<F: AsyncWindowFold>(
        &mut self,
        key: &str,
        event_ms: i64,
        fold: &mut F,
    ) -> Result<Placement, F::Error> {
        if self.spec.merges() {
            return self.add_to_session(key, event_ms, fold).await;
        }
        let mut late_windows = 0;
        let mut folded = Vec::new();
        for window in self.spec.windows_of(event_ms) {
            if self.is_closed(&window) {
                late_windows += 1;
                continue;
            }
            let state = fold.fold(key, window, self.state(key, window)).await?;
            folded.push((window, state));
        }
        let windows = folded.len();
        for (window, state) in folded {
            self.put(key, window, state);
        }
        Ok(Placement {
            windows,
            late_windows,
        })
    }

    async fn add_to_session<F: AsyncWindowFold>(
        &mut self,
        key: &str,
        event_ms: i64,
        fold: &mut F,
    ) -> Result<Placement, F::Error> {
        let Some(own) = self.spec.windows_of(event_ms).next() else {
            unreachable!("a session spec gives every element its own session");
        };
        // The key's sessions are disjoint and apart (two that met were
        // merged): those the element's session meets start at or before
        // its end and are contiguous in start order.
        let met: Vec<Window> = self
            .sessions
            .get(key)
            .map(|open| {
                open.range(..=own.end_ms())
                    .rev()
                    .map(|(_, window)| *window)
                    .take_while(|window| window.touches(&own))
                    .collect()
            })
            .unwrap_or_default();
        let merged = met.iter().fold(own, |all, window| all.cover(window));
        // Met sessions are open, and a merge only widens them: it is late
        // only alone.
        if self.is_closed(&merged) {
            return Ok(Placement {
                windows: 0,
                late_windows: 1,
            });
        }
        // Earliest first: `met` was collected from the latest back.
        let mut state: Option<Vec<u8>> = None;
        for window in met.iter().rev() {
            let this = &self.states[&(key.to_owned(), *window)];
            state = Some(match state {
                None => this.clone(),
                Some(earlier) => fold.merge(key, merged, &earlier, this).await?,
            });
        }
        let state = fold.fold(key, merged, state.as_deref()).await?;
        for window in &met {
            self.remove(key, *window);
        }
        self.put(key, merged, state);
        Ok(Placement {
            windows: 1,
            late_windows: 0,
        })
    }

    fn put(&mut self, key: &str, window: Window, state: Vec<u8>) {
        let entry = (key.to_owned(), window);
        if self.states.insert(entry.clone(), state).is_none() {
            self.closing
                .insert((self.spec.closes_at(&window), key.to_owned(), window));
            if self.spec.merges() {
                self.sessions
                    .entry(key.to_owned())
                    .or_default()
                    .insert(window.start_ms(), window);
            }
        }
        self.changed.insert(entry);
    }

    fn remove(&mut self, key: &str, window: Window) -> Option<Vec<u8>> {
        let entry = (key.to_owned(), window);
        let state = self.states.remove(&entry)?;
        self.closing
            .remove(&(self.spec.closes_at(&window), key.to_owned(), window));
        if let Some(open) = self.sessions.get_mut(key) {
            open.remove(&window.start_ms());
            if open.is_empty() {
                self.sessions.remove(key);
            }
        }
        self.changed.insert(entry);
        Some(state)
    }

    /// Moves the watermark to `watermark` (a lower one than before is
    /// ignored) and hands out the windows it closes, in the order they
    /// close (then by key and window).
    pub fn advance(&mut self, watermark: i64) -> Vec<ClosedWindow> {
        if self.watermark.is_some_and(|current| current >= watermark) {
            return Vec::new();
        }
        self.watermark = Some(watermark);
        self.close_through(watermark)
    }

    /// Closes every open window, as at the end of a finite input (the
    /// watermark goes to the end of time).
    pub fn close_all(&mut self) -> Vec<ClosedWindow> {
        self.watermark = Some(i64::MAX);
        self.close_through(i64::MAX)
    }

    fn close_through(&mut self, watermark: i64) -> Vec<ClosedWindow> {
        let mut closed = Vec::new();
        while let Some((closes_at, key, window)) = self.closing.first().cloned() {
            if closes_at > watermark {
                break;
            }
            let state = self.remove(&key, window).expect("a closing window is open");
            closed.push(ClosedWindow { key, window, state });
        }
        closed
    }

    /// The states changed since this was last called, once each: what to
    /// store before the inputs that changed them are acked.
    pub fn take_changes(&mut self) -> Vec<StateChange> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(
                |(key, window)| match self.states.get(&(key.clone(), window)) {
                    Some(state) => StateChange::Put {
                        key,
                        window,
                        state: state.clone(),
                    },
                    None => StateChange::Removed { key, window },
                },
            )
            .collect()
    }

    /// Puts back a stored state (a restart, or a partition moved here):
    /// not counted as a change. A window already closed by the current
    /// watermark is closed at the next [`advance`](Self::advance).
    pub fn restore(&mut self, key: &str, window: Window, state: Vec<u8>) {
        self.put(key, window, state);
        self.changed.remove(&(key.to_owned(), window));
    }
}

mod snapshot;
#[cfg(test)]
mod tests;
