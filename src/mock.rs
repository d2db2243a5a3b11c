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
type ElementHandler<R> = Handler<dyn FnMut(&Element) -> Result<R> + Send>;
type InitHandler = Handler<dyn FnMut(&str) -> Result<()> + Send>;
type PullHandler = Handler<dyn FnMut() -> Result<Option<Element>> + Send>;
type FlushHandler = Handler<dyn FnMut() -> Result<Vec<Element>> + Send>;

/// A component made of closures. Functions without a handler are not exported.
#[derive(Clone, Default)]
pub struct MockComponent {
    name: String,
    init: InitHandler,
    process: ElementHandler<ProcessOutcome>,
    pull: PullHandler,
    push: ElementHandler<Backpressure>,
    evaluate: ElementHandler<bool>,
    route: ElementHandler<Vec<String>>,
    ingest: ElementHandler<Option<Element>>,
    flush: FlushHandler,
}

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

    /// Exports a lifecycle whose `init` runs `f` (`teardown` does nothing).
    pub fn on_init(mut self, f: impl FnMut(&str) -> Result<()> + Send + 'static) -> Self {
        self.init = Some(Arc::new(Mutex::new(f)));
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
        self
    }

    /// Sets the aggregator's `flush`.
    pub fn on_flush(mut self, f: impl FnMut() -> Result<Vec<Element>> + Send + 'static) -> Self {
        self.flush = Some(Arc::new(Mutex::new(f)));
        self
    }

    fn exports(&self) -> Vec<ExportInfo> {
        let present = [
            (Interface::Lifecycle, self.init.is_some()),
            (Interface::Processor, self.process.is_some()),
            (Interface::Source, self.pull.is_some()),
            (Interface::Sink, self.push.is_some()),
            (Interface::Filter, self.evaluate.is_some()),
            (Interface::Router, self.route.is_some()),
            (Interface::Aggregator, self.ingest.is_some()),
        ];
        present
            .into_iter()
            .filter(|(_, present)| *present)
            .map(|(interface, _)| ExportInfo {
                name: interface.export_name().to_string(),
                interface: Some(interface),
                path: CallPath::Typed,
            })
            .collect()
    }
}

/// An engine whose "compilation" looks up a registered [`MockComponent`] by name.
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

    /// Logs the call and locks its handler, or says the function is not exported.
    fn handler<'h, F: ?Sized>(
        &mut self,
        function: &'static str,
        interface: Interface,
        handler: &'h Handler<F>,
    ) -> Result<std::sync::MutexGuard<'h, F>> {
        self.calls.push(function);
        let handler = handler.as_ref().ok_or_else(|| self.missing(interface))?;
        handler.lock().map_err(|_| Error::Trap {
            site: crate::CallSite {
                component: self.component.name.clone(),
                function: function.into(),
            },
            trap: "a mock handler panicked earlier".into(),
            code: None,
        })
    }
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

    fn init(&mut self, config: &str) -> Result<()> {
        let h = self.component.init.clone();
        let mut f = self.handler("init", Interface::Lifecycle, &h)?;
        f(config)
    }

    fn teardown(&mut self) -> Result<()> {
        self.calls.push("teardown");
        Ok(())
    }

    fn process(&mut self, element: &Element) -> Result<ProcessOutcome> {
        let h = self.component.process.clone();
        let mut f = self.handler("process", Interface::Processor, &h)?;
        f(element)
    }

    fn pull(&mut self) -> Result<Option<Element>> {
        let h = self.component.pull.clone();
        let mut f = self.handler("pull", Interface::Source, &h)?;
        f()
    }

    fn notify_backpressure(&mut self, _signal: Backpressure) -> Result<()> {
        self.calls.push("notify-backpressure");
        Ok(())
    }

    fn push(&mut self, element: &Element) -> Result<Backpressure> {
        let h = self.component.push.clone();
        let mut f = self.handler("push", Interface::Sink, &h)?;
        f(element)
    }

    fn complete(&mut self) -> Result<()> {
        self.calls.push("complete");
        Ok(())
    }

    fn evaluate(&mut self, element: &Element) -> Result<bool> {
        let h = self.component.evaluate.clone();
        let mut f = self.handler("evaluate", Interface::Filter, &h)?;
        f(element)
    }

    fn route(&mut self, element: &Element) -> Result<Vec<String>> {
        let h = self.component.route.clone();
        let mut f = self.handler("route", Interface::Router, &h)?;
        f(element)
    }

    fn ingest(&mut self, element: &Element) -> Result<Option<Element>> {
        let h = self.component.ingest.clone();
        let mut f = self.handler("ingest", Interface::Aggregator, &h)?;
        f(element)
    }

    fn flush(&mut self) -> Result<Vec<Element>> {
        if self.component.ingest.is_none() {
            self.calls.push("flush");
            return Err(self.missing(Interface::Aggregator));
        }
        match self.component.flush.clone() {
            Some(handler) => {
                let h = Some(handler);
                let mut f = self.handler("flush", Interface::Aggregator, &h)?;
                f()
            }
            None => {
                self.calls.push("flush");
                Ok(Vec::new())
            }
        }
    }
}

/// The async method of every contract function: the sync one's result as
/// a ready future (the handlers run to completion at once).
macro_rules! ready_methods {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident $table:tt
        ($($arg:ident : $ty:ty)?) -> $ok:ty; )*) => {
        $( fn $async(&mut self $(, $arg: $ty)?) -> impl Future<Output = Result<$ok>> + Send {
            ready(self.$sync($($arg)?))
        } )*
    };
}

impl AsyncComponentInvoker for MockInstance {
    contract_functions!(ready_methods);
}
