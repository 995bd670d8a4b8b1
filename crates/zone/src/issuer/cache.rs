//! `DiskCache`: issued certificates persisted under `<data_dir>/certs`, one JSON file per
//! dataplane (directory 0700, files 0600, written atomically), so a restarted zone reuses them.
//! The files hold private keys: their contents are never logged.
//!
//! Writes are atomic (temp file + rename) but not fsynced, and [`DiskCache::store_later`] makes
//! them off the issuance path: the cache is a saving, not a record. After a crash a file may be
//! missing, old or unreadable; it then counts as a miss and the certificate is issued again.
//! Writes and removals of one dataplane apply in the order they were asked for (a sequence per
//! dataplane; a superseded write is skipped). [`DiskCache::flush`] waits for pending writes (the
//! zone calls it on shutdown). Writing every certificate before serving it cost up to a quarter
//! of the issuance throughput (bench/RESULTS.md).

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

/// The on-disk certificate cache (cheap to clone; clones share pending writes).
#[derive(Clone, Debug)]
pub struct DiskCache {
    dir: PathBuf,
    writes: Arc<Writes>,
}

type Key = (String, String);

/// Ordering and accounting of writes and removals.
#[derive(Debug, Default)]
struct Writes {
    /// The dataplanes with operations asked for and not finished yet. A slot goes once its last
    /// operation finishes, so the map holds only dataplanes being written now.
    slots: std::sync::Mutex<std::collections::HashMap<Key, Slot>>,
    /// Background writes not finished yet.
    pending: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// The operations on one dataplane's file.
#[derive(Debug, Default)]
struct Slot {
    /// The latest operation asked for.
    latest: u64,
    /// Operations asked for and not finished.
    in_flight: usize,
    /// Held while the file is written or removed.
    lock: Arc<std::sync::Mutex<()>>,
}

impl Writes {
    fn slots(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Key, Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a new operation on `key`; returns its sequence number and the key's lock.
    fn begin(&self, key: &Key) -> (u64, Arc<std::sync::Mutex<()>>) {
        let mut slots = self.slots();
        let slot = slots.entry(key.clone()).or_default();
        slot.latest += 1;
        slot.in_flight += 1;
        (slot.latest, slot.lock.clone())
    }

    /// Whether operation `n` on `key` is still the latest asked for.
    fn is_latest(&self, key: &Key, n: u64) -> bool {
        self.slots().get(key).is_none_or(|s| s.latest == n)
    }

    /// Operation on `key` finished; its slot goes with its last operation (every sequence
    /// number handed out is then spent, so a fresh slot cannot reorder anything).
    fn finish(&self, key: &Key) {
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(key) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            if slot.in_flight == 0 {
                slots.remove(key);
            }
        }
    }

    /// Runs `op` on `key` under its lock unless a later operation was asked for meanwhile.
    fn apply(
        &self,
        key: &Key,
        n: u64,
        lock: &std::sync::Mutex<()>,
        op: impl FnOnce() -> Result<(), CacheError>,
    ) -> Result<(), CacheError> {
        let result = {
            let _guard = lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.is_latest(key, n) { op() } else { Ok(()) }
        };
        self.finish(key);
        result
    }

    /// How many dataplanes have operations in flight.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.slots().len()
    }
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
            writes: Arc::default(),
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

    /// Writes (replaces) the cached certificate of its dataplane, and waits for it.
    pub async fn store(&self, cert: &DataplaneCert) -> Result<(), CacheError> {
        let write = self.prepare(cert);
        blocking(write).await
    }

    /// Writes (replaces) the cached certificate of its dataplane in the background; a failure
    /// is logged (the certificate is then issued again after a restart).
    pub fn store_later(&self, cert: &DataplaneCert) {
        let write = self.prepare(cert);
        let writes = self.writes.clone();
        writes
            .pending
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (mesh, dataplane) = (cert.mesh.clone(), cert.dataplane.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = write() {
                tracing::warn!(mesh = %mesh, dataplane = %dataplane, error = %e, "certificate not cached on disk; a restart will issue again");
            }
            if writes
                .pending
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
                == 1
            {
                writes.idle.notify_waiters();
            }
        });
    }

    /// Waits until every background write has finished.
    pub async fn flush(&self) {
        loop {
            let idle = self.writes.idle.notified();
            if self
                .writes
                .pending
                .load(std::sync::atomic::Ordering::SeqCst)
                == 0
            {
                return;
            }
            idle.await;
        }
    }

    /// The write of `cert`, ordered after every operation on its dataplane asked for before.
    fn prepare(
        &self,
        cert: &DataplaneCert,
    ) -> impl FnOnce() -> Result<(), CacheError> + Send + 'static {
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
        let key = (cert.mesh.clone(), cert.dataplane.clone());
        let (n, lock) = self.writes.begin(&key);
        let writes = self.writes.clone();
        move || writes.apply(&key, n, &lock, || write_file(&dir, &path, &file))
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

    /// Removes the cached certificate of `mesh`/`dataplane` (absent is fine), after any write
    /// asked for before.
    pub async fn remove(&self, mesh: &str, dataplane: &str) -> Result<(), CacheError> {
        let path = self.path(mesh, dataplane);
        let key = (mesh.to_string(), dataplane.to_string());
        let (n, lock) = self.writes.begin(&key);
        let writes = self.writes.clone();
        blocking(move || {
            writes.apply(&key, n, &lock, || match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(CacheError::Io {
                    path: path.clone(),
                    source,
                }),
            })
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

    #[tokio::test]
    async fn background_writes_apply_in_order_and_flush_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path());
        let mut newer = cert();
        newer.cert = Arc::new(IssuedCert {
            serial: "03:04".into(),
            ..(*cert().cert).clone()
        });
        for _ in 0..20 {
            cache.store_later(&cert());
            cache.store_later(&newer);
        }
        cache.flush().await;
        let back = cache.load("default", "web/1").await.unwrap().unwrap();
        assert_eq!(back.cert.serial, "03:04", "the last write asked for wins");

        // A removal after a pending write leaves no file behind.
        cache.store_later(&cert());
        cache.remove("default", "web/1").await.unwrap();
        cache.flush().await;
        assert!(cache.load("default", "web/1").await.unwrap().is_none());
        // Nothing is remembered of dataplanes once their operations are done.
        assert_eq!(cache.writes.tracked(), 0);

        // Many dataplanes come and go: the bookkeeping does not grow with them.
        for i in 0..50 {
            let mut other = cert();
            other.dataplane = format!("web/{i}");
            cache.store_later(&other);
            cache.remove("default", &other.dataplane).await.unwrap();
        }
        cache.flush().await;
        assert_eq!(cache.writes.tracked(), 0);
        assert!(cache.load("default", "web/7").await.unwrap().is_none());
    }
}
