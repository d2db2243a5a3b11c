//! How flow logic calls a stage: the sync [`ComponentInvoker`] (each call a
//! ready future) or the [`AsyncComponentInvoker`]'s own futures. Drivers
//! ([`Pipeline`](crate::Pipeline), [`Flow`](crate::flow::Flow)) are written
//! once as async code over a `Calls` strategy; their sync entry points run
//! it with `run_ready`, their async ones await it.

use std::future::{ready, Future};

use crate::error::Result;
use crate::invoker::{
    AsyncComponentInvoker, Backpressure, ComponentInvoker, Element, ProcessOutcome,
};

/// One way of calling every contract function of a stage `I`.
pub(crate) trait Calls<I> {
    fn init<'a>(stage: &'a mut I, config: &'a str) -> impl Future<Output = Result<()>> + 'a;
    fn teardown(stage: &mut I) -> impl Future<Output = Result<()>> + '_;
    fn pull(stage: &mut I) -> impl Future<Output = Result<Option<Element>>> + '_;
    fn notify(stage: &mut I, signal: Backpressure) -> impl Future<Output = Result<()>> + '_;
    fn process<'a>(
        stage: &'a mut I,
        element: &'a Element,
    ) -> impl Future<Output = Result<ProcessOutcome>> + 'a;
    fn push<'a>(
        stage: &'a mut I,
        element: &'a Element,
    ) -> impl Future<Output = Result<Backpressure>> + 'a;
    fn complete(stage: &mut I) -> impl Future<Output = Result<()>> + '_;
    fn evaluate<'a>(
        stage: &'a mut I,
        element: &'a Element,
    ) -> impl Future<Output = Result<bool>> + 'a;
    fn route<'a>(
        stage: &'a mut I,
        element: &'a Element,
    ) -> impl Future<Output = Result<Vec<String>>> + 'a;
    fn ingest<'a>(
        stage: &'a mut I,
        element: &'a Element,
    ) -> impl Future<Output = Result<Option<Element>>> + 'a;
    fn flush(stage: &mut I) -> impl Future<Output = Result<Vec<Element>>> + '_;
}

/// Declares a `Calls` impl: each function maps to one invoker method,
/// wrapped by `$wrap` (`ready` for the sync invoker, nothing for the async one).
macro_rules! calls {
    ($name:ident, $bound:ident, $($wrap:ident)?; $init:ident, $teardown:ident, $pull:ident,
     $notify:ident, $process:ident, $push:ident, $complete:ident, $evaluate:ident,
     $route:ident, $ingest:ident, $flush:ident) => {
        impl<I: $bound> Calls<I> for $name {
            fn init<'a>(stage: &'a mut I, config: &'a str) -> impl Future<Output = Result<()>> + 'a {
                $($wrap)?(stage.$init(config))
            }
            fn teardown(stage: &mut I) -> impl Future<Output = Result<()>> + '_ {
                $($wrap)?(stage.$teardown())
            }
            fn pull(stage: &mut I) -> impl Future<Output = Result<Option<Element>>> + '_ {
                $($wrap)?(stage.$pull())
            }
            fn notify(stage: &mut I, signal: Backpressure) -> impl Future<Output = Result<()>> + '_ {
                $($wrap)?(stage.$notify(signal))
            }
            fn process<'a>(
                stage: &'a mut I,
                element: &'a Element,
            ) -> impl Future<Output = Result<ProcessOutcome>> + 'a {
                $($wrap)?(stage.$process(element))
            }
            fn push<'a>(
                stage: &'a mut I,
                element: &'a Element,
            ) -> impl Future<Output = Result<Backpressure>> + 'a {
                $($wrap)?(stage.$push(element))
            }
            fn complete(stage: &mut I) -> impl Future<Output = Result<()>> + '_ {
                $($wrap)?(stage.$complete())
            }
            fn evaluate<'a>(
                stage: &'a mut I,
                element: &'a Element,
            ) -> impl Future<Output = Result<bool>> + 'a {
                $($wrap)?(stage.$evaluate(element))
            }
            fn route<'a>(
                stage: &'a mut I,
                element: &'a Element,
            ) -> impl Future<Output = Result<Vec<String>>> + 'a {
                $($wrap)?(stage.$route(element))
            }
            fn ingest<'a>(
                stage: &'a mut I,
                element: &'a Element,
            ) -> impl Future<Output = Result<Option<Element>>> + 'a {
                $($wrap)?(stage.$ingest(element))
            }
            fn flush(stage: &mut I) -> impl Future<Output = Result<Vec<Element>>> + '_ {
                $($wrap)?(stage.$flush())
            }
        }
    };
}

/// The sync invoker, each call a ready future.
pub(crate) struct SyncCalls;

calls!(SyncCalls, ComponentInvoker, ready; init, teardown, pull, notify_backpressure, process,
    push, complete, evaluate, route, ingest, flush);

/// The async invoker's futures.
pub(crate) struct AsyncCalls;

calls!(AsyncCalls, AsyncComponentInvoker, ; init_async, teardown_async, pull_async,
    notify_backpressure_async, process_async, push_async, complete_async, evaluate_async,
    route_async, ingest_async, flush_async);
