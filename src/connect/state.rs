//! Where a served flow's stages keep their state between runs: the port
//! ([`StateStore`]) a store implements, as a connector implements
//! [`SourceConnector`](super::SourceConnector), and the store of one
//! machine ([`DirStore`]). Which key belongs to which stage of which flow is
//! the flow's business ([`crate::flow::StateOptions`]).

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::error::{Error, Result};

/// A durable place for stages' state, by key.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use torvyn_engine::async_trait;
/// use torvyn_engine::flow::StateStore;
///
/// /// States in memory (a test stand-in; a real store keeps them durably).
/// #[derive(Default)]
/// struct InMemory(Mutex<HashMap<String, Vec<u8>>>);
///
/// #[async_trait]
/// impl StateStore for InMemory {
///     fn describe(&self) -> String {
///         "memory".into()
///     }
///     async fn load(&self, key: &str) -> torvyn_engine::Result<Option<Vec<u8>>> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     async fn store(&self, key: &str, state: &[u8]) -> torvyn_engine::Result<()> {
///         self.0.lock().unwrap().insert(key.into(), state.to_vec());
///         Ok(())
///     }
///     async fn remove(&self, key: &str) -> torvyn_engine::Result<()> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> torvyn_engine::Result<()> {
/// let store = InMemory::default();
/// store.store("orders.count", b"41").await?;
/// assert_eq!(store.load("orders.count").await?, Some(b"41".to_vec()));
/// # Ok(())
/// # }
/// ```
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

/// A file per key in a directory: `KEY.state`, replaced atomically (written
/// beside it, synced, renamed over it, the directory synced).
///
/// ```
/// use torvyn_engine::flow::{DirStore, StateStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> torvyn_engine::Result<()> {
/// let dir = std::env::temp_dir().join(format!("torvyn-dir-store-{}", std::process::id()));
/// let store = DirStore::open(&dir)?;
/// store.store("flow.counter", b"7").await?;
/// assert_eq!(store.load("flow.counter").await?, Some(b"7".to_vec()));
/// store.remove("flow.counter").await?;
/// assert_eq!(store.load("flow.counter").await?, None);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
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
