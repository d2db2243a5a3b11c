//! How flow logic calls a stage: the sync [`ComponentInvoker`] (each call a
//! ready future) or the [`AsyncComponentInvoker`]'s own futures. Drivers
//! ([`Pipeline`](crate::Pipeline), [`Flow`](crate::flow::Flow)) are written
//! once as async code over a `Calls` strategy; their sync entry points run
//! it with `run_ready`, their async ones await it.

use std::future::{ready, Future};

use crate::contract::contract_functions;
use crate::error::Result;
use crate::invoker::{
    AsyncComponentInvoker, Backpressure, ComponentInvoker, Element, ProcessOutcome,
};

/// The `Calls` function of every contract function, named as the sync
/// invoker's method.
macro_rules! calls_functions {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident $table:tt
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        $( $(#[$doc])* fn $sync(stage: &mut I $(, $arg: $ty)*)
            -> impl Future<Output = Result<$ok>>; )*
    };
}

/// One way of calling every contract function of a stage `I`.
pub(crate) trait Calls<I> {
    contract_functions!(calls_functions);
}

/// The sync invoker, each call a ready future.
pub(crate) struct SyncCalls;

macro_rules! sync_calls {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident $table:tt
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        impl<I: ComponentInvoker> Calls<I> for SyncCalls {
            $( fn $sync(stage: &mut I $(, $arg: $ty)*) -> impl Future<Output = Result<$ok>> {
                ready(stage.$sync($($arg),*))
            } )*
        }
    };
}
contract_functions!(sync_calls);

/// The async invoker's futures.
pub(crate) struct AsyncCalls;

macro_rules! async_calls {
    ($( $(#[$doc:meta])* fn $sync:ident / $async:ident $table:tt
        ($($arg:ident : $ty:ty),*) -> $ok:ty; )*) => {
        impl<I: AsyncComponentInvoker> Calls<I> for AsyncCalls {
            $( fn $sync(stage: &mut I $(, $arg: $ty)*) -> impl Future<Output = Result<$ok>> {
                stage.$async($($arg),*)
            } )*
        }
    };
}
contract_functions!(async_calls);
