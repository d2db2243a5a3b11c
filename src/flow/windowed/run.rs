//! What the running graph does with its windowed nodes: each element
//! folded in (or late), the watermark moved as elements enter, closed
//! windows' results emitted and sent on.

use std::marker::PhantomData;
use std::time::Instant;

use super::nodes::{event_ms, GuestFold};
use super::settings::LATE_PORT;
use crate::calls::Calls;
use crate::error::Result;
use crate::flow::graph::{Graph, Port};
use crate::invoker::{ComponentInvoker, Element};
use crate::window::ClosedWindow;

impl<I: ComponentInvoker> Graph<'_, I> {
    /// Windowed `node` with one element: folded into its windows, or, when
    /// every one of them has closed, late (to the `late` port).
    pub(in crate::flow) async fn handle_windowed<C: Calls<I>>(
        &mut self,
        node: usize,
        element: Element,
        work: &mut Vec<(usize, Element)>,
        started: Option<Instant>,
    ) -> Result<()> {
        let Some(windowing) = self.windowing.iter_mut().find(|w| w.node == node) else {
            unreachable!("every windowed node has its windows");
        };
        let Some(stage) = &mut self.stages[node] else {
            unreachable!("only sources are taken out");
        };
        let mut fold = GuestFold::<I, C> {
            instance: stage.slot.instance(),
            element: &element,
            calls: PhantomData,
        };
        let placed = windowing
            .windows
            .add_async(&element.meta.key, event_ms(&element), &mut fold)
            .await;
        stage.report.latencies.stop(started);
        if placed?.is_late() {
            stage.report.late += 1;
            self.push_targets(work, node, Port::Named(LATE_PORT), element);
        }
        Ok(())
    }

    /// An element entering from `source`: every windowed node downstream
    /// of it sees its event time.
    fn observe_event_time(&mut self, source: usize, element: &Element) {
        for windowing in &mut self.windowing {
            if let Some(input) = windowing.sources.iter().position(|&s| s == source) {
                let now = windowing.now_ms();
                windowing.watermark.observe(input, event_ms(element), now);
            }
        }
    }

    /// Between elements: each windowed node's watermark moved, and the
    /// windows it closes emitted and sent on.
    async fn close_windows<C: Calls<I>>(
        &mut self,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        for at in 0..self.windowing.len() {
            let windowing = &mut self.windowing[at];
            let now = windowing.now_ms();
            let Some(watermark) = windowing.watermark.advance(now) else {
                continue;
            };
            let closed = windowing.windows.advance(watermark);
            let (node, moved) = (windowing.node, windowing.windows.watermark());
            self.stage(node).report.watermark_ms = moved;
            self.emit_closed::<C>(at, closed, delivered).await?;
        }
        Ok(())
    }

    /// An input entering from `source` in a flow with windowed nodes: their
    /// watermarks see its event time, it goes down the graph, then they
    /// move. (A flow without windows calls `forward` itself: see
    /// `input!` in graph.rs.)
    pub(in crate::flow) async fn input_windowed<C: Calls<I>>(
        &mut self,
        source: usize,
        element: Element,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        self.observe_event_time(source, &element);
        self.forward::<C>(source, Port::All, element, delivered)
            .await?;
        self.close_windows_after_input::<C>(delivered).await
    }

    /// [`close_windows`](Self::close_windows) after an input went through.
    /// On [`Flow::serve`](crate::flow::Flow::serve) a failed `emit` is not
    /// the input's failure (it is folded in; handing it back would fold it
    /// twice): it is logged and counted, its windows are back and close
    /// again when the watermark next moves, and a poisoned instance is
    /// replaced at its next call's failure. A run without recovery fails.
    async fn close_windows_after_input<C: Calls<I>>(
        &mut self,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        match self.close_windows::<C>(delivered).await {
            Err(error) if self.tracking.is_some() => {
                tracing::warn!(flow = %self.spec.name, %error,
                    "a window's result failed; it is emitted again when the watermark next moves");
                Ok(())
            }
            closed => closed,
        }
    }

    /// At the end of the stream: windowed `node`'s every window closes.
    pub(in crate::flow) async fn close_all_windows<C: Calls<I>>(
        &mut self,
        node: usize,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        let Some(at) = self.windowing.iter().position(|w| w.node == node) else {
            return Ok(());
        };
        let closed = self.windowing[at].windows.close_all();
        self.emit_closed::<C>(at, closed, delivered).await
    }

    /// Asks the guest for each closed window's result and sends it on,
    /// named by the window (`ClosedWindow::result_id`: the same id on every
    /// replay). A failed `emit` puts its window and those after it back:
    /// they close again when the watermark next moves.
    async fn emit_closed<C: Calls<I>>(
        &mut self,
        at: usize,
        closed: Vec<ClosedWindow>,
        delivered: &mut impl FnMut(&str, &Element),
    ) -> Result<()> {
        let node = self.windowing[at].node;
        let mut closed = closed.into_iter();
        while let Some(window) = closed.next() {
            let stage = self.stage(node);
            let started = stage.report.latencies.start();
            let emitted = C::emit(
                stage.slot.instance(),
                window.key(),
                window.window(),
                window.state(),
            )
            .await;
            stage.report.latencies.stop(started);
            let mut output = match emitted {
                Ok(output) => output,
                Err(error) => {
                    stage.report.errors += 1;
                    self.failed_at = Some(node);
                    let windows = &mut self.windowing[at].windows;
                    for back in std::iter::once(window).chain(closed) {
                        let (key, window) = (back.key().to_owned(), back.window());
                        windows.restore(&key, window, back.into_state());
                    }
                    return Err(error);
                }
            };
            stage.report.elements_out += 1;
            // The window's last time, in ns (times before the epoch: 0).
            let last_ms = window.window().max_timestamp().max(0) as u64;
            output.meta.timestamp_ns = last_ms.saturating_mul(1_000_000);
            output.meta.key = window.key().to_owned();
            if let Some(tracking) = &mut self.tracking {
                tracking.name_outputs(&window.result_id(&self.spec.nodes[node].name));
            }
            self.forward::<C>(node, Port::Results, output, delivered)
                .await?;
        }
        Ok(())
    }
}
