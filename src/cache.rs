//! The on-disk compile cache.
//!
//! Loading a compiled artifact is `unsafe` in wasmtime: the bytes become
//! machine code. So the cache only loads files it wrote itself: each file
//! carries an HMAC-SHA256, under a random key kept in the cache folder, of
//! the component's content digest and the artifact; a file copied in from
//! elsewhere, moved under another digest, truncated or altered fails the
//! check and is refused. Whoever can write the folder is not trusted
//! either: the key must be a private regular file of the current user, and
//! only regular files of bounded size are read, opened without following
//! symbolic links and without blocking (a FIFO or a link to `/dev/zero`
//! cannot stall or exhaust the host).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"TORVYNC2";
const KEY_FILE: &str = "cache-key";
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 32;

/// Largest cache file read: a compiled component is far smaller (an 18 MB
/// Python component compiles to ~60 MB).
pub(crate) const MAX_ARTIFACT_BYTES: u64 = 1 << 30;

/// A folder of compiled components, keyed by content digest.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
}

/// Why a cache file was not used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Miss {
    /// No file for this digest.
    Absent,
    /// A file exists but this cache did not write it (or it was altered).
    Refused(String),
}

impl DiskCache {
    /// Opens (creating if needed) the cache folder and its key.
    pub(crate) fn open(dir: &Path) -> Result<DiskCache> {
        // (The key file's errors come as text: what is wrong with it, or
        // the I/O error's message.)
        let err = |path: &Path, detail: String| Error::Cache {
            path: path.to_path_buf(),
            detail,
            source: None,
        };
        std::fs::create_dir_all(dir).map_err(|e| Error::Cache {
            path: dir.to_path_buf(),
            detail: "cannot create the folder".into(),
            source: Some(e.into()),
        })?;
        let key_path = dir.join(KEY_FILE);
        let key = match read_private(&key_path, KEY_LEN as u64) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => create_key(dir, &key_path).map_err(|e| err(&key_path, e))?,
            Err(why) => return Err(err(&key_path, why)),
        };
        let key = key
            .try_into()
            .map_err(|_| err(&key_path, format!("the key is not {KEY_LEN} bytes")))?;
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            key,
        })
    }

    fn path_for(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.cwasm", hex(digest)))
    }

    /// The tag of `artifact` stored for `digest`: binding the digest means
    /// a valid artifact moved under another component's name is refused.
    fn mac(&self, digest: &[u8; 32], artifact: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(digest);
        mac.update(artifact);
        mac
    }

    /// The verified artifact for `digest`.
    pub(crate) fn load(&self, digest: &[u8; 32]) -> std::result::Result<Vec<u8>, Miss> {
        let path = self.path_for(digest);
        let bytes = match read_regular(&path, MAX_ARTIFACT_BYTES, |_| Ok(())) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(Miss::Absent),
            Err(why) => return Err(Miss::Refused(format!("{}: {why}", path.display()))),
        };
        let Some(rest) = bytes.strip_prefix(MAGIC) else {
            return Err(Miss::Refused(format!(
                "{} was not written by this cache",
                path.display()
            )));
        };
        if rest.len() < TAG_LEN {
            return Err(Miss::Refused(format!("{} is truncated", path.display())));
        }
        let (tag, artifact) = rest.split_at(TAG_LEN);
        if self.mac(digest, artifact).verify_slice(tag).is_err() {
            return Err(Miss::Refused(format!(
                "{} fails its integrity check: not written by this cache for this \
                 component, or altered",
                path.display()
            )));
        }
        Ok(artifact.to_vec())
    }

    /// Stores an artifact; written to a fresh temporary file then renamed,
    /// so a reader never sees half a file and concurrent writers never share one.
    pub(crate) fn store(&self, digest: &[u8; 32], artifact: &[u8]) -> Result<()> {
        let path = self.path_for(digest);
        let mut contents = Vec::with_capacity(MAGIC.len() + TAG_LEN + artifact.len());
        contents.extend_from_slice(MAGIC);
        contents.extend_from_slice(&self.mac(digest, artifact).finalize().into_bytes());
        contents.extend_from_slice(artifact);
        let fail = |e: std::io::Error| Error::Cache {
            path: path.clone(),
            detail: "cannot store the compiled component".into(),
            source: Some(e.into()),
        };
        let tmp = write_temporary(&self.dir, &hex(digest), &contents).map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e)
        })
    }
}

/// Opens `path` for reading without following a symbolic link at its end
/// and without blocking (a FIFO opens at once); `None` if there is nothing.
fn open_no_follow(path: &Path) -> std::result::Result<Option<File>, String> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            Err("is a symbolic link; the cache only reads its own regular files".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The bytes of `path` if it is a regular file of at most `max` bytes
/// that `check` accepts. One descriptor is checked and read, so what is
/// read is what was checked.
fn read_regular(
    path: &Path,
    max: u64,
    check: impl FnOnce(&std::fs::Metadata) -> std::result::Result<(), String>,
) -> std::result::Result<Option<Vec<u8>>, String> {
    let Some(file) = open_no_follow(path)? else {
        return Ok(None);
    };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "is not a regular file ({:?}); the cache only reads its own regular files",
            meta.file_type()
        ));
    }
    check(&meta)?;
    if meta.len() > max {
        return Err(format!(
            "is {} bytes, more than the {max}-byte limit",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("grew past the {max}-byte limit while read"));
    }
    Ok(Some(bytes))
}

/// [`read_regular`] for the key: also owned by this user, mode 0600.
fn read_private(path: &Path, len: u64) -> std::result::Result<Option<Vec<u8>>, String> {
    read_regular(path, len, |meta| {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let user = unsafe { libc::geteuid() };
        if meta.uid() != user {
            return Err(format!(
                "is owned by user {}, not by the current user {user}",
                meta.uid()
            ));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "has mode {:o}; the key must be readable by its owner only (0600)",
                meta.mode() & 0o777
            ));
        }
        Ok(())
    })
}

/// Creates the key: written to a private temporary file, then linked into
/// place, which fails if another process was first (its key is used then).
fn create_key(dir: &Path, key_path: &Path) -> std::result::Result<Vec<u8>, String> {
    let key = random_key().map_err(|e| format!("no randomness: {e}"))?;
    let tmp = write_temporary(dir, KEY_FILE, &key).map_err(|e| e.to_string())?;
    let linked = std::fs::hard_link(&tmp, key_path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key.to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_private(key_path, KEY_LEN as u64)?
                .ok_or_else(|| "the key disappeared while it was made".to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Writes `contents` to a new private file in `dir` with a name no other
/// writer uses, created exclusively (an existing file or link there is an
/// error, never followed).
fn write_temporary(dir: &Path, stem: &str, contents: &[u8]) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = u64::from_le_bytes(random_key()?[..8].try_into().expect("8 bytes"));
    let path = dir.join(format!(
        "{stem}.tmp-{}-{}-{nonce:016x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    if let Err(e) = file.write_all(contents) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

fn random_key() -> std::io::Result<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_files_it_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path()).unwrap();
        let digest = [7u8; 32];
        assert_eq!(cache.load(&digest), Err(Miss::Absent));
        cache.store(&digest, b"artifact").unwrap();
        assert_eq!(cache.load(&digest).unwrap(), b"artifact");

        // Same folder, same key: a second handle reads it too.
        let again = DiskCache::open(dir.path()).unwrap();
        assert_eq!(again.load(&digest).unwrap(), b"artifact");

        // A file dropped in by someone else, or an altered one, is refused.
        let path = cache.path_for(&digest);
        std::fs::write(&path, b"\x7fELF not ours").unwrap();
        assert!(matches!(cache.load(&digest), Err(Miss::Refused(_))));
        let mut forged = MAGIC.to_vec();
        forged.extend_from_slice(&[0u8; TAG_LEN]);
        forged.extend_from_slice(b"artifact");
        std::fs::write(&path, forged).unwrap();
        assert!(matches!(cache.load(&digest), Err(Miss::Refused(_))));
    }

    /// A file cut short after the magic (no whole tag) and one over the
    /// 1 GiB bound are refused by what they are, the second before a byte
    /// of it is read (a sparse file: nothing is written to disk).
    #[test]
    fn refuses_a_truncated_file_and_one_past_the_size_bound() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path()).unwrap();
        let digest = [9u8; 32];
        let path = cache.path_for(&digest);
        let mut cut = MAGIC.to_vec();
        cut.extend_from_slice(&[0u8; TAG_LEN - 1]);
        std::fs::write(&path, cut).unwrap();
        assert_eq!(
            cache.load(&digest),
            Err(Miss::Refused(format!("{} is truncated", path.display())))
        );
        let huge = File::create(&path).unwrap();
        huge.set_len(MAX_ARTIFACT_BYTES + 1).unwrap();
        assert_eq!(MAX_ARTIFACT_BYTES, 1 << 30);
        assert_eq!(
            cache.load(&digest),
            Err(Miss::Refused(format!(
                "{}: is 1073741825 bytes, more than the 1073741824-byte limit",
                path.display()
            )))
        );
    }
}
