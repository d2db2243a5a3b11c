//! The epoch ticker: the engine's clock for call deadlines and async time
//! slices.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::store::Epoch;

/// Advances the engine's epoch every tick so call deadlines fire; stops on drop.
pub(super) struct EpochTicker {
    /// The epoch it has advanced to (wasmtime does not expose its own).
    pub(super) epoch: Epoch,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(super) fn start(
        engine: wasmtime::Engine,
        tick: std::time::Duration,
    ) -> Result<EpochTicker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let epoch = Epoch::default();
        let counter = epoch.clone();
        let thread = std::thread::Builder::new()
            .name("torvyn-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    // Ours first: a call reading it never sees an epoch
                    // wasmtime has not reached.
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Config(format!("cannot start the epoch ticker thread: {e}")))?;
        Ok(EpochTicker {
            epoch,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
