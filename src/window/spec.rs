//! What a windowed node declares: the shape of its windows and how late an
//! element may come, and which windows an event time falls in.

/// Event times `[start_ms, end_ms)`: milliseconds, as the element's event
/// time (by default its stream timestamp, since the Unix epoch).
///
/// ```
/// use torvyn_engine::window::Window;
///
/// let window = Window::new(1_000, 2_000).expect("start before end");
/// assert!(window.contains(1_999) && !window.contains(2_000));
/// assert_eq!(window.max_timestamp(), 1_999);
/// assert_eq!(window.to_string(), "1000-2000");
/// assert!(Window::new(5, 5).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    start_ms: i64,
    end_ms: i64,
}

impl Window {
    /// The window `[start_ms, end_ms)`; `None` unless `start_ms < end_ms`.
    pub fn new(start_ms: i64, end_ms: i64) -> Option<Window> {
        (start_ms < end_ms).then_some(Window { start_ms, end_ms })
    }

    /// Its first event time.
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// The first event time after it.
    pub fn end_ms(&self) -> i64 {
        self.end_ms
    }

    /// Its last event time: the watermark that reaches it has seen the
    /// whole window (allowed lateness aside).
    pub fn max_timestamp(&self) -> i64 {
        self.end_ms - 1
    }

    /// Whether `event_ms` falls in it.
    pub fn contains(&self, event_ms: i64) -> bool {
        self.start_ms <= event_ms && event_ms < self.end_ms
    }

    /// Whether two sessions meet or overlap, and so are one session
    /// (`[0, 10)` and `[10, 20)` meet: an element 10 ms after another is
    /// within a 10 ms gap).
    pub(crate) fn touches(&self, other: &Window) -> bool {
        self.start_ms <= other.end_ms && other.start_ms <= self.end_ms
    }

    /// The smallest window holding both.
    pub(crate) fn cover(&self, other: &Window) -> Window {
        Window {
            start_ms: self.start_ms.min(other.start_ms),
            end_ms: self.end_ms.max(other.end_ms),
        }
    }
}

/// `start-end` in milliseconds: the window's part of a result's id.
impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start_ms, self.end_ms)
    }
}

/// The shape of a node's windows.
///
/// ```
/// use torvyn_engine::window::{WindowKind, WindowSpec};
///
/// let spec = WindowSpec::sliding(5_000, 1_000)?;
/// assert!(matches!(spec.kind(), WindowKind::Sliding { size_ms: 5_000, slide_ms: 1_000 }));
/// # Ok::<(), torvyn_engine::window::WindowSpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WindowKind {
    /// Back to back, each `size_ms` long, starting at multiples of it.
    Tumbling {
        /// The length of each window.
        size_ms: u64,
    },
    /// `size_ms` long, a new one every `slide_ms` (starting at multiples
    /// of it): an element falls in `size_ms / slide_ms` of them (rounded
    /// up or down by where it falls).
    Sliding {
        /// The length of each window.
        size_ms: u64,
        /// The time between two windows' starts.
        slide_ms: u64,
    },
    /// A key's elements less than `gap_ms` apart (or exactly) make one
    /// window, from its first element to its last plus the gap.
    Session {
        /// The silence that ends a session.
        gap_ms: u64,
    },
}

/// A windowed node's windows: their shape and the allowed lateness, the
/// time a window stays open after the watermark passes its end, for
/// elements that come late but not too late.
///
/// ```
/// use torvyn_engine::window::{Window, WindowSpec};
///
/// let spec = WindowSpec::tumbling(1_000)?.with_allowed_lateness(500);
/// let windows: Vec<Window> = spec.windows_of(2_345).collect();
/// assert_eq!(windows, [Window::new(2_000, 3_000).unwrap()]);
/// // It closes when the watermark reaches 2,999 + 500.
/// assert_eq!(spec.closes_at(&windows[0]), 3_499);
///
/// assert!(WindowSpec::sliding(1_000, 3_000).is_err());
/// # Ok::<(), torvyn_engine::window::WindowSpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    kind: WindowKind,
    allowed_lateness_ms: u64,
}

/// A window setting that cannot work, named with its value.
///
/// ```
/// use torvyn_engine::window::{WindowSpec, WindowSpecError};
///
/// let error = WindowSpec::tumbling(0).unwrap_err();
/// assert!(matches!(error, WindowSpecError::Zero { setting: "size_ms" }));
/// assert_eq!(error.to_string(), "window setting `size_ms` is 0: it must be at least 1 ms");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowSpecError {
    /// A length of 0.
    #[error("window setting `{setting}` is 0: it must be at least 1 ms")]
    Zero {
        /// The setting's name in a flow file.
        setting: &'static str,
    },
    /// A slide longer than the window: elements between windows would
    /// belong to none.
    #[error(
        "window setting `slide_ms` ({slide_ms}) is longer than `size_ms` ({size_ms}): \
         elements between two windows would fall in none"
    )]
    SlideLongerThanSize {
        /// The window's length.
        size_ms: u64,
        /// The slide asked for.
        slide_ms: u64,
    },
    /// A slide so short that an element would fall in more windows than
    /// [`MAX_WINDOWS_PER_ELEMENT`]: each is a state the host keeps and a
    /// call into the guest per element.
    #[error(
        "windows of `size_ms` {size_ms} every `slide_ms` {slide_ms} put each element in \
         {windows} windows, over the limit of {MAX_WINDOWS_PER_ELEMENT}"
    )]
    TooManyWindows {
        /// The window's length.
        size_ms: u64,
        /// The slide asked for.
        slide_ms: u64,
        /// The windows each element would fall in.
        windows: u64,
    },
    /// A length past what event times in milliseconds can hold.
    #[error("window setting `{setting}` ({value} ms) is over the limit of {MAX_SPAN_MS} ms")]
    TooLong {
        /// The setting's name in a flow file.
        setting: &'static str,
        /// Its value.
        value: u64,
    },
}

/// The most windows one element may fall in (`size_ms / slide_ms` of a
/// sliding window, rounded up).
pub const MAX_WINDOWS_PER_ELEMENT: u64 = 1_000;

/// The longest window, gap or lateness: about 292 years, so that event
/// times in milliseconds plus any of them stay within `i64`.
pub const MAX_SPAN_MS: u64 = 1 << 53;

fn span(setting: &'static str, value: u64) -> Result<u64, WindowSpecError> {
    if value == 0 {
        Err(WindowSpecError::Zero { setting })
    } else if value > MAX_SPAN_MS {
        Err(WindowSpecError::TooLong { setting, value })
    } else {
        Ok(value)
    }
}

impl WindowSpec {
    /// Tumbling windows of `size_ms`, no lateness allowed.
    pub fn tumbling(size_ms: u64) -> Result<WindowSpec, WindowSpecError> {
        Ok(WindowSpec::of(WindowKind::Tumbling {
            size_ms: span("size_ms", size_ms)?,
        }))
    }

    /// Sliding windows of `size_ms`, one starting every `slide_ms`, no
    /// lateness allowed.
    pub fn sliding(size_ms: u64, slide_ms: u64) -> Result<WindowSpec, WindowSpecError> {
        let size_ms = span("size_ms", size_ms)?;
        let slide_ms = span("slide_ms", slide_ms)?;
        if slide_ms > size_ms {
            return Err(WindowSpecError::SlideLongerThanSize { size_ms, slide_ms });
        }
        let windows = size_ms.div_ceil(slide_ms);
        if windows > MAX_WINDOWS_PER_ELEMENT {
            return Err(WindowSpecError::TooManyWindows {
                size_ms,
                slide_ms,
                windows,
            });
        }
        Ok(WindowSpec::of(WindowKind::Sliding { size_ms, slide_ms }))
    }

    /// Session windows ended by `gap_ms` without an element of the key,
    /// no lateness allowed.
    pub fn session(gap_ms: u64) -> Result<WindowSpec, WindowSpecError> {
        Ok(WindowSpec::of(WindowKind::Session {
            gap_ms: span("gap_ms", gap_ms)?,
        }))
    }

    fn of(kind: WindowKind) -> WindowSpec {
        WindowSpec {
            kind,
            allowed_lateness_ms: 0,
        }
    }

    /// The same windows, each kept open `allowed_lateness_ms` after the
    /// watermark passes its end (clamped to [`MAX_SPAN_MS`]).
    pub fn with_allowed_lateness(self, allowed_lateness_ms: u64) -> WindowSpec {
        WindowSpec {
            allowed_lateness_ms: allowed_lateness_ms.min(MAX_SPAN_MS),
            ..self
        }
    }

    /// The windows' shape.
    pub fn kind(&self) -> &WindowKind {
        &self.kind
    }

    /// How long a window stays open after the watermark passes its end.
    pub fn allowed_lateness_ms(&self) -> u64 {
        self.allowed_lateness_ms
    }

    /// Whether windows of this spec merge (sessions do).
    pub fn merges(&self) -> bool {
        matches!(self.kind, WindowKind::Session { .. })
    }

    /// The windows an element at `event_ms` falls in, earliest start
    /// first; for sessions, the element's own session (`gap_ms` long),
    /// before it meets the key's others.
    pub fn windows_of(&self, event_ms: i64) -> impl Iterator<Item = Window> {
        // Sizes are at most 2^53 (`span`): the sums below stay in range
        // for event times within ±2^62 (clamped: an element outside that
        // is ~146 million years from the epoch).
        let event_ms = event_ms.clamp(-(1 << 62), 1 << 62);
        let (size, slide) = match self.kind {
            WindowKind::Tumbling { size_ms } => (size_ms as i64, size_ms as i64),
            WindowKind::Sliding { size_ms, slide_ms } => (size_ms as i64, slide_ms as i64),
            WindowKind::Session { gap_ms } => (gap_ms as i64, gap_ms as i64),
        };
        let last_start = match self.kind {
            WindowKind::Session { .. } => event_ms,
            _ => event_ms - event_ms.rem_euclid(slide),
        };
        // Starts from the last one back while the window still holds the
        // element: start > event_ms - size.
        let count = (size - 1) / slide + 1;
        (0..count).rev().filter_map(move |back| {
            let start = last_start - back * slide;
            (start + size > event_ms).then(|| Window {
                start_ms: start,
                end_ms: start + size,
            })
        })
    }

    /// The watermark at which `window` closes: its last event time plus
    /// the allowed lateness. An element whose windows have all closed is
    /// late.
    pub fn closes_at(&self, window: &Window) -> i64 {
        window
            .max_timestamp()
            .saturating_add(self.allowed_lateness_ms as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(spec: &WindowSpec, event_ms: i64) -> Vec<(i64, i64)> {
        spec.windows_of(event_ms)
            .map(|w| (w.start_ms(), w.end_ms()))
            .collect()
    }

    #[test]
    fn tumbling_windows_hold_their_start_and_not_their_end() {
        let spec = WindowSpec::tumbling(1_000).unwrap();
        assert_eq!(starts(&spec, 0), [(0, 1_000)]);
        assert_eq!(starts(&spec, 999), [(0, 1_000)]);
        assert_eq!(starts(&spec, 1_000), [(1_000, 2_000)]);
        // Before the epoch: floor, not truncation toward zero.
        assert_eq!(starts(&spec, -1), [(-1_000, 0)]);
        assert_eq!(starts(&spec, -1_000), [(-1_000, 0)]);
    }

    #[test]
    fn a_sliding_element_falls_in_every_window_that_holds_it() {
        let spec = WindowSpec::sliding(5, 2).unwrap();
        // Windows start at even times and are 5 long: 7 is in [4, 9) and
        // [6, 11), not in [2, 7).
        assert_eq!(starts(&spec, 7), [(4, 9), (6, 11)]);
        assert_eq!(starts(&spec, 6), [(2, 7), (4, 9), (6, 11)]);
        let spec = WindowSpec::sliding(5_000, 1_000).unwrap();
        for event in [-7_001, -1, 0, 1, 4_999, 5_000, 123_456] {
            let windows = starts(&spec, event);
            assert_eq!(windows.len(), 5, "{event}: {windows:?}");
            assert!(windows.iter().all(|&(s, e)| s <= event && event < e));
        }
        // A slide equal to the size is tumbling.
        let spec = WindowSpec::sliding(10, 10).unwrap();
        assert_eq!(starts(&spec, 15), [(10, 20)]);
    }

    #[test]
    fn an_element_opens_a_session_of_one_gap() {
        let spec = WindowSpec::session(30).unwrap();
        assert_eq!(starts(&spec, 100), [(100, 130)]);
        let a = Window::new(0, 10).unwrap();
        assert!(a.touches(&Window::new(10, 20).unwrap()));
        assert!(!a.touches(&Window::new(11, 20).unwrap()));
        assert_eq!(
            a.cover(&Window::new(5, 30).unwrap()),
            Window::new(0, 30).unwrap()
        );
    }

    #[test]
    fn settings_that_cannot_work_are_refused_by_name() {
        assert_eq!(
            WindowSpec::sliding(10, 0).unwrap_err(),
            WindowSpecError::Zero {
                setting: "slide_ms"
            }
        );
        assert_eq!(
            WindowSpec::sliding(10, 11).unwrap_err(),
            WindowSpecError::SlideLongerThanSize {
                size_ms: 10,
                slide_ms: 11
            }
        );
        assert!(matches!(
            WindowSpec::session(u64::MAX),
            Err(WindowSpecError::TooLong {
                setting: "gap_ms",
                ..
            })
        ));
        assert_eq!(
            WindowSpec::sliding(10_001, 10).unwrap_err(),
            WindowSpecError::TooManyWindows {
                size_ms: 10_001,
                slide_ms: 10,
                windows: 1_001
            }
        );
        assert!(WindowSpec::sliding(10_000, 10).is_ok());
        // Extreme event times do not overflow.
        let spec = WindowSpec::sliding(MAX_SPAN_MS, MAX_SPAN_MS / 100).unwrap();
        assert!(spec.windows_of(i64::MAX).next().is_some());
        assert!(spec.windows_of(i64::MIN).next().is_some());
    }
}
