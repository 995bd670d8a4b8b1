//! `DiskCache`: issued certificates kept in the zone's own sled database (tree
//! `issuer-certs`, one record per dataplane; the database directory is owner-only), so a
//! restarted zone reuses them. The records hold private keys: their contents are never logged.
//!
//! A write is an in-memory insert, made durable by sled's background flush (every 500 ms) or by
//! [`DiskCache::flush`] (the zone calls it on shutdown): the cache is a saving, not a record.
//! After a crash the last certificates may be missing; they then count as misses and are issued
//! again. Writes of one dataplane apply in the order they are made. A file per certificate cost
//! a third of the issuance throughput on a disk where creating a file takes most of a
//! millisecond (bench/RESULTS.md); sled appends to its log instead.
//!
//! The root book of each backend lives beside them (tree `issuer-roots`: every root the backend
//! has shown and until when each is kept, [`super::roots`]), so a zone restarted while its CA is
//! unreachable still serves a trust bundle, and one restarted after a CA rotation still trusts
//! the old root while certificates it signed live.

use std::sync::Arc;

use mosaic_core::{Sensitive, ca::IssuedCert, template::Tags};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    DataplaneCert,
    roots::{RootBook, RootBookRecord},
};
use crate::store::ZoneStore;

/// The sled tree of cached certificates.
pub const CERTS_TREE: &str = "issuer-certs";

/// The sled tree of remembered backend roots.
pub const ROOTS_TREE: &str = "issuer-roots";

/// The certificate cache (cheap to clone; clones share the trees).
#[derive(Clone, Debug)]
pub struct DiskCache {
    /// `None` when the trees could not be opened: then nothing is cached (logged once).
    trees: Option<Trees>,
    store: Arc<ZoneStore>,
}

#[derive(Clone, Debug)]
struct Trees {
    certs: sled::Tree,
    roots: sled::Tree,
}

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The database failed.
    #[error("certificate cache ({what}): {reason}")]
    Store {
        /// What was being done.
        what: &'static str,
        /// The cause.
        reason: String,
    },
    /// A record is not what this version writes.
    #[error("certificate cache record {key}: not a certificate cache record: {reason}")]
    Corrupt {
        /// The record's key (mesh and name, not secret).
        key: String,
        /// Why.
        reason: String,
    },
}

/// The file's shape. No `Debug`: it holds the private key.
#[derive(Serialize, Deserialize)]
struct CacheFile {
    mesh: String,
    dataplane: String,
    backend: String,
    tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spiffe_id: Option<String>,
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
    /// The cache in `store`'s database.
    pub fn new(store: Arc<ZoneStore>) -> Self {
        let trees = store
            .private_tree(CERTS_TREE)
            .and_then(|certs| Ok((certs, store.private_tree(ROOTS_TREE)?)));
        let trees = match trees {
            Ok((certs, roots)) => Some(Trees { certs, roots }),
            Err(e) => {
                tracing::warn!(error = %e, "certificate cache unavailable; a restart will issue every certificate again");
                None
            }
        };
        Self { trees, store }
    }

    /// The cached certificate of `mesh`/`dataplane`, if any.
    pub fn load(&self, mesh: &str, dataplane: &str) -> Result<Option<DataplaneCert>, CacheError> {
        let Some(t) = &self.trees else {
            return Ok(None);
        };
        let key = record_key(mesh, dataplane);
        match t.certs.get(&key).map_err(store_err("reading"))? {
            Some(bytes) => decode(&describe(mesh, dataplane), &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Keeps `cert` as its dataplane's cached certificate (replacing the previous one).
    pub fn store(&self, cert: &DataplaneCert) -> Result<(), CacheError> {
        let Some(t) = &self.trees else {
            return Ok(());
        };
        let file = CacheFile {
            mesh: cert.mesh.clone(),
            dataplane: cert.dataplane.clone(),
            backend: cert.backend.clone(),
            tags: cert.tags.clone(),
            spiffe_id: cert.spiffe_id.clone(),
            chain_pem: cert.cert.chain_pem.clone(),
            key_pem: cert.cert.key_pem.expose().clone(),
            serial: cert.cert.serial.clone(),
            not_before: cert.cert.not_before.unix_timestamp(),
            not_after: cert.cert.not_after.unix_timestamp(),
            issued_at: Some(cert.issued_at.unix_timestamp()),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| CacheError::Corrupt {
            key: describe(&cert.mesh, &cert.dataplane),
            reason: e.to_string(),
        })?;
        t.certs
            .insert(record_key(&cert.mesh, &cert.dataplane), bytes)
            .map_err(store_err("writing"))?;
        Ok(())
    }

    /// Removes the cached certificate of `mesh`/`dataplane` (absent is fine).
    pub fn remove(&self, mesh: &str, dataplane: &str) -> Result<(), CacheError> {
        if let Some(t) = &self.trees {
            t.certs
                .remove(record_key(mesh, dataplane))
                .map_err(store_err("removing"))?;
        }
        Ok(())
    }

    /// How many certificates are cached.
    pub fn len(&self) -> usize {
        self.trees.as_ref().map_or(0, |t| t.certs.len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes everything cached so far durable.
    pub async fn flush(&self) -> Result<(), CacheError> {
        self.store.flush().await.map_err(store_err("flushing"))
    }

    /// Keeps the root book of `backend` of `mesh` (its bundle as of `now` and every root's
    /// state).
    pub fn store_root_book(
        &self,
        mesh: &str,
        backend: &str,
        book: &RootBook,
        now: OffsetDateTime,
    ) -> Result<(), CacheError> {
        let Some(t) = &self.trees else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&book.to_record(now)).map_err(|e| CacheError::Corrupt {
            key: describe(mesh, backend),
            reason: e.to_string(),
        })?;
        t.roots
            .insert(record_key(mesh, backend), bytes)
            .map_err(store_err("writing roots"))?;
        Ok(())
    }

    /// The root book of `backend` of `mesh`, if remembered (a record of an older version, roots
    /// only, counts them as reported).
    pub fn load_root_book(
        &self,
        mesh: &str,
        backend: &str,
    ) -> Result<Option<RootBook>, CacheError> {
        Ok(self.load_record(mesh, backend)?.map(RootBook::from_record))
    }

    /// The roots of the bundle `backend` of `mesh` last served, if remembered.
    pub fn load_roots(&self, mesh: &str, backend: &str) -> Result<Option<Vec<String>>, CacheError> {
        Ok(self.load_record(mesh, backend)?.map(|r| r.roots))
    }

    fn load_record(&self, mesh: &str, backend: &str) -> Result<Option<RootBookRecord>, CacheError> {
        let Some(t) = &self.trees else {
            return Ok(None);
        };
        match t
            .roots
            .get(record_key(mesh, backend))
            .map_err(store_err("reading roots"))?
        {
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| CacheError::Corrupt {
                        key: describe(mesh, backend),
                        reason: e.to_string(),
                    })
            }
            None => Ok(None),
        }
    }
}

/// `mesh` NUL `name`: names cannot contain NUL, so keys never collide.
fn record_key(mesh: &str, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(mesh.len() + name.len() + 1);
    key.extend_from_slice(mesh.as_bytes());
    key.push(0);
    key.extend_from_slice(name.as_bytes());
    key
}

fn describe(mesh: &str, name: &str) -> String {
    format!("{mesh}/{name}")
}

fn store_err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> CacheError {
    move |e| CacheError::Store {
        what,
        reason: e.to_string(),
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<DataplaneCert, CacheError> {
    let corrupt = |reason: String| CacheError::Corrupt {
        key: key.to_string(),
        reason,
    };
    // serde_json's error names a position, never the content.
    let f: CacheFile = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let ts = |t: i64| OffsetDateTime::from_unix_timestamp(t).map_err(|e| corrupt(e.to_string()));
    let not_before = ts(f.not_before)?;
    let issued_at = match f.issued_at {
        Some(t) => ts(t)?,
        None => not_before,
    };
    Ok(DataplaneCert {
        mesh: f.mesh,
        dataplane: f.dataplane,
        backend: f.backend,
        tags: f.tags,
        spiffe_id: f.spiffe_id,
        cert: Arc::new(IssuedCert {
            chain_pem: f.chain_pem,
            key_pem: Sensitive::new(f.key_pem),
            serial: f.serial,
            not_before,
            not_after: ts(f.not_after)?,
        }),
        issued_at,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn cert() -> DataplaneCert {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        DataplaneCert {
            mesh: "default".into(),
            dataplane: "web/1".into(),
            backend: "vault-1".into(),
            tags: Tags::new(),
            spiffe_id: None,
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
    async fn round_trips_in_an_owner_only_store_and_reports_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ZoneStore::open(dir.path()).unwrap());
        let cache = DiskCache::new(store.clone());
        assert!(cache.load("default", "web/1").unwrap().is_none());
        cache.store(&cert()).unwrap();
        let back = cache.load("default", "web/1").unwrap().unwrap();
        assert_eq!(back.cert.serial, "01:02");
        assert_eq!(back.cert.key_pem.expose(), "KEY");
        assert_eq!(back.issued_at, cert().issued_at);
        assert_eq!(back.cert.not_after, cert().cert.not_after);
        assert!(cache.load_roots("default", "v").unwrap().is_none());
        let root = mosaic_ca::local::LocalCa::generate_root(
            "default",
            "r",
            std::time::Duration::from_secs(3600),
        )
        .unwrap()
        .0;
        let mut book = RootBook::default();
        book.learn(
            std::slice::from_ref(&root),
            now(),
            std::time::Duration::from_secs(60),
            1,
        );
        cache.store_root_book("default", "v", &book, now()).unwrap();
        assert_eq!(
            cache.load_roots("default", "v").unwrap().unwrap(),
            vec![root.clone()]
        );
        let back = cache.load_root_book("default", "v").unwrap().unwrap();
        assert_eq!(back.bundle(now()), vec![root]);
        let mode = std::fs::metadata(dir.path().join(crate::store::STORE_DIR))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o700,
            "the database holding keys is owner-only"
        );

        // A record this version cannot read is an error naming the dataplane, not its content.
        let t = store.private_tree(CERTS_TREE).unwrap();
        t.insert(record_key("default", "web/1"), &b"{not json"[..])
            .unwrap();
        match cache.load("default", "web/1") {
            Err(CacheError::Corrupt { key, .. }) => assert_eq!(key, "default/web/1"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_last_write_wins_removals_stick_and_a_reopened_store_has_what_was_flushed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Arc::new(ZoneStore::open(dir.path()).unwrap());
            let cache = DiskCache::new(store);
            let mut newer = cert();
            newer.cert = Arc::new(IssuedCert {
                serial: "03:04".into(),
                ..(*cert().cert).clone()
            });
            cache.store(&cert()).unwrap();
            cache.store(&newer).unwrap();
            let mut gone = cert();
            gone.dataplane = "web/2".into();
            cache.store(&gone).unwrap();
            cache.remove("default", "web/2").unwrap();
            assert_eq!(cache.len(), 1);
            cache.flush().await.unwrap();
        }
        // As after a restart.
        let cache = DiskCache::new(Arc::new(ZoneStore::open(dir.path()).unwrap()));
        let back = cache.load("default", "web/1").unwrap().unwrap();
        assert_eq!(back.cert.serial, "03:04", "the last write wins");
        assert!(cache.load("default", "web/2").unwrap().is_none());
        // Mesh and name cannot be confused: "a" + "b/c" is not "a/b" + "c".
        assert!(cache.load("default/web", "1").unwrap().is_none());
    }
}
