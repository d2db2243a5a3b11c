//! A mock backend for downstream tests: components whose behaviour is given
//! by closures, behind the same [`WasmEngine`] and [`ComponentInvoker`]
//! traits as the real engine, with a log of every call.
//!
//! ```
//! use torvyn_engine::mock::{MockComponent, MockEngine};
//! use torvyn_engine::{ComponentInvoker, Element, ProcessOutcome, WasmEngine};
//!
//! let engine = MockEngine::new().with(
//!     MockComponent::new("upper").on_process(|e| {
//!         Ok(ProcessOutcome::Emit(Element::new(e.meta.sequence, "", e.payload.to_ascii_uppercase())))
//!     }),
//! );
//! let component = engine.compile("upper", b"").unwrap();
//! let mut instance = engine.instantiate(&component).unwrap();
//! let out = instance.process(&Element::new(0, "", "hi")).unwrap();
//! assert_eq!(out, ProcessOutcome::Emit(Element::new(0, "", "HI")));
//! assert_eq!(instance.calls(), ["process"]);
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::contract::contract_functions;
use crate::engine::WasmEngine;
use crate::error::{Error, Result};
use crate::interfaces::{CallPath, ExportInfo, Interface};
use std::future::{ready, Future};

use crate::invoker::{
    AsyncComponentInvoker, Backpressure, ComponentInvoker, Element, ProcessOutcome,
};

type Handler<F> = Option<Arc<Mutex<F>>>;

/// The handler fields of [`MockComponent`], one per contract function
/// (named as the sync invoker's method), and which interfaces they export.
macro_rules! mock_handlers {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident
        ($wit:literal, $interface:ident, $takes:ident, $returns:ident, $required:tt)
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        /// A component made of closures. An interface is exported when one
        /// of its functions has a handler; a function without one is
        /// `NotExported`, unless its interface is exported and the contract
        /// lets it be left out (`teardown`, `notify-backpressure`,
        /// `complete`: then it does nothing).
        ///
        /// ```
        /// use torvyn_engine::mock::{MockComponent, MockEngine};
        /// use torvyn_engine::{ComponentInvoker, Element, WasmEngine};
        ///
        /// let numbers = MockComponent::new("numbers").on_pull({
        ///     let mut next = 0;
        ///     move || {
        ///         next += 1;
        ///         Ok((next <= 2).then(|| Element::new(next, "", next.to_string())))
        ///     }
        /// });
        /// let engine = MockEngine::new().with(numbers);
        /// let mut source = engine.instantiate(&engine.compile("numbers", b"")?)?;
        /// assert!(source.pull()?.is_some());
        /// assert!(source.pull()?.is_some());
        /// assert!(source.pull()?.is_none());
        /// assert!(source.process(&Element::default()).is_err()); // not exported
        /// # Ok::<(), torvyn_engine::Error>(())
        /// ```
        #[derive(Clone, Default)]
        pub struct MockComponent {
            name: String,
            $( $sync: Handler<dyn FnMut($($ty),*) -> Result<$ok> + Send>, )*
        }

        impl MockComponent {
            /// The interfaces with a handled function, in the contract's order.
            fn exported(&self) -> Vec<Interface> {
                let mut exported = Vec::new();
                $( if self.$sync.is_some() && !exported.contains(&Interface::$interface) {
                    exported.push(Interface::$interface);
                } )*
                exported
            }
        }
    };
}
contract_functions!(mock_handlers);

impl std::fmt::Debug for MockComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockComponent")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl MockComponent {
    /// A component with no exports yet.
    pub fn new(name: impl Into<String>) -> Self {
        MockComponent {
            name: name.into(),
            ..MockComponent::default()
        }
    }

    /// Exports a lifecycle whose `init` runs `f` (`teardown` does nothing
    /// unless [`Self::on_teardown`] is set).
    pub fn on_init(mut self, f: impl FnMut(&str) -> Result<()> + Send + 'static) -> Self {
        self.init = Some(Arc::new(Mutex::new(f)));
        self
    }

    /// Sets `teardown` (and exports a lifecycle).
    pub fn on_teardown(mut self, f: impl FnMut() -> Result<()> + Send + 'static) -> Self {
        self.teardown = Some(Arc::new(Mutex::new(f)));
        self
    }

    /// Exports a processor.
    pub fn on_process(
        mut self,
        f: impl FnMut(&Element) -> Result<ProcessOutcome> + Send + 'static,
    ) -> Self {
        self.process = Some(Arc::new(Mutex::new(f)));
        self
    }

    /// Exports a source.
    pub fn on_pull(mut self, f: impl FnMut() -> Result<Option<Element>> + Send + 'static) -> Self {
        self.pull = Some(Arc::new(Mutex::new(f)));
        self
    }

    /// Exports a windowed aggregator: `fold` folds an element into a
    /// window's state, `merge` joins two sessions' states, `emit` makes a
    /// closed window's result.
    pub fn on_windowed(
        mut self,
        fold: impl FnMut(Option<&[u8]>, &Element) -> Result<Vec<u8>> + Send + 'static,
        merge: impl FnMut(&[u8], &[u8]) -> Result<Vec<u8>> + Send + 'static,
        emit: impl FnMut(&str, crate::window::Window, &[u8]) -> Result<Element> + Send + 'static,
    ) -> Self {
        self.fold = Some(Arc::new(Mutex::new(fold)));
        self.merge = Some(Arc::new(Mutex::new(merge)));
        self.emit = Some(Arc::new(Mutex::new(emit)));
        self
    }

    /// Exports a sink (`complete` does nothing).
    pub fn on_push(
        mut self,
        f: impl FnMut(&Element) -> Result<Backpressure> + Send + 'static,
    ) -> Self {
        self.push = Some(Arc::new(Mutex::new(f)));
        self
    }

    /// Exports a filter.
    pub fn on_evaluate(mut self, f: impl FnMut(&Element) -> Result<bool> + Send + 'static) -> Self {
        self.evaluate = Some(Arc::new(Mutex::new(f)));
        self
    }

    /// Exports a router.
    pub fn on_route(
        mut self,
        f: impl FnMut(&Element) -> Result<Vec<String>> + Send + 'static,
    ) -> Self {
        self.route = Some(Arc::new(Mutex::new(f)));
        self
    }

    /// Exports an aggregator (`flush` returns nothing unless [`Self::on_flush`] is set).
    pub fn on_ingest(
        mut self,
        f: impl FnMut(&Element) -> Result<Option<Element>> + Send + 'static,
    ) -> Self {
        self.ingest = Some(Arc::new(Mutex::new(f)));
        if self.flush.is_none() {
            self.flush = Some(Arc::new(Mutex::new(|| Ok(Vec::new()))));
        }
        self
    }

    /// Exports `torvyn:state/snapshot` with `save` (and `restore`, if
    /// [`Self::on_restore`] is set; else a restore is `NotExported`).
    pub fn on_save(mut self, f: impl FnMut() -> Result<Vec<u8>> + Send + 'static) -> Self {
        self.save = Some(Arc::new(Mutex::new(f)));
        self
    }

    /// Sets `restore` of `torvyn:state/snapshot`.
    pub fn on_restore(mut self, f: impl FnMut(&[u8]) -> Result<()> + Send + 'static) -> Self {
        self.restore = Some(Arc::new(Mutex::new(f)));
        self
    }

    /// Sets the aggregator's `flush`.
    pub fn on_flush(mut self, f: impl FnMut() -> Result<Vec<Element>> + Send + 'static) -> Self {
        self.flush = Some(Arc::new(Mutex::new(f)));
        self
    }

    fn exports(&self) -> Vec<ExportInfo> {
        self.exported()
            .into_iter()
            .map(|interface| ExportInfo {
                name: interface.export_name().to_string(),
                interface: Some(interface),
                path: CallPath::Typed,
            })
            .collect()
    }
}

/// An engine whose "compilation" looks up a registered [`MockComponent`] by name.
///
/// ```
/// use torvyn_engine::mock::{MockComponent, MockEngine};
/// use torvyn_engine::WasmEngine;
///
/// let engine = MockEngine::new().with(MockComponent::new("known"));
/// assert!(engine.compile("known", b"").is_ok());
/// assert!(engine.compile("unknown", b"").is_err()); // named in the error
/// ```
#[derive(Debug, Clone, Default)]
pub struct MockEngine {
    components: HashMap<String, MockComponent>,
}

impl MockEngine {
    /// An engine with no components.
    pub fn new() -> Self {
        MockEngine::default()
    }

    /// Registers a component under its name.
    pub fn with(mut self, component: MockComponent) -> Self {
        self.components.insert(component.name.clone(), component);
        self
    }
}

impl WasmEngine for MockEngine {
    type Component = MockComponent;
    type Instance = MockInstance;

    fn compile(&self, name: &str, _bytes: &[u8]) -> Result<MockComponent> {
        self.components
            .get(name)
            .cloned()
            .ok_or_else(|| Error::Compile {
                component: name.to_string(),
                detail: "no mock component registered under this name".into(),
                source: None,
            })
    }

    fn instantiate(&self, component: &MockComponent) -> Result<MockInstance> {
        Ok(MockInstance {
            exports: component.exports(),
            component: component.clone(),
            calls: Vec::new(),
        })
    }

    fn instantiate_async(
        &self,
        component: &MockComponent,
    ) -> impl Future<Output = Result<MockInstance>> + Send {
        ready(self.instantiate(component))
    }
}

/// An instance of a [`MockComponent`]; records the functions called.
///
/// ```
/// use torvyn_engine::mock::{MockComponent, MockEngine};
/// use torvyn_engine::{ComponentInvoker, WasmEngine};
///
/// let engine = MockEngine::new().with(MockComponent::new("stage").on_init(|_| Ok(())));
/// let mut instance = engine.instantiate(&engine.compile("stage", b"")?)?;
/// instance.init("config")?;
/// instance.teardown()?;
/// assert_eq!(instance.calls(), ["init", "teardown"]);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug)]
pub struct MockInstance {
    component: MockComponent,
    exports: Vec<ExportInfo>,
    calls: Vec<&'static str>,
}

impl MockInstance {
    /// The functions called so far, in order.
    pub fn calls(&self) -> &[&'static str] {
        &self.calls
    }

    fn missing(&self, interface: Interface) -> Error {
        Error::NotExported {
            component: self.component.name.clone(),
            interface: interface.wit_name().to_string(),
        }
    }

    /// Logs the call and locks its handler (`None`: there is none).
    fn handler<'h, F: ?Sized>(
        &mut self,
        function: &'static str,
        handler: &'h Handler<F>,
    ) -> Result<Option<std::sync::MutexGuard<'h, F>>> {
        self.calls.push(function);
        let Some(handler) = handler else {
            return Ok(None);
        };
        handler.lock().map(Some).map_err(|_| Error::Trap {
            site: crate::CallSite {
                component: self.component.name.clone(),
                function: function.into(),
            },
            trap: "a mock handler panicked earlier".into(),
            code: None,
            backtrace: None,
        })
    }
}

/// A handled function calls its handler; an unhandled one does nothing if
/// the contract lets its exported interface leave it out, else it is not
/// exported. Every call is logged by its WIT name.
macro_rules! mock_methods {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident
        ($wit:literal, $interface:ident, $takes:ident, $returns:ident, $required:tt)
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        $( fn $sync(&mut self $(, $arg: $ty)*) -> Result<$ok> {
            let handler = self.component.$sync.clone();
            let locked = self.handler($wit, &handler)?;
            match locked {
                Some(mut f) => f($($arg),*),
                None => unhandled!($required, self, $interface),
            }
        } )*
    };
}

/// The result of an unhandled function: required ones are not exported;
/// optional ones (their result is `()`) do nothing in an exported interface.
macro_rules! unhandled {
    (true, $self:ident, $interface:ident) => {
        Err($self.missing(Interface::$interface))
    };
    (false, $self:ident, $interface:ident) => {
        match $self.has(Interface::$interface) {
            true => Ok(()),
            false => Err($self.missing(Interface::$interface)),
        }
    };
}

impl ComponentInvoker for MockInstance {
    fn name(&self) -> &str {
        &self.component.name
    }

    fn exports(&self) -> &[ExportInfo] {
        &self.exports
    }

    fn has(&self, interface: Interface) -> bool {
        self.exports.iter().any(|e| e.interface == Some(interface))
    }

    contract_functions!(mock_methods);
}

/// The async method of every contract function: the sync one's result as
/// a ready future (the handlers run to completion at once).
macro_rules! ready_methods {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident $table:tt
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        $( fn $async(&mut self $(, $arg: $ty)*) -> impl Future<Output = Result<$ok>> + Send {
            ready(self.$sync($($arg),*))
        } )*
    };
}

impl AsyncComponentInvoker for MockInstance {
    contract_functions!(ready_methods);
}
