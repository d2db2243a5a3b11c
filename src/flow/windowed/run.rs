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
    pub(in crate::flow) fn observe_event_time(&mut self, source: usize, element: &Element) {
        for windowing in &mut self.windowing {
            if let Some(input) = windowing.sources.iter().position(|&s| s == source) {
                let now = windowing.now_ms();
                windowing.watermark.observe(input, event_ms(element), now);
            }
        }
    }

    /// Between elements: each windowed node's watermark moved, and the
    /// windows it closes emitted and sent on.
    pub(in crate::flow) async fn close_windows<C: Calls<I>>(
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
            output.meta.timestamp_ns = (window.window().max_timestamp().max(0) as u64) * 1_000_000;
            output.meta.key = window.key().to_owned();
            if let Some(tracking) = &mut self.tracking {
                tracking.name_outputs(&window.result_id(&self.spec.nodes[node].name));
            }
            self.send_on::<C>(node, Port::Results, output, delivered)
                .await?;
        }
        Ok(())
    }
}
