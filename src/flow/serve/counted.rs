//! What stored states already counted: the inputs acknowledged at a stop
//! because a stored state absorbed them, recorded beside that state (key
//! `KEY==counted`, one origin a line) and read back with it, so that a
//! redelivery of one is acknowledged again instead of counted twice.
//!
//! A broker may deliver again an input whose ack looked confirmed: the
//! cluster test saw it in about one stop in six while the consumer's
//! leader was being elected — the "confirmation" was the server's "no
//! responders" status, which async-nats' `double_ack` took as one (the NATS
//! source now confirms with a request that fails on it, and none came again
//! in 8 runs since). A leader that confirms an ack and dies before its
//! followers have it can still lose it. The restored state already holds
//! that input, so processing it again would count it twice. Every input in
//! the record is finished — its outputs
//! stored, every state holding it stored, its ack sent — so skipping it is
//! right whenever it comes again, even after the record's state was
//! emitted. The record keeps the last [`KEPT`] origins (a run restored,
//! stopped and restored again carries the older ones on) and is removed
//! with its state at the end of the stream.

use std::collections::{BTreeSet, HashSet};

use crate::flow::state::StateOptions;

/// Most origins a record keeps (a few MB at most).
const KEPT: usize = 100_000;

/// The key of the record beside the state stored under `key`.
pub(super) fn record_key(key: &str) -> String {
    format!("{key}==counted")
}

/// Inputs already counted by restored states, by origin.
#[derive(Default)]
pub(super) struct Counted {
    origins: HashSet<String>,
    /// In the order recorded (the oldest dropped first past `KEPT`).
    order: Vec<String>,
}

impl Counted {
    /// Adds the record stored under `key`, if any. A record that cannot be
    /// read is only logged: without it, a redelivery is counted again, as
    /// before records existed.
    pub(super) async fn load(&mut self, state: &StateOptions, key: &str) {
        match state.store.load(&record_key(key)).await {
            Ok(Some(bytes)) => {
                for origin in String::from_utf8_lossy(&bytes).lines() {
                    self.add(origin.to_string());
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%key, %error, "the record of counted inputs was not read")
            }
        }
    }

    pub(super) fn add(&mut self, origin: String) {
        if !origin.is_empty() && self.origins.insert(origin.clone()) {
            self.order.push(origin);
        }
    }

    /// Whether the input from `origin` was already counted.
    pub(super) fn contains(&self, origin: &str) -> bool {
        self.origins.contains(origin)
    }

    /// Stores, under `key`'s record, what was counted before and `now`.
    pub(super) async fn store(&self, state: &StateOptions, key: &str, now: &BTreeSet<String>) {
        let mut lines: Vec<&str> = self
            .order
            .iter()
            .map(String::as_str)
            .filter(|origin| !now.contains(*origin))
            .chain(now.iter().map(String::as_str))
            .collect();
        let drop = lines.len().saturating_sub(KEPT);
        lines.drain(..drop);
        let text = lines.join("\n");
        if let Err(error) = state.store.store(&record_key(key), text.as_bytes()).await {
            tracing::warn!(%key, %error, "the record of counted inputs was not stored; \
                a redelivery of them would be counted again");
        }
    }

    pub(super) async fn remove(state: &StateOptions, key: &str) {
        if let Err(error) = state.store.remove(&record_key(key)).await {
            tracing::warn!(%key, %error, "the record of counted inputs was not removed");
        }
    }
}
