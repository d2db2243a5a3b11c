//! A windowed node's settings, and the port its late elements leave by.

use crate::window::WindowSpec;

/// The port a windowed node sends late elements to; its results go to
/// every other edge leaving it.
pub const LATE_PORT: &str = "late";

/// A windowed node's settings (a flow file's `[...nodes.NAME.window]`).
///
/// ```
/// use torvyn_engine::flow::{NodeSpec, WindowSettings};
/// use torvyn_engine::window::WindowSpec;
///
/// let spec = WindowSpec::sliding(5_000, 1_000)?.with_allowed_lateness(1_000);
/// let mut settings = WindowSettings::new(spec);
/// settings.max_out_of_order_ms = 2_000;
/// settings.idle_ms = Some(10_000);
/// let node = NodeSpec::windowed("counts", "count-per-key", "", settings);
/// assert!(node.window.is_some());
/// # Ok::<(), torvyn_engine::window::WindowSpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowSettings {
    /// The windows and their allowed lateness.
    pub spec: WindowSpec,
    /// How far behind the latest event time seen at a source an element
    /// may still come: each upstream source's watermark trails its latest
    /// event time by this much.
    pub max_out_of_order_ms: u64,
    /// A source that sent nothing for this long stops holding the
    /// watermark back (`None`: it always holds it).
    pub idle_ms: Option<u64>,
}

impl WindowSettings {
    /// `spec`'s windows, elements in order (`max_out_of_order_ms` 0), no
    /// source ever idle.
    pub fn new(spec: WindowSpec) -> WindowSettings {
        WindowSettings {
            spec,
            max_out_of_order_ms: 0,
            idle_ms: None,
        }
    }
}
