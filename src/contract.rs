//! The contract's stage functions, each described once.
//!
//! [`contract_functions!`] lists every function a stage can export
//! (`torvyn:streaming`, `torvyn:filtering`, `torvyn:aggregation`): its
//! documentation, its Rust names (sync and async), its WIT name and
//! interface, what it takes, what it returns and whether an interface may be
//! exported without it. It is a table other macros read: each place that
//! needs one item per function passes a macro that turns one entry into
//! that item. From it come both invoker traits
//! ([`ComponentInvoker`](crate::ComponentInvoker),
//! [`AsyncComponentInvoker`](crate::AsyncComponentInvoker)), the drivers'
//! `Calls`, the engine's sync and async entry points, the mock's handlers
//! and methods (sync and async), and [`FUNCTIONS`], which serves what is looked up at run time
//! (the dynamic path's plans, the interface a `NotExported` error names).
//!
//! Adding a function to the contract: one entry here; the compiler then asks
//! for what only a person can write, each in one place: its body on the
//! wasmtime instance (`instance/body.rs`: the typed export it calls and how
//! its output is taken), how the dynamic path reads its result `Val`
//! (`dynamic/call.rs`, once per result shape: a new shape only) and,
//! optionally, a setter for its mock handler (`mock.rs`: `on_...`; the
//! handler field and the method are generated).

use crate::interfaces::Interface;

/// The table. `$each!` receives every entry, in the form
/// `/// docs  fn sync / async ("wit-name", Interface, Takes, Returns, required) (arg: Type) -> Ok;`
/// (`Ok` is what `Result` carries).
macro_rules! contract_functions {
    ($each:ident) => {
        $each! {
            /// `lifecycle.init`: the node's configuration, before any other call.
            fn init / init_async ("init", Lifecycle, Config, Unit, false)
                (config: &str) -> ();
            /// `lifecycle.teardown`: the last call; a component without it has
            /// nothing to release.
            fn teardown / teardown_async ("teardown", Lifecycle, Nothing, Nothing, false)
                () -> ();
            /// `processor.process`.
            fn process / process_async ("process", Processor, Element, ProcessResult, true)
                (element: &Element) -> ProcessOutcome;
            /// `source.pull`; `None` when exhausted.
            fn pull / pull_async ("pull", Source, Nothing, OptionalOutput, true)
                () -> Option<Element>;
            /// `source.notify-backpressure`; a source without it is not told.
            fn notify_backpressure / notify_backpressure_async
                ("notify-backpressure", Source, Signal, Nothing, false)
                (signal: Backpressure) -> ();
            /// `sink.push`.
            fn push / push_async ("push", Sink, Element, Signal, true)
                (element: &Element) -> Backpressure;
            /// `sink.complete`: the stream has ended.
            fn complete / complete_async ("complete", Sink, Nothing, Unit, false)
                () -> ();
            /// `filter.evaluate`: `true` keeps the element.
            fn evaluate / evaluate_async ("evaluate", Filter, Element, Bool, true)
                (element: &Element) -> bool;
            /// `router.route`: the output ports the element goes to.
            fn route / route_async ("route", Router, Element, Strings, true)
                (element: &Element) -> Vec<String>;
            /// `aggregator.ingest`: absorbs the element; `Some` emits an aggregate.
            fn ingest / ingest_async ("ingest", Aggregator, Element, OptionalOutput, true)
                (element: &Element) -> Option<Element>;
            /// `aggregator.flush`: the aggregates still held, at the end of the stream.
            fn flush / flush_async ("flush", Aggregator, Nothing, Outputs, true)
                () -> Vec<Element>;
            /// `windowed-aggregator.fold`: the state of one key's window with
            /// the element in it, from its state before (`None`: the element
            /// opens the window).
            fn fold / fold_async ("fold", Windowed, StateAndElement, Bytes, true)
                (state: Option<&[u8]>, element: &Element) -> Vec<u8>;
            /// `windowed-aggregator.merge`: one state for two sessions of a
            /// key that an element joined, the earlier session's first.
            fn merge / merge_async ("merge", Windowed, TwoStates, Bytes, true)
                (earlier: &[u8], later: &[u8]) -> Vec<u8>;
            /// `windowed-aggregator.emit`: the result of `key`'s `window`,
            /// closed with `state`; called once per window.
            fn emit / emit_async ("emit", Windowed, WindowAndState, Output, true)
                (key: &str, window: crate::window::Window, state: &[u8]) -> Element;
            /// `snapshot.save`: the stage's state, opaque to the host (at most
            /// [`Limits::max_state_bytes`](crate::Limits::max_state_bytes)).
            fn save / save_async ("save", Snapshot, Nothing, Bytes, true)
                () -> Vec<u8>;
            /// `snapshot.restore`: takes over state `save` returned (after
            /// `init`, before any element).
            fn restore / restore_async ("restore", Snapshot, State, Unit, true)
                (state: &[u8]) -> ();
        }
    };
}
pub(crate) use contract_functions;

/// What a contract function takes besides the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Takes {
    /// Nothing.
    Nothing,
    /// The node's configuration, a `string`.
    Config,
    /// A `stream-element` (its payload and flow context lent, borrowed).
    Element,
    /// A `backpressure-signal`.
    Signal,
    /// A stage's saved state, a `list<u8>`.
    State,
    /// A window's state so far, `option<list<u8>>`, and a `stream-element`.
    StateAndElement,
    /// Two windows' states, `list<u8>` each.
    TwoStates,
    /// A `window` (key, start, end) and its state, a `list<u8>`.
    WindowAndState,
}

/// The WIT result of a contract function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Returns {
    /// No result at all: the function cannot report a failure.
    Nothing,
    /// `result<_, process-error>`.
    Unit,
    /// `result<process-result, process-error>`.
    ProcessResult,
    /// `result<option<output-element>, process-error>`.
    OptionalOutput,
    /// `result<backpressure-signal, process-error>`.
    Signal,
    /// `result<bool, process-error>`.
    Bool,
    /// `result<list<string>, process-error>`.
    Strings,
    /// `result<list<output-element>, process-error>`.
    Outputs,
    /// `result<list<u8>, process-error>`.
    Bytes,
    /// `result<output-element, process-error>`.
    Output,
}

/// One contract function, as looked up at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Function {
    /// Its WIT name, e.g. `notify-backpressure`.
    pub(crate) wit: &'static str,
    /// The interface that declares it.
    pub(crate) interface: Interface,
    /// Its parameter.
    pub(crate) takes: Takes,
    /// Its result.
    pub(crate) returns: Returns,
    /// Whether a component exporting the interface must export it (else
    /// it is refused when compiled).
    pub(crate) required: bool,
}

macro_rules! function_table {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident
        ($wit:literal, $interface:ident, $takes:ident, $returns:ident, $required:literal)
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        /// Every contract function, in the table's order.
        pub(crate) const FUNCTIONS: &[Function] = &[$(Function {
            wit: $wit,
            interface: Interface::$interface,
            takes: Takes::$takes,
            returns: Returns::$returns,
            required: $required,
        },)*];
    };
}
contract_functions!(function_table);

/// The functions `interface` declares, in the contract's order.
pub(crate) fn functions_of(interface: Interface) -> impl Iterator<Item = &'static Function> {
    FUNCTIONS.iter().filter(move |f| f.interface == interface)
}

/// The interface that declares the function named `wit` (`None`: no
/// contract function has that name).
pub(crate) fn interface_of(wit: &str) -> Option<Interface> {
    FUNCTIONS.iter().find(|f| f.wit == wit).map(|f| f.interface)
}

#[cfg(test)]
mod tests {
    use super::*;
    use torvyn_build::wit_parser::{Resolve, Type, TypeDefKind};

    /// A type's name as the WIT writes it, following aliases (`use`).
    fn named(resolve: &Resolve, ty: &Type) -> String {
        match ty {
            Type::Bool => "bool".into(),
            Type::String => "string".into(),
            Type::U8 => "u8".into(),
            Type::Id(id) => {
                let def = &resolve.types[*id];
                match (&def.kind, &def.name) {
                    (TypeDefKind::Type(inner), _) => named(resolve, inner),
                    (TypeDefKind::Option(inner), None) => {
                        format!("option<{}>", named(resolve, inner))
                    }
                    (TypeDefKind::List(inner), None) => format!("list<{}>", named(resolve, inner)),
                    (TypeDefKind::Result(result), None) => format!(
                        "result<{}, {}>",
                        result.ok.as_ref().map_or("_".into(), |t| named(resolve, t)),
                        result
                            .err
                            .as_ref()
                            .map_or("_".into(), |t| named(resolve, t)),
                    ),
                    (_, Some(name)) => name.clone(),
                    (kind, None) => format!("{kind:?}"),
                }
            }
            other => format!("{other:?}"),
        }
    }

    /// The table says of every function exactly what `wit/` declares: its
    /// interface, parameter and result; and no function is missing. (The
    /// typed bindings are generated from the same files.)
    #[test]
    fn the_table_matches_the_wit() {
        let mut resolve = Resolve::default();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
        torvyn_build::load_wit_dir(&mut resolve, &dir).expect("the contract's WIT");
        let mut seen = 0;
        for interface in Interface::ALL {
            let (package, name) = interface.wit_name().split_once('/').unwrap();
            let declared = resolve
                .interfaces
                .iter()
                .map(|(_, i)| i)
                .find(|i| {
                    i.name.as_deref() == Some(name)
                        && i.package.is_some_and(|p| {
                            resolve.packages[p].name.to_string().starts_with(package)
                        })
                })
                .unwrap_or_else(|| panic!("{} in wit/", interface.wit_name()));
            let in_table: Vec<&str> = functions_of(interface).map(|f| f.wit).collect();
            let in_wit: Vec<&str> = declared.functions.keys().map(String::as_str).collect();
            assert_eq!(in_table, in_wit, "{}", interface.wit_name());
            for function in functions_of(interface) {
                seen += 1;
                let wit = &declared.functions[function.wit];
                let params: Vec<String> =
                    wit.params.iter().map(|p| named(&resolve, &p.ty)).collect();
                let takes = match function.takes {
                    Takes::Nothing => vec![],
                    Takes::Config => vec!["string".to_string()],
                    Takes::Element => vec!["stream-element".to_string()],
                    Takes::Signal => vec!["backpressure-signal".to_string()],
                    Takes::State => vec!["list<u8>".to_string()],
                    Takes::StateAndElement => {
                        vec!["option<list<u8>>".into(), "stream-element".into()]
                    }
                    Takes::TwoStates => vec!["list<u8>".into(), "list<u8>".into()],
                    Takes::WindowAndState => vec!["window".into(), "list<u8>".into()],
                };
                assert_eq!(params, takes, "the parameters of `{}`", function.wit);
                let result = wit.result.as_ref().map(|t| named(&resolve, t));
                let ok = match function.returns {
                    Returns::Nothing => None,
                    Returns::Unit => Some("_"),
                    Returns::ProcessResult => Some("process-result"),
                    Returns::OptionalOutput => Some("option<output-element>"),
                    Returns::Signal => Some("backpressure-signal"),
                    Returns::Bool => Some("bool"),
                    Returns::Strings => Some("list<string>"),
                    Returns::Outputs => Some("list<output-element>"),
                    Returns::Bytes => Some("list<u8>"),
                    Returns::Output => Some("output-element"),
                };
                let returns = ok.map(|ok| format!("result<{ok}, process-error>"));
                assert_eq!(result, returns, "the result of `{}`", function.wit);
            }
        }
        assert_eq!(
            seen,
            FUNCTIONS.len(),
            "every entry belongs to a stage interface"
        );
        assert_eq!(interface_of("notify-backpressure"), Some(Interface::Source));
        assert_eq!(interface_of("nope"), None);
    }
}
