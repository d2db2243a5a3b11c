//! What a flow is made of, before anything runs: nodes (a component in a
//! role, with its own config) and edges between their ports, checked as a
//! whole so that every mistake is named before the first call.

use std::collections::{BTreeMap, BTreeSet};

use super::windowed::{WindowSettings, LATE_PORT};
use crate::config::NodeLimits;
use crate::connect::ConnectorSpec;
use crate::error::{Error, Result};
use crate::interfaces::Interface;

/// A stage of a flow: a component playing one role, or a connector (a
/// source or sink outside the process: [`crate::connect`]).
///
/// ```
/// use torvyn_engine::connect::ConnectorSpec;
/// use torvyn_engine::flow::NodeSpec;
/// use torvyn_engine::Interface;
///
/// let mut upper = NodeSpec::component("upper", "uppercase", Interface::Processor, "");
/// upper.limits.fuel_per_call = Some(5_000_000); // this node's own limit
/// let lines = NodeSpec::connector("in", Interface::Source, ConnectorSpec::new("stdin", Vec::<(&str, &str)>::new()));
/// assert_eq!(lines.component, "connector:stdin");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeSpec {
    /// The node's name, unique in its flow.
    pub name: String,
    /// The name of the component it runs (for a connector: `connector:KIND`).
    pub component: String,
    /// Its role: the interface of the contract it is called through
    /// (source, processor, sink, filter, router or aggregator).
    pub role: Interface,
    /// Text given to its `init`.
    pub config: String,
    /// When the node is a connector, not a component: its kind and settings.
    pub connector: Option<ConnectorSpec>,
    /// Limits of this node's instance over its component's (a flow file's
    /// node `fuel_budget` and `max_memory`): applied when the flow is
    /// instantiated, through [`WasmEngine::with_node_limits`](crate::WasmEngine::with_node_limits).
    pub limits: NodeLimits,
    /// A windowed aggregator's windows (`None` for every other role).
    pub window: Option<WindowSettings>,
}

impl NodeSpec {
    /// A component node.
    pub fn component(name: &str, component: &str, role: Interface, config: &str) -> NodeSpec {
        NodeSpec {
            name: name.to_string(),
            component: component.to_string(),
            role,
            config: config.to_string(),
            connector: None,
            limits: NodeLimits::default(),
            window: None,
        }
    }

    /// A windowed aggregator node (`torvyn:windowing/windowed-aggregator`)
    /// with its windows.
    pub fn windowed(name: &str, component: &str, config: &str, window: WindowSettings) -> NodeSpec {
        NodeSpec {
            window: Some(window),
            ..NodeSpec::component(name, component, Interface::Windowed, config)
        }
    }

    /// A connector node (a source or a sink).
    pub fn connector(name: &str, role: Interface, connector: ConnectorSpec) -> NodeSpec {
        NodeSpec {
            name: name.to_string(),
            component: format!("connector:{}", connector.kind),
            role,
            config: String::new(),
            connector: Some(connector),
            limits: NodeLimits::default(),
            window: None,
        }
    }
}

/// One end of an edge.
///
/// ```
/// use torvyn_engine::flow::EdgeSpec;
///
/// let edge = EdgeSpec::new("split", "even", "evens", "input");
/// assert_eq!((edge.from.node.as_str(), edge.from.port.as_str()), ("split", "even"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRef {
    /// The node.
    pub node: String,
    /// The port: for a router, the name its `route` returns; otherwise
    /// informative (`output`, `input`).
    pub port: String,
}

/// Elements leaving `from` go to `to`.
///
/// ```
/// use torvyn_engine::flow::EdgeSpec;
///
/// // A router's port `odd` to the node `odds`, holding at most 4 elements.
/// let mut edge = EdgeSpec::new("split", "odd", "odds", "input");
/// edge.queue_depth = Some(4);
/// assert_eq!(edge.to_string(), "split.odd -> odds.input");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EdgeSpec {
    /// Where elements leave.
    pub from: PortRef,
    /// Where they arrive.
    pub to: PortRef,
    /// Elements this edge may hold (a flow file's edge `queue_depth`);
    /// `None` = the flow's [`FlowSpec::queue_depth`]. Only an edge leaving a
    /// source has a queue (the async driver's, between the source's pulls
    /// and the rest of the flow): the source's queue holds at most the
    /// smallest depth of its edges. Every other edge is passed depth-first,
    /// one element at a time, so it never holds more than one.
    pub queue_depth: Option<usize>,
}

impl EdgeSpec {
    /// An edge from `from.from_port` to `to.to_port` with the flow's queue depth.
    pub fn new(from: &str, from_port: &str, to: &str, to_port: &str) -> EdgeSpec {
        EdgeSpec {
            from: PortRef {
                node: from.to_string(),
                port: from_port.to_string(),
            },
            to: PortRef {
                node: to.to_string(),
                port: to_port.to_string(),
            },
            queue_depth: None,
        }
    }
}

impl std::fmt::Display for EdgeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{} -> {}.{}",
            self.from.node, self.from.port, self.to.node, self.to.port
        )
    }
}

/// A flow: nodes and the edges between them.
///
/// ```
/// # use std::collections::BTreeMap;
/// # use torvyn_engine::{CompiledComponent, EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// # let mut components = BTreeMap::new();
/// # for (name, bytes) in [
/// #     ("numbers", torvyn_fixtures::counting_source()),
/// #     ("upper", torvyn_fixtures::uppercase_processor()),
/// #     ("printer", torvyn_fixtures::recording_sink()),
/// # ] {
/// #     components.insert(name.to_string(), engine.compile(name, &bytes)?);
/// # }
/// use torvyn_engine::flow::{EdgeSpec, Flow, FlowSpec, NodeSpec};
/// use torvyn_engine::Interface;
///
/// let mut spec = FlowSpec::new(
///     "shout",
///     vec![
///         NodeSpec::component("in", "numbers", Interface::Source, "5"),
///         NodeSpec::component("loud", "upper", Interface::Processor, ""),
///         NodeSpec::component("out", "printer", Interface::Sink, ""),
///     ],
///     vec![EdgeSpec::new("in", "output", "loud", "input"), EdgeSpec::new("loud", "output", "out", "input")],
/// );
/// spec.queue_depth = 8;
/// let report = Flow::instantiate(&engine, spec, &components)?.run(|_, _| {})?;
/// assert_eq!(report.delivered(), 5);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowSpec {
    /// The flow's name.
    pub name: String,
    /// Its nodes.
    pub nodes: Vec<NodeSpec>,
    /// Its edges.
    pub edges: Vec<EdgeSpec>,
    /// Elements that may wait between a source and the rest of the flow on
    /// the async driver; a full queue is backpressure.
    pub queue_depth: usize,
}

/// The default of [`FlowSpec::queue_depth`].
pub const DEFAULT_QUEUE_DEPTH: usize = 64;

/// The roles a node can play, by interface name (any `@version` ignored).
pub fn role_of(interface: &str) -> Option<Interface> {
    let base = interface.split('@').next().unwrap_or(interface);
    [
        Interface::Source,
        Interface::Processor,
        Interface::Sink,
        Interface::Filter,
        Interface::Router,
        Interface::Aggregator,
        Interface::Windowed,
    ]
    .into_iter()
    .find(|role| role.wit_name() == base)
}

/// A flow after [`FlowSpec::validate`]: nodes in an order where every edge
/// goes forward, each with the nodes its ports lead to.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Indices into `FlowSpec::nodes`, upstream before downstream.
    pub(crate) order: Vec<usize>,
    /// Per node: (port, target node) for every edge leaving it.
    pub(crate) outputs: Vec<Vec<(String, usize)>>,
    /// Per node: the sources upstream of it.
    pub(crate) upstream_sources: Vec<BTreeSet<usize>>,
}

impl FlowSpec {
    /// A flow named `name` of `nodes` and `edges`, with the default
    /// [`queue_depth`](FlowSpec::queue_depth) ([`DEFAULT_QUEUE_DEPTH`]).
    pub fn new(name: impl Into<String>, nodes: Vec<NodeSpec>, edges: Vec<EdgeSpec>) -> FlowSpec {
        FlowSpec {
            name: name.into(),
            nodes,
            edges,
            queue_depth: DEFAULT_QUEUE_DEPTH,
        }
    }

    /// A linear flow named `linear`: `source` → each of `stages` in order →
    /// `sink`, every edge from the `output` port to the `input` port.
    /// (Validation still checks the nodes: unique names, a source first, a
    /// sink last.) This is the graph a [`Pipeline`](crate::Pipeline) runs
    /// and `torvyn run`'s linear shortcut builds.
    pub fn linear(source: NodeSpec, stages: Vec<NodeSpec>, sink: NodeSpec) -> FlowSpec {
        let nodes: Vec<NodeSpec> = std::iter::once(source)
            .chain(stages)
            .chain(std::iter::once(sink))
            .collect();
        let port = |node: &NodeSpec, port: &str| PortRef {
            node: node.name.clone(),
            port: port.to_string(),
        };
        let edges = nodes
            .windows(2)
            .map(|pair| EdgeSpec {
                from: port(&pair[0], "output"),
                to: port(&pair[1], "input"),
                queue_depth: None,
            })
            .collect();
        FlowSpec {
            name: "linear".to_string(),
            nodes,
            edges,
            queue_depth: DEFAULT_QUEUE_DEPTH,
        }
    }

    /// Replaces `{name}` with `value` in every connector setting of the
    /// flow (`torvyn run --partition P` and each partition of
    /// `--partitions N` fill `{partition}`).
    ///
    /// ```
    /// use torvyn_engine::connect::ConnectorSpec;
    /// use torvyn_engine::flow::{FlowSpec, NodeSpec};
    /// use torvyn_engine::Interface;
    ///
    /// let input = ConnectorSpec::new("nats", [("subject", "orders.{partition}")]);
    /// let output = ConnectorSpec::new("stdout", [] as [(&str, &str); 0]);
    /// let mut spec = FlowSpec::linear(
    ///     NodeSpec::connector("in", Interface::Source, input),
    ///     vec![],
    ///     NodeSpec::connector("out", Interface::Sink, output),
    /// );
    /// spec.substitute("partition", "3");
    /// let subject = &spec.nodes[0].connector.as_ref().unwrap().settings["subject"];
    /// assert_eq!(subject, "orders.3");
    /// ```
    pub fn substitute(&mut self, name: &str, value: &str) {
        for node in &mut self.nodes {
            if let Some(connector) = &mut node.connector {
                connector.substitute(name, value);
            }
        }
    }

    fn error(&self, detail: String) -> Error {
        Error::Flow {
            flow: self.name.clone(),
            detail,
        }
    }

    /// How many elements source `node`'s queue holds on the async driver:
    /// the smallest `queue_depth` of the edges leaving it, else the flow's.
    pub(crate) fn source_queue_depth(&self, node: usize) -> usize {
        let name = &self.nodes[node].name;
        self.edges
            .iter()
            .filter(|edge| &edge.from.node == name)
            .filter_map(|edge| edge.queue_depth)
            .min()
            .unwrap_or(self.queue_depth)
            .max(1)
    }

    /// Checks the graph: unique node names, edges between known nodes, no
    /// input into a source and no output from a sink, every other node
    /// both fed and drained, at least one source and one sink, no cycle.
    /// The first problem is returned, naming the node or edge at fault.
    pub(crate) fn validate(&self) -> Result<Plan> {
        let mut index = BTreeMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if matches!(node.role, Interface::Lifecycle | Interface::Snapshot) {
                return Err(self.error(format!(
                    "node `{}`: `{}` is not a stage role (source, processor, sink, filter, \
                     router, aggregator, windowed-aggregator)",
                    node.name,
                    node.role.wit_name()
                )));
            }
            if node.connector.is_some() && !matches!(node.role, Interface::Source | Interface::Sink)
            {
                return Err(self.error(format!(
                    "node `{}`: a connector is a source or a sink, not a {}",
                    node.name,
                    node.role.role()
                )));
            }
            if index.insert(node.name.as_str(), i).is_some() {
                return Err(self.error(format!("node `{}` is declared twice", node.name)));
            }
        }
        if !self.nodes.iter().any(|n| n.role == Interface::Source) {
            return Err(self.error("the flow has no source".into()));
        }
        if !self.nodes.iter().any(|n| n.role == Interface::Sink) {
            return Err(self.error("the flow has no sink".into()));
        }
        let mut outputs = vec![Vec::new(); self.nodes.len()];
        let mut inputs = vec![Vec::new(); self.nodes.len()];
        for edge in &self.edges {
            let lookup = |node: &str| {
                index.get(node).copied().ok_or_else(|| {
                    self.error(format!("edge {edge} names an unknown node `{node}`"))
                })
            };
            let (from, to) = (lookup(&edge.from.node)?, lookup(&edge.to.node)?);
            if edge.queue_depth == Some(0) {
                return Err(self.error(format!("edge {edge}: queue_depth must be at least 1")));
            }
            if self.nodes[from].role == Interface::Sink {
                return Err(self.error(format!(
                    "edge {edge} leaves sink `{}`: a sink has no outputs",
                    edge.from.node
                )));
            }
            if self.nodes[to].role == Interface::Source {
                return Err(self.error(format!(
                    "edge {edge} enters source `{}`: a source has no inputs",
                    edge.to.node
                )));
            }
            if from == to {
                return Err(self.error(format!("edge {edge} is a cycle on `{}`", edge.from.node)));
            }
            outputs[from].push((edge.from.port.clone(), to));
            inputs[to].push(from);
        }
        for (i, node) in self.nodes.iter().enumerate() {
            check_windowed(self, i, &outputs[i])?;
            if node.role != Interface::Source && inputs[i].is_empty() {
                return Err(self.error(format!("node `{}` has no incoming edge", node.name)));
            }
            if node.role != Interface::Sink && outputs[i].is_empty() {
                return Err(self.error(format!(
                    "node `{}` has no outgoing edge: its elements would go nowhere",
                    node.name
                )));
            }
        }
        let order = self.topological_order(&outputs, &inputs)?;
        let mut upstream_sources = vec![BTreeSet::new(); self.nodes.len()];
        for &i in &order {
            if self.nodes[i].role == Interface::Source {
                upstream_sources[i].insert(i);
            }
            let here = upstream_sources[i].clone();
            for &(_, to) in &outputs[i] {
                upstream_sources[to].extend(here.iter().copied());
            }
        }
        Ok(Plan {
            order,
            outputs,
            upstream_sources,
        })
    }

    /// Kahn's algorithm; what is left over is on a cycle or after one.
    fn topological_order(
        &self,
        outputs: &[Vec<(String, usize)>],
        inputs: &[Vec<usize>],
    ) -> Result<Vec<usize>> {
        let mut waiting: Vec<usize> = inputs.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..self.nodes.len()).filter(|&i| waiting[i] == 0).collect();
        ready.reverse();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = ready.pop() {
            order.push(i);
            for &(_, to) in &outputs[i] {
                waiting[to] -= 1;
                if waiting[to] == 0 {
                    ready.push(to);
                }
            }
        }
        if order.len() < self.nodes.len() {
            // Left over: the cycles and everything downstream of them. The
            // nodes downstream are peeled off from the end (a leftover node
            // none of whose outputs stays left over is on no cycle), so the
            // message names only the nodes on a cycle.
            let mut left: Vec<bool> = waiting.iter().map(|&w| w > 0).collect();
            loop {
                let peel: Vec<usize> = (0..self.nodes.len())
                    .filter(|&i| left[i] && !outputs[i].iter().any(|&(_, to)| left[to]))
                    .collect();
                if peel.is_empty() {
                    break;
                }
                for i in peel {
                    left[i] = false;
                }
            }
            let cycle: Vec<&str> = (0..self.nodes.len())
                .filter(|&i| left[i])
                .map(|i| self.nodes[i].name.as_str())
                .collect();
            return Err(self.error(format!(
                "the edges form a cycle through {}",
                cycle
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(order)
    }
}

/// Checks a windowed node of `spec`: it has window settings (and only a
/// windowed node has them), and an edge leaving it for its results.
fn check_windowed(spec: &FlowSpec, node: usize, outputs: &[(String, usize)]) -> Result<()> {
    let node_spec = &spec.nodes[node];
    let error = |detail: String| Error::Flow {
        flow: spec.name.clone(),
        detail,
    };
    match (
        node_spec.role == Interface::Windowed,
        node_spec.window.is_some(),
    ) {
        (true, false) => Err(error(format!(
            "node `{}`: a windowed aggregator needs its window (kind, size_ms, ...)",
            node_spec.name
        ))),
        (false, true) => Err(error(format!(
            "node `{}`: only a windowed aggregator (torvyn:windowing/windowed-aggregator) has \
             a window; this node is a {}",
            node_spec.name,
            node_spec.role.role()
        ))),
        (true, true) if outputs.iter().all(|(port, _)| port == LATE_PORT) => Err(error(format!(
            "node `{}`: no edge leaves it but from port `{LATE_PORT}`: its results would go \
             nowhere",
            node_spec.name
        ))),
        _ => Ok(()),
    }
}
