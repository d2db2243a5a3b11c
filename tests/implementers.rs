//! An embedder's own invoker: a type implementing `ComponentInvoker` and
//! `AsyncComponentInvoker` writes only the contract functions its component
//! serves. Every other one has a default body that answers `NotExported`,
//! so a function added to the contract (as `save`/`restore` were) breaks no
//! implementer: this file, written with `process` alone, keeps compiling.

use torvyn_engine::{
    AsyncComponentInvoker, ComponentInvoker, Element, Error, ExportInfo, Interface, ProcessOutcome,
};

/// An in-process stage that uppercases: only `process` is written.
struct Upper;

impl ComponentInvoker for Upper {
    fn name(&self) -> &str {
        "upper"
    }

    fn exports(&self) -> &[ExportInfo] {
        &[]
    }

    fn has(&self, interface: Interface) -> bool {
        interface == Interface::Processor
    }

    fn process(&mut self, element: &Element) -> torvyn_engine::Result<ProcessOutcome> {
        let upper = element.payload.to_ascii_uppercase();
        Ok(ProcessOutcome::Emit(Element::new(
            element.meta.sequence,
            element.meta.content_type.clone(),
            upper,
        )))
    }
}

impl AsyncComponentInvoker for Upper {
    async fn process_async(&mut self, element: &Element) -> torvyn_engine::Result<ProcessOutcome> {
        self.process(element)
    }
}

#[test]
fn an_implementer_writes_only_what_it_serves() {
    let mut upper = Upper;
    let out = upper
        .process(&Element::new(0, "text/plain", "abc"))
        .unwrap();
    assert_eq!(
        out,
        ProcessOutcome::Emit(Element::new(0, "text/plain", "ABC"))
    );
    // The functions it did not write answer that it does not export them.
    match upper.pull() {
        Err(Error::NotExported {
            component,
            interface,
        }) => {
            assert_eq!(component, "upper");
            assert_eq!(interface, Interface::Source.to_string());
        }
        other => panic!("expected NotExported, got {other:?}"),
    }
    let saved = futures_lite_block_on(upper.save_async());
    assert!(matches!(saved, Err(Error::NotExported { .. })), "{saved:?}");
}

/// Polls a future that is ready at once (the defaults are).
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("a default body is ready at once"),
    }
}
