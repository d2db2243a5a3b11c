//! Watermarks: how far event time has got, per source and per node.
//!
//! A watermark `W` says no element with an event time at or before `W` is
//! still expected; an element that comes anyway is late. A source's
//! watermark trails the largest event time it has seen by the disorder it
//! allows (bounded out-of-orderness); a source silent for its idle time
//! stops holding the others back; a node's watermark is the least over its
//! inputs that are not idle, and never goes back.
//!
//! Time here is two clocks: event time (`i64` ms, from the elements) and
//! the caller's processing time (`u64` ms, monotonic, for idleness), passed
//! in so that both are the caller's to choose (and a test's).

/// One source's watermark: the largest event time it has seen, less the
/// disorder it allows, and whether it has gone idle.
///
/// ```
/// use torvyn_engine::window::SourceWatermark;
///
/// // Elements up to 2 s out of order; idle after 5 s of silence.
/// let mut source = SourceWatermark::new(2_000, Some(5_000), 0);
/// assert_eq!(source.watermark(), None); // nothing seen: holds everything back
/// source.observe(10_000, 100);
/// source.observe(9_000, 200); // out of order: the watermark stays
/// assert_eq!(source.watermark(), Some(7_999));
/// assert!(!source.is_idle(5_099) && source.is_idle(5_200));
/// ```
#[derive(Debug, Clone)]
pub struct SourceWatermark {
    max_out_of_order_ms: u64,
    idle_ms: Option<u64>,
    max_event_ms: Option<i64>,
    last_seen_ms: u64,
}

impl SourceWatermark {
    /// A source whose elements come at most `max_out_of_order_ms` out of
    /// order, idle after `idle_ms` (if given) without an element; `now_ms`
    /// is the processing time it starts at (its first silence counts from
    /// there).
    pub fn new(max_out_of_order_ms: u64, idle_ms: Option<u64>, now_ms: u64) -> SourceWatermark {
        SourceWatermark {
            max_out_of_order_ms: max_out_of_order_ms.min(super::MAX_SPAN_MS),
            idle_ms,
            max_event_ms: None,
            last_seen_ms: now_ms,
        }
    }

    /// An element with event time `event_ms` came at processing time
    /// `now_ms`.
    pub fn observe(&mut self, event_ms: i64, now_ms: u64) {
        self.max_event_ms = Some(self.max_event_ms.map_or(event_ms, |max| max.max(event_ms)));
        self.last_seen_ms = self.last_seen_ms.max(now_ms);
    }

    /// The source's watermark: the largest event time seen less the
    /// allowed disorder, less 1 (an element exactly that far behind is
    /// still on time); `None` before its first element.
    pub fn watermark(&self) -> Option<i64> {
        self.max_event_ms.map(|max| {
            max.saturating_sub(self.max_out_of_order_ms as i64)
                .saturating_sub(1)
        })
    }

    /// Whether the source has had no element for its idle time by
    /// `now_ms` (never, without an idle time).
    pub fn is_idle(&self, now_ms: u64) -> bool {
        self.idle_ms
            .is_some_and(|idle| now_ms.saturating_sub(self.last_seen_ms) >= idle)
    }
}

/// A node's watermark over its inputs: the least of theirs, idle inputs
/// left out, never going back.
///
/// ```
/// use torvyn_engine::window::{NodeWatermark, SourceWatermark};
///
/// let mut node = NodeWatermark::new(vec![
///     SourceWatermark::new(0, Some(1_000), 0),
///     SourceWatermark::new(0, Some(1_000), 0),
/// ]);
/// node.observe(0, 5_000, 10);
/// assert_eq!(node.advance(10), None); // input 1 has said nothing yet
/// node.observe(1, 3_000, 20);
/// assert_eq!(node.advance(20), Some(2_999));
/// // Input 1 goes quiet: after its idle time, input 0 alone counts.
/// node.observe(0, 8_000, 1_500);
/// assert_eq!(node.advance(1_500), Some(7_999));
/// ```
#[derive(Debug, Clone)]
pub struct NodeWatermark {
    inputs: Vec<SourceWatermark>,
    current: Option<i64>,
}

impl NodeWatermark {
    /// A node fed by `inputs`, in the order [`observe`](Self::observe)
    /// names them.
    pub fn new(inputs: Vec<SourceWatermark>) -> NodeWatermark {
        NodeWatermark {
            inputs,
            current: None,
        }
    }

    /// Input `input` delivered an element with event time `event_ms` at
    /// processing time `now_ms` (an input it does not have is ignored).
    pub fn observe(&mut self, input: usize, event_ms: i64, now_ms: u64) {
        if let Some(source) = self.inputs.get_mut(input) {
            source.observe(event_ms, now_ms);
        }
    }

    /// The node's watermark at `now_ms`: the least over its inputs not
    /// idle, held where it was while every input is idle or one that is
    /// not has seen nothing; `None` until it first has one.
    pub fn advance(&mut self, now_ms: u64) -> Option<i64> {
        // An active input that has seen nothing holds everything back
        // (`None` from the `min` over `Option`s would be taken as least,
        // hence the explicit fold).
        let least = self
            .inputs
            .iter()
            .filter(|source| !source.is_idle(now_ms))
            .try_fold(None, |least: Option<i64>, source| {
                let watermark = source.watermark()?;
                Some(Some(least.map_or(watermark, |l| l.min(watermark))))
            })
            .flatten();
        // An input waking from idleness behind the others does not take
        // the watermark back: what it sends before it is late.
        if let Some(least) = least {
            self.current = Some(self.current.map_or(least, |c| c.max(least)));
        }
        self.current
    }

    /// The node's watermark as last advanced.
    pub fn current(&self) -> Option<i64> {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_watermark_trails_its_latest_event_by_its_disorder() {
        let mut source = SourceWatermark::new(100, None, 0);
        for (event, want) in [(1_000, 899), (950, 899), (1_200, 1_099), (0, 1_099)] {
            source.observe(event, 0);
            assert_eq!(source.watermark(), Some(want), "after {event}");
        }
        assert!(!source.is_idle(u64::MAX), "no idle time: never idle");
        // Saturates rather than wrapping.
        let mut source = SourceWatermark::new(100, None, 0);
        source.observe(i64::MIN, 0);
        assert_eq!(source.watermark(), Some(i64::MIN));
    }

    #[test]
    fn the_node_holds_to_its_slowest_active_input_and_never_goes_back() {
        let mut node = NodeWatermark::new(vec![
            SourceWatermark::new(0, Some(100), 0),
            SourceWatermark::new(0, None, 0),
        ]);
        node.observe(0, 50, 0);
        node.observe(1, 10, 0);
        assert_eq!(node.advance(0), Some(9));
        node.observe(1, 70, 1);
        assert_eq!(node.advance(1), Some(49));
        // Input 0 idle (100 ms silent): input 1 alone.
        node.observe(1, 500, 150);
        assert_eq!(node.advance(150), Some(499));
        // Input 0 wakes far behind: the watermark stays.
        node.observe(0, 60, 160);
        assert_eq!(node.advance(160), Some(499));
        assert_eq!(node.current(), Some(499));
    }

    #[test]
    fn with_every_input_idle_the_watermark_holds() {
        let mut node = NodeWatermark::new(vec![SourceWatermark::new(0, Some(10), 0)]);
        assert_eq!(node.advance(5), None);
        assert_eq!(node.advance(50), None, "idle before any element");
        node.observe(0, 1_000, 60);
        assert_eq!(node.advance(60), Some(999));
        assert_eq!(node.advance(1_000), Some(999));
    }
}
