//! What runs at a node: a component instance or a connector.

use crate::connect::{SinkConnector, SourceConnector};

/// What runs at a node: a component instance or a connector.
pub(crate) enum Slot<I> {
    Component(I),
    Source(Box<dyn SourceConnector>),
    Sink(Box<dyn SinkConnector>),
}

impl<I> Slot<I> {
    /// The component instance. Connector slots only exist in flows run by
    /// [`Flow::serve`], which never asks a connector for one.
    pub(super) fn instance(&mut self) -> &mut I {
        match self {
            Slot::Component(instance) => instance,
            Slot::Source(_) | Slot::Sink(_) => {
                unreachable!("connector nodes are driven by Flow::serve")
            }
        }
    }
}
