//! Event time for windowed stages, on the host's side: which windows an
//! element falls in ([`WindowSpec`]), how far event time has got
//! ([`SourceWatermark`], [`NodeWatermark`]), and the state of each
//! (key, window) that the host keeps, folds elements into through the
//! guest, and hands out once when the watermark closes the window
//! ([`KeyedWindows`]).
//!
//! The semantics are those of Flink and Kafka Streams, which set what users
//! of stream processors expect:
//! - A window `[start, end)` holds event times from `start` up to, not
//!   including, `end`. Tumbling windows are back to back; sliding ones
//!   start every `slide_ms`; a key's sessions end after `gap_ms` without
//!   an element.
//! - A watermark `W` says no element at or before `W` is still expected.
//!   A window closes when the watermark reaches its last time plus the
//!   allowed lateness; its result is asked for then, once.
//! - An element whose windows have all closed is late: it goes to the
//!   node's side output, counted.
//!
//! The host owns the states, so that a batch's changed states can be stored
//! before its inputs are acked and a partition's states can move to another
//! worker ([`KeyedWindows::take_changes`], [`KeyedWindows::restore`]); the
//! guest stays a function of state and element ([`WindowFold`]).
//!
//! ```
//! use torvyn_engine::window::{KeyedWindows, SourceWatermark, Window, WindowFold, WindowSpec};
//!
//! /// Sums one-byte values per key and window.
//! struct Sum(u8);
//! impl WindowFold for Sum {
//!     type Error = std::convert::Infallible;
//!     fn fold(&mut self, _: &str, _: Window, state: Option<&[u8]>) -> Result<Vec<u8>, Self::Error> {
//!         Ok(vec![state.map_or(0, |s| s[0]) + self.0])
//!     }
//!     fn merge(&mut self, _: &str, _: Window, a: &[u8], b: &[u8]) -> Result<Vec<u8>, Self::Error> {
//!         Ok(vec![a[0] + b[0]])
//!     }
//! }
//!
//! let spec = WindowSpec::tumbling(1_000)?.with_allowed_lateness(200);
//! let mut windows = KeyedWindows::new(spec);
//! let mut clock = SourceWatermark::new(500, None, 0); // up to 500 ms out of order
//! let mut results = Vec::new();
//! for (key, at, value) in [("a", 100, 1), ("a", 900, 2), ("b", 1_600, 5), ("a", 800, 4), ("a", 1_750, 1), ("a", 300, 9)] {
//!     if windows.add(key, at, &mut Sum(value)).unwrap().is_late() {
//!         results.push(format!("late: {key}@{at}"));
//!     }
//!     clock.observe(at, 0);
//!     for closed in windows.advance(clock.watermark().unwrap()) {
//!         results.push(format!("{} {} = {}", closed.key(), closed.window(), closed.state()[0]));
//!     }
//! }
//! // At 1,750 the watermark reaches 1,249 - past 999 + 200: [0, 1000) of `a`
//! // closes with 1 + 2 + 4; the element at 300 comes after, late.
//! assert_eq!(results, ["a 0-1000 = 7", "late: a@300"]);
//! # Ok::<(), torvyn_engine::window::WindowSpecError>(())
//! ```

mod fold;
mod keyed;
mod spec;
mod watermark;

pub(crate) use fold::AsyncWindowFold;
pub use fold::WindowFold;
pub use keyed::{ClosedWindow, KeyedWindows, Placement, StateChange};
pub use spec::{
    Window, WindowKind, WindowSpec, WindowSpecError, MAX_SPAN_MS, MAX_WINDOWS_PER_ELEMENT,
};
pub use watermark::{NodeWatermark, SourceWatermark};
