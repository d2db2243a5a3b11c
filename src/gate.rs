//! The two gates every guest call goes through: [`Blocking`] (`call`) and
//! [`Yielding`] (`call_async` on a fiber). Each contract function is written
//! once, generic over the gate; only the step that enters the guest differs
//! (wasmtime's own `call`/`call_async` share one `call_impl` the same way).
//!
//! The sync API runs a function's future through [`run_ready`]: with the
//! blocking gate nothing in it can suspend, so one poll finishes it. The
//! async API returns the future itself. Components that import WASI are
//! linked with wasmtime-wasi's async bindings (a guest blocked in
//! `pollable.block` must not block a worker thread), so their sync calls run
//! the yielding gate under [`block_on`], inside [`InRuntime`], which also
//! ends host-side waits at the call's deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

/// How a guest function is entered. The gates are markers: the call
/// sites branch on [`Gate::YIELDING`] through [`enter!`](crate::gate::enter),
/// a constant the compiler folds, so each monomorphized body holds exactly
/// one kind of call.
pub(crate) trait Gate: Send {
    /// Whether the call runs on a fiber and may yield to its executor.
    const YIELDING: bool;
}

/// wasmtime's synchronous `call`: nothing awaited ever suspends.
pub(crate) struct Blocking;

impl Gate for Blocking {
    const YIELDING: bool = false;
}

/// wasmtime's `call_async`: the guest runs on a fiber and yields at every
/// time slice and wherever an async host import waits.
pub(crate) struct Yielding;

impl Gate for Yielding {
    const YIELDING: bool = true;
}

/// Enters the guest through gate `$gate`: `$target.call(args)` or
/// `$target.call_async(args).await` (typed funcs, `Func`s and
/// `InstancePre::instantiate` alike).
macro_rules! enter {
    ($gate:ty, $target:expr, $sync:ident / $async:ident ($($arg:expr),*)) => {
        if <$gate as $crate::gate::Gate>::YIELDING {
            $target.$async($($arg),*).await
        } else {
            $target.$sync($($arg),*)
        }
    };
}
pub(crate) use enter;

/// Runs a future built on the [`Blocking`] gate: it has no suspension
/// point, so a single poll completes it.
#[inline(always)]
pub(crate) fn run_ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        // A `Blocking` call never returns `Pending`; every await in the
        // contract functions is a gate call.
        Poll::Pending => unreachable!("a future on the blocking gate suspended"),
    }
}

/// Wakes a parked thread.
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `future` to completion on this thread, parking between polls.
/// (Deadlines are the future's own business: see [`InRuntime`].)
pub(crate) fn block_on<T>(future: impl Future<Output = T>) -> T {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
        std::thread::park();
    }
}

/// A future run with a tokio runtime entered at every poll (the runtime
/// behind WASI's timers and I/O), ended at a wall-clock deadline: the
/// guest's own code is stopped by epoch interruption, but a host import
/// awaiting a timer or I/O is not, so the deadline also ends those waits.
pub(crate) struct InRuntime<F> {
    future: Pin<Box<F>>,
    runtime: tokio::runtime::Handle,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<F: Future> InRuntime<F> {
    pub(crate) fn new(
        future: F,
        runtime: tokio::runtime::Handle,
        deadline: Option<Instant>,
    ) -> Self {
        let deadline = deadline.map(|deadline| {
            let _entered = runtime.enter();
            Box::pin(tokio::time::sleep_until(deadline.into()))
        });
        InRuntime {
            future: Box::pin(future),
            runtime,
            deadline,
        }
    }
}

impl<F: Future> Future for InRuntime<F> {
    /// `None` when the deadline passed first.
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let _entered = this.runtime.enter();
        if let Poll::Ready(value) = this.future.as_mut().poll(context) {
            return Poll::Ready(Some(value));
        }
        if let Some(deadline) = &mut this.deadline {
            if deadline.as_mut().poll(context).is_ready() {
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    }
}

/// The tokio runtime that WASI's host futures (timers, I/O, blocking file
/// work) run on, one per engine, made when the first WASI component is
/// compiled. Calls enter it at every poll ([`InRuntime`]), so WASI guests
/// work from any thread and any executor, and its own worker thread drives
/// the timers while the caller's thread waits. Shut down in the background
/// when the last component holding it is gone (dropping a runtime inside
/// another one's worker would panic).
pub(crate) struct WasiRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl WasiRuntime {
    pub(crate) fn new() -> std::io::Result<WasiRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("torvyn-wasi")
            .enable_all()
            .build()?;
        Ok(WasiRuntime {
            runtime: Some(runtime),
        })
    }

    pub(crate) fn handle(&self) -> tokio::runtime::Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }
}

impl Drop for WasiRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

thread_local! {
    /// The tokio task running on this thread and the epoch its turn began.
    static TURN: std::cell::Cell<Option<(tokio::task::Id, u64)>> = const { std::cell::Cell::new(None) };
}

/// Whether the tokio task making an async call has had the thread for at
/// least a whole time slice (`slice_ticks` epoch ticks), and should yield
/// before the call: a flow whose calls all finish within a slice then still
/// lets the other tasks on its worker run, yet keeps its caches warm for a
/// slice. (Yielding more often, e.g. per call through tokio's cooperative
/// budget, cost 1,000 concurrent flows a fifth of their rate.) Outside
/// tokio: never.
pub(crate) fn turn_over(epoch: u64, slice_ticks: u64) -> bool {
    TURN.with(|turn| {
        // Within the slice of the turn on record, whichever task's it is,
        // the task running now has not had a whole slice: its own turn
        // began then or later. This is every call but one a slice, and it
        // costs a thread-local read (asking tokio for the task's id cost
        // ~15 ns a call, a tenth of the async flows' overhead).
        if let Some((_, started)) = turn.get() {
            if epoch <= started + slice_ticks {
                return false;
            }
        }
        let Some(task) = tokio::task::try_id() else {
            return false;
        };
        match turn.get() {
            Some((current, _)) if current == task => {
                // After the yield, its next call starts a new turn.
                turn.set(None);
                true
            }
            _ => {
                turn.set(Some((task, epoch)));
                false
            }
        }
    })
}
