//! Where a served flow keeps its stages' state between runs
//! ([`ServeOptions::state`](super::ServeOptions::state)).
//!
//! A stage whose component exports `torvyn:state` (`save`/`restore`) has
//! its state saved into the store when the service is told to stop, and
//! restored into its new instance (after `init`) when the flow starts
//! again. The inputs a saved state has absorbed are acknowledged once the
//! store has it, and only then: they are neither lost nor counted twice. At
//! the end of a stream (sources ended, idle, limit) the stages flush their
//! state downstream as before and the stored state is removed: it has been
//! emitted.
//!
//! Two stores come with the engine: [`DirStore`] (a file per stage, for one
//! machine) and, with the `nats` feature, a JetStream key-value bucket
//! (`connect::nats::KvStateStore`), for workers that may come back on
//! another machine.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::error::{Error, Result};

/// A durable place for stages' state, by key.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// What and where the store is, for messages (`directory /var/x`).
    fn describe(&self) -> String;
    /// The state stored under `key`, if any.
    async fn load(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `state` under `key`, durably, before returning.
    async fn store(&self, key: &str, state: &[u8]) -> Result<()>;
    /// Removes what is under `key` (nothing there is not an error).
    async fn remove(&self, key: &str) -> Result<()>;
}

/// Which stored state belongs to which stage of which flow.
#[derive(Clone)]
pub struct StateOptions {
    /// Where states go.
    pub store: std::sync::Arc<dyn StateStore>,
    /// Keys are `SCOPE.NODE`; two services keeping different state (two
    /// partitions, two workers of one stream) need different scopes.
    /// Empty: the flow's name.
    pub scope: String,
}

impl std::fmt::Debug for StateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateOptions")
            .field("store", &self.store.describe())
            .field("scope", &self.scope)
            .finish()
    }
}

/// The key of `node`'s state in `scope`: only characters every store takes
/// (a NATS key's `[-/_=.A-Za-z0-9]`, less `/` for file names); any other
/// becomes `_`.
pub fn state_key(scope: &str, node: &str) -> String {
    format!("{scope}.{node}")
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '=' | '.' => c,
            _ => '_',
        })
        .collect()
}

/// A file per key in a directory: `KEY.state`, replaced atomically (written
/// beside it, synced, renamed over it, the directory synced).
#[derive(Debug, Clone)]
pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    /// The store in `dir`, created if absent.
    pub fn open(dir: impl AsRef<Path>) -> Result<DirStore> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, "cannot create", e))?;
        Ok(DirStore { dir })
    }

    fn file(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.state"))
    }
}

fn io_error(path: &Path, what: &str, error: std::io::Error) -> Error {
    Error::State {
        store: format!("directory {}", path.display()),
        detail: format!("{what} {}: {error}", path.display()),
        source: Some(error.into()),
    }
}

#[async_trait]
impl StateStore for DirStore {
    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }

    async fn load(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let file = self.file(key);
        match tokio::fs::read(&file).await {
            Ok(state) => Ok(Some(state)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&file, "cannot read", e)),
        }
    }

    async fn store(&self, key: &str, state: &[u8]) -> Result<()> {
        let file = self.file(key);
        let next = self.dir.join(format!("{key}.state.next"));
        let write = async {
            let mut out = tokio::fs::File::create(&next).await?;
            tokio::io::AsyncWriteExt::write_all(&mut out, state).await?;
            out.sync_all().await?;
            tokio::fs::rename(&next, &file).await?;
            // The rename itself is durable once the directory is synced.
            tokio::fs::File::open(&self.dir).await?.sync_all().await
        };
        write.await.map_err(|e| io_error(&file, "cannot write", e))
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let file = self.file(key);
        match tokio::fs::remove_file(&file).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&file, "cannot remove", e)),
        }
    }
}
