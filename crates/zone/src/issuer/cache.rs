//! `DiskCache`: issued certificates persisted under `<data_dir>/certs`, one JSON file per
//! dataplane (directory 0700, files 0600, written atomically), so a restarted zone reuses them.
//! The files hold private keys: their contents are never logged.
//!
//! Writes are atomic (temp file + rename) but not fsynced: the cache is a saving, not a record.
//! After a crash of the machine a file may be missing or unreadable; it then counts as a miss and
//! the certificate is issued again. Fsyncing every certificate before serving it cost about a
//! quarter of the issuance throughput (bench/RESULTS.md).

use std::{
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    sync::Arc,
};

use mosaic_common::{Sensitive, ca::IssuedCert, template::Tags};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::DataplaneCert;

/// Name of the cache directory inside the data dir.
pub const CERTS_DIR: &str = "certs";

/// Name of the directory (inside the cache) of remembered backend roots.
pub const ROOTS_DIR: &str = "roots";

/// The remembered roots of one backend (public certificates).
#[derive(Serialize, Deserialize)]
struct RootsFile {
    roots: Vec<String>,
}

/// The on-disk certificate cache.
#[derive(Clone, Debug)]
pub struct DiskCache {
    dir: PathBuf,
}

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A cache file is not what this version writes.
    #[error("{path}: not a certificate cache file: {reason}")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The blocking task doing the I/O failed.
    #[error("certificate cache task failed: {0}")]
    Task(String),
}

/// The file's shape. No `Debug`: it holds the private key.
#[derive(Serialize, Deserialize)]
struct CacheFile {
    mesh: String,
    dataplane: String,
    backend: String,
    tags: Tags,
    chain_pem: String,
    key_pem: String,
    serial: String,
    not_before: i64,
    not_after: i64,
    #[serde(default)]
    issued_at: Option<i64>,
}

// === impl DiskCache ===

impl DiskCache {
    /// The cache in `<data_dir>/certs` (created on first write).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(CERTS_DIR),
        }
    }

    /// The cached certificate of `mesh`/`dataplane`, if any.
    pub async fn load(
        &self,
        mesh: &str,
        dataplane: &str,
    ) -> Result<Option<DataplaneCert>, CacheError> {
        let path = self.path(mesh, dataplane);
        blocking(move || read_file(&path)).await
    }

    /// Writes (replaces) the cached certificate of its dataplane.
    pub async fn store(&self, cert: &DataplaneCert) -> Result<(), CacheError> {
        let file = CacheFile {
            mesh: cert.mesh.clone(),
            dataplane: cert.dataplane.clone(),
            backend: cert.backend.clone(),
            tags: cert.tags.clone(),
            chain_pem: cert.cert.chain_pem.clone(),
            key_pem: cert.cert.key_pem.expose().clone(),
            serial: cert.cert.serial.clone(),
            not_before: cert.cert.not_before.unix_timestamp(),
            not_after: cert.cert.not_after.unix_timestamp(),
            issued_at: Some(cert.issued_at.unix_timestamp()),
        };
        let dir = self.dir.clone();
        let path = self.path(&cert.mesh, &cert.dataplane);
        blocking(move || write_file(&dir, &path, &file)).await
    }

    /// Remembers the roots `backend` of `mesh` last reported, so a zone restarted while the CA
    /// is unreachable still serves a trust bundle.
    pub async fn store_roots(
        &self,
        mesh: &str,
        backend: &str,
        roots: &[String],
    ) -> Result<(), CacheError> {
        let dir = self.dir.join(ROOTS_DIR);
        let path = self.roots_path(mesh, backend);
        let file = RootsFile {
            roots: roots.to_vec(),
        };
        blocking(move || write_file(&dir, &path, &file)).await
    }

    /// The roots `backend` of `mesh` last reported, if remembered.
    pub async fn load_roots(
        &self,
        mesh: &str,
        backend: &str,
    ) -> Result<Option<Vec<String>>, CacheError> {
        let path = self.roots_path(mesh, backend);
        blocking(move || {
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(CacheError::Io { path, source }),
            };
            let f: RootsFile = serde_json::from_slice(&bytes).map_err(|e| CacheError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            Ok(Some(f.roots))
        })
        .await
    }

    fn roots_path(&self, mesh: &str, backend: &str) -> PathBuf {
        self.dir.join(ROOTS_DIR).join(format!(
            "{}.{}.json",
            hex::encode(mesh),
            hex::encode(backend)
        ))
    }

    /// Removes the cached certificate of `mesh`/`dataplane` (absent is fine).
    pub async fn remove(&self, mesh: &str, dataplane: &str) -> Result<(), CacheError> {
        let path = self.path(mesh, dataplane);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CacheError::Io { path, source }),
        })
        .await
    }

    fn path(&self, mesh: &str, dataplane: &str) -> PathBuf {
        self.dir.join(format!(
            "{}.{}.json",
            hex::encode(mesh),
            hex::encode(dataplane)
        ))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CacheError> + Send + 'static,
) -> Result<T, CacheError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CacheError::Task(e.to_string()))?
}

fn read_file(path: &Path) -> Result<Option<DataplaneCert>, CacheError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CacheError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let corrupt = |reason: String| CacheError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    // serde_json's error names a position, never the content.
    let f: CacheFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let ts = |t: i64| OffsetDateTime::from_unix_timestamp(t).map_err(|e| corrupt(e.to_string()));
    let not_before = ts(f.not_before)?;
    let issued_at = match f.issued_at {
        Some(t) => ts(t)?,
        None => not_before,
    };
    Ok(Some(DataplaneCert {
        mesh: f.mesh,
        dataplane: f.dataplane,
        backend: f.backend,
        tags: f.tags,
        cert: Arc::new(IssuedCert {
            chain_pem: f.chain_pem,
            key_pem: Sensitive::new(f.key_pem),
            serial: f.serial,
            not_before,
            not_after: ts(f.not_after)?,
        }),
        issued_at,
    }))
}

fn write_file(dir: &Path, path: &Path, file: &impl Serialize) -> Result<(), CacheError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CacheError::Io { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let bytes = serde_json::to_vec(file).map_err(|e| CacheError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let tmp = path.with_extension("json.tmp");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    out.write_all(&bytes).map_err(io(&tmp))?;
    drop(out);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn cert() -> DataplaneCert {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        DataplaneCert {
            mesh: "default".into(),
            dataplane: "web/1".into(),
            backend: "vault-1".into(),
            tags: Tags::new(),
            cert: Arc::new(IssuedCert {
                chain_pem: "CHAIN".into(),
                key_pem: Sensitive::new("KEY".into()),
                serial: "01:02".into(),
                not_before: now,
                not_after: now + time::Duration::hours(24),
            }),
            issued_at: now + time::Duration::seconds(30),
        }
    }

    #[tokio::test]
    async fn round_trips_owner_only_and_reports_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path());
        assert!(cache.load("default", "web/1").await.unwrap().is_none());
        cache.store(&cert()).await.unwrap();
        let back = cache.load("default", "web/1").await.unwrap().unwrap();
        assert_eq!(back.cert.serial, "01:02");
        assert_eq!(back.cert.key_pem.expose(), "KEY");
        assert_eq!(back.issued_at, cert().issued_at);
        assert_eq!(back.cert.not_after, cert().cert.not_after);
        assert!(cache.load_roots("default", "v").await.unwrap().is_none());
        cache
            .store_roots("default", "v", &["ROOT".to_string()])
            .await
            .unwrap();
        assert_eq!(
            cache.load_roots("default", "v").await.unwrap().unwrap(),
            vec!["ROOT".to_string()]
        );
        let path = cache.path("default", "web/1");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(dir.path().join(CERTS_DIR))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            cache.load("default", "web/1").await,
            Err(CacheError::Corrupt { .. })
        ));
    }
}
