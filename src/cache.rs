//! The on-disk compile cache.
//!
//! Loading a compiled artifact is `unsafe` in wasmtime: the bytes become
//! machine code. So the cache only loads files it wrote itself: each file
//! carries an HMAC-SHA256 of its artifact under a random key kept in the
//! cache folder (readable by the owner only). A file copied in from
//! elsewhere, truncated or altered fails the check and is refused.

use std::io::Read;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"TORVYNC1";
const KEY_FILE: &str = "cache-key";
const TAG_LEN: usize = 32;

/// A folder of compiled components, keyed by content digest.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    key: [u8; 32],
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
        let err = |detail: String| Error::Cache {
            path: dir.to_path_buf(),
            detail,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let key_path = dir.join(KEY_FILE);
        let key = match std::fs::read(&key_path) {
            Ok(bytes) => bytes
                .try_into()
                .map_err(|_| err(format!("{KEY_FILE} is not 32 bytes")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random_key().map_err(|e| err(format!("no randomness: {e}")))?;
                write_private(&key_path, &key).map_err(|e| err(e.to_string()))?;
                key
            }
            Err(e) => return Err(err(e.to_string())),
        };
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            key,
        })
    }

    fn path_for(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.cwasm", hex(digest)))
    }

    fn tag(&self, artifact: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(artifact);
        mac.finalize().into_bytes().into()
    }

    /// The verified artifact for `digest`.
    pub(crate) fn load(&self, digest: &[u8; 32]) -> std::result::Result<Vec<u8>, Miss> {
        let path = self.path_for(digest);
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(_) => return Err(Miss::Absent),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Miss::Refused(e.to_string()))?;
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
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(artifact);
        if mac.verify_slice(tag).is_err() {
            return Err(Miss::Refused(format!(
                "{} fails its integrity check: not written by this cache or altered",
                path.display()
            )));
        }
        Ok(artifact.to_vec())
    }

    /// Stores an artifact; written to a temporary file then renamed, so a
    /// reader never sees half a file.
    pub(crate) fn store(&self, digest: &[u8; 32], artifact: &[u8]) -> Result<()> {
        let path = self.path_for(digest);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut contents = Vec::with_capacity(MAGIC.len() + TAG_LEN + artifact.len());
        contents.extend_from_slice(MAGIC);
        contents.extend_from_slice(&self.tag(artifact));
        contents.extend_from_slice(artifact);
        write_private(&tmp, &contents)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::Cache {
                path: path.clone(),
                detail: e.to_string(),
            })
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

fn random_key() -> std::io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
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
}
