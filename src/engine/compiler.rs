//! Compiling a component's bytes, served from a content-addressed cache:
//! in memory while a compiled component of those bytes lives, and on disk
//! across processes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use wasmtime::component::Component;

use crate::cache::{DiskCache, Miss};
use crate::component::CompiledInner;
use crate::error::{Error, Result};

/// How [`WasmtimeEngine::compile`](crate::WasmEngine::compile) calls were served.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// let bytes = torvyn_fixtures::uppercase_processor();
/// let first = engine.compile("upper", &bytes)?;
/// let again = engine.compile("upper again", &bytes)?; // same bytes, while one lives: compiled once
/// let stats = engine.cache_stats();
/// assert_eq!(stats.memory_hits, 1);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Served from the in-memory cache (bytes of which a compiled
    /// component was still alive).
    pub memory_hits: u64,
    /// Loaded from the disk cache.
    pub disk_hits: u64,
    /// Compiled from the bytes.
    pub compiled: u64,
    /// Disk cache files not used, and why (not written by this cache,
    /// altered, or built by an incompatible engine).
    pub refused: Vec<String>,
}

/// The engine's compiler and its caches, keyed by the bytes' SHA-256.
///
/// The memory cache holds no code of its own: it points (weakly) at the
/// compiled components handed out, so code is shared while one of them
/// lives and freed with the last. A long-running `--watch` process that
/// upgrades a stage every few minutes would otherwise keep every version
/// it ever ran (code, and a memory-image file descriptor each).
pub(super) struct Compiler {
    engine: wasmtime::Engine,
    compiled: Mutex<HashMap<[u8; 32], Weak<CompiledInner>>>,
    disk: Option<DiskCache>,
    /// Where `disk` lives (named in its errors).
    cache_dir: Option<PathBuf>,
    stats: Mutex<CacheStats>,
}

impl Compiler {
    /// A compiler for `engine`, caching on disk in `cache_dir` if given.
    pub(super) fn new(engine: wasmtime::Engine, cache_dir: Option<PathBuf>) -> Result<Compiler> {
        let disk = cache_dir.as_deref().map(DiskCache::open).transpose()?;
        Ok(Compiler {
            engine,
            compiled: Mutex::new(HashMap::new()),
            disk,
            cache_dir,
            stats: Mutex::new(CacheStats::default()),
        })
    }

    /// How compilations were served so far.
    pub(super) fn stats(&self) -> CacheStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn count(&self, update: impl FnOnce(&mut CacheStats)) {
        if let Ok(mut stats) = self.stats.lock() {
            update(&mut stats);
        }
    }

    /// Compiles `bytes`, or takes the result from the memory or disk cache.
    pub(super) fn compile(&self, name: &str, digest: &[u8; 32], bytes: &[u8]) -> Result<Component> {
        let in_memory = self
            .compiled
            .lock()
            .ok()
            .and_then(|c| c.get(digest).and_then(Weak::upgrade))
            .map(|inner| inner.pre.component().clone());
        if let Some(found) = in_memory {
            self.count(|s| s.memory_hits += 1);
            return Ok(found);
        }
        let component = match self.load_from_disk(digest) {
            Some(component) => {
                self.count(|s| s.disk_hits += 1);
                component
            }
            None => {
                self.count(|s| s.compiled += 1);
                if let Some(detail) = not_webassembly(bytes) {
                    return Err(Error::compile(name, detail, None));
                }
                let component = Component::new(&self.engine, bytes)
                    .map_err(|e| Error::compile(name, String::new(), Some(e.into())))?;
                if let Some(disk) = &self.disk {
                    let artifact = component.serialize().map_err(|e| Error::Cache {
                        path: self.cache_dir.clone().unwrap_or_default(),
                        detail: "cannot serialize the compiled component".into(),
                        source: Some(e.into()),
                    })?;
                    disk.store(digest, &artifact)?;
                }
                component
            }
        };
        Ok(component)
    }

    /// Serves `compiled`'s code to later compilations of the same bytes
    /// while it lives; forgets the components no longer alive.
    pub(super) fn remember(&self, compiled: &Arc<CompiledInner>) {
        if let Ok(mut cache) = self.compiled.lock() {
            cache.retain(|_, inner| inner.strong_count() > 0);
            cache.insert(compiled.digest, Arc::downgrade(compiled));
        }
    }

    /// A component from the disk cache, if one is there that this cache wrote
    /// and this engine can run; refusals are recorded in the stats.
    fn load_from_disk(&self, digest: &[u8; 32]) -> Option<Component> {
        let refused = match self.disk.as_ref()?.load(digest) {
            // SAFETY: the artifact carries this cache's HMAC, so it was
            // produced by `Component::serialize` in a process holding the key;
            // wasmtime itself checks that it matches this engine's settings.
            Ok(artifact) => match unsafe { Component::deserialize(&self.engine, artifact) } {
                Ok(component) => return Some(component),
                Err(e) => format!("incompatible artifact: {e:#}"),
            },
            Err(Miss::Absent) => return None,
            Err(Miss::Refused(why)) => why,
        };
        self.count(|s| s.refused.push(refused));
        None
    }
}

/// What `bytes` are not, when they are neither binary WebAssembly nor text
/// (WAT): said in one line. (The parser's own error for a wrong magic
/// number lists the expected and found bytes one per line.)
fn not_webassembly(bytes: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"\0asm";
    // Text is left to the WAT parser only when it looks like WAT (a form or
    // a comment first), so a stray text file still gets the one-line answer.
    let looks_like_wat = std::str::from_utf8(bytes).is_ok_and(|text| {
        let text = text.trim_start();
        text.starts_with('(') || text.starts_with(";;")
    });
    if bytes.starts_with(MAGIC) || looks_like_wat {
        return None;
    }
    if bytes.is_empty() {
        return Some("not a WebAssembly file: it is empty".into());
    }
    let hex = |bytes: &[u8]| {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(format!(
        "not a WebAssembly file: it starts with {}, WebAssembly with {} (`\\0asm`)",
        hex(&bytes[..bytes.len().min(4)]),
        hex(MAGIC)
    ))
}
