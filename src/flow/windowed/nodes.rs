//! Each windowed node's windows and watermark during a run, and the
//! guest's `fold` and `merge` with the element at hand.

use std::marker::PhantomData;
use std::time::Instant;

use crate::calls::Calls;
use crate::error::{Error, Result};
use crate::flow::spec::Plan;
use crate::flow::FlowSpec;
use crate::invoker::Element;
use crate::window::{AsyncWindowFold, KeyedWindows, NodeWatermark, SourceWatermark, Window};

/// One windowed node during a run.
pub(in crate::flow) struct Windowing {
    pub(in crate::flow) node: usize,
    pub(super) windows: KeyedWindows,
    pub(super) watermark: NodeWatermark,
    /// The source node of each of the watermark's inputs.
    pub(super) sources: Vec<usize>,
    started: Instant,
    /// The watermark when the windows were last taken for the store.
    taken_at: Option<i64>,
}

impl Windowing {
    /// Milliseconds since the run began: the clock of idleness.
    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The node's windows (the service stores and restores them).
    pub(in crate::flow) fn windows(&mut self) -> &mut KeyedWindows {
        &mut self.windows
    }

    /// Whether a state or the watermark changed since this was last
    /// asked (what the store has is then out of date).
    pub(in crate::flow) fn take_changed(&mut self) -> bool {
        let states = self.windows.clear_changes();
        let watermark = self.windows.watermark();
        let moved = std::mem::replace(&mut self.taken_at, watermark) != watermark;
        states || moved
    }
}

/// The windowed nodes of `spec`, each with a watermark over the sources
/// upstream of it.
pub(in crate::flow) fn windowing_of(spec: &FlowSpec, plan: &Plan) -> Vec<Windowing> {
    let started = Instant::now();
    spec.nodes
        .iter()
        .enumerate()
        .filter_map(|(node, node_spec)| {
            let settings = node_spec.window.as_ref()?;
            let sources: Vec<usize> = plan.upstream_sources[node].iter().copied().collect();
            let inputs = sources
                .iter()
                .map(|_| SourceWatermark::new(settings.max_out_of_order_ms, settings.idle_ms, 0))
                .collect();
            Some(Windowing {
                node,
                windows: KeyedWindows::new(settings.spec),
                watermark: NodeWatermark::new(inputs),
                sources,
                started,
                taken_at: None,
            })
        })
        .collect()
}

/// An element's event time in milliseconds.
pub(super) fn event_ms(element: &Element) -> i64 {
    (element.meta.timestamp_ns / 1_000_000) as i64
}

/// The guest's `fold` and `merge` with the element at hand.
pub(super) struct GuestFold<'e, I, C> {
    pub(super) instance: &'e mut I,
    pub(super) element: &'e Element,
    pub(super) calls: PhantomData<C>,
}

impl<I, C: Calls<I>> AsyncWindowFold for GuestFold<'_, I, C> {
    type Error = Error;

    fn fold(
        &mut self,
        _key: &str,
        _window: Window,
        state: Option<&[u8]>,
    ) -> impl std::future::Future<Output = Result<Vec<u8>>> {
        C::fold(self.instance, state, self.element)
    }

    fn merge(
        &mut self,
        _key: &str,
        _window: Window,
        earlier: &[u8],
        later: &[u8],
    ) -> impl std::future::Future<Output = Result<Vec<u8>>> {
        C::merge(self.instance, earlier, later)
    }
}
