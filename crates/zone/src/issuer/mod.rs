//! The zone's certificate issuer: data-plane certificates from each Mesh's enabled mtls backend
//! (Vault, builtin or provided), kept fresh and gentle on Vault.
//!
//! - Backends are built per Mesh from the zone store (which is also their `SecretSource`) and
//!   rebuilt when the Mesh or its Secrets change (the store's change feed).
//! - [`Issuer::certificate`] answers from memory, then from the cache in the zone's own
//!   database (owner-only), and only asks the CA when the cached certificate has 20% of its
//!   lifetime or less left, was issued by another backend or for other tags. Concurrent requests
//!   for one dataplane are coalesced (one CA call); a semaphore bounds calls in flight; a circuit
//!   breaker per backend holds calls back after repeated failures. While the CA fails, a
//!   still-valid certificate keeps being served.
//! - [`Issuer::watch`] keeps one dataplane's certificate fresh: rotation at 80% of its lifetime
//!   (jittered), at once when the Mesh's enabled backend changes, jittered exponential backoff
//!   (1 s → 60 s) on failures, cut short when a backend whose circuit was open answers again;
//!   while it is open, one waiting certificate is woken each cooldown to make the trial.
//! - [`Issuer::trust_bundle`] is every root of every backend of the Mesh, so a migration from one
//!   backend to another never breaks trust, and every root a backend has shown while a
//!   certificate it signed may live ([`roots`]), so a CA rotation never breaks trust either. A
//!   new certificate that reaches no root of the bundle makes the issuer read the backend's roots
//!   again and publish the enlarged bundle; the first certificates under a new root are handed
//!   out once every SDS stream of the mesh confirmed a bundle holding it ([`publish`]). Roots
//!   are re-read every `roots_refresh_interval` too.
//! - A deleted Dataplane's certificate is dropped from memory and disk.
//! - CA health per mesh/backend goes to a [`CaHealthHook`] (the ZoneInsight) and to metrics.
//!
//! Module map:
//! - [`settings`]: the issuer's `IssuerSettings`; `ZoneVault`, the zone's name and own Vault
//!   credentials.
//! - [`error`]: why issuance failed, `IssuerError`.
//! - [`dataplane_cert`]: `DataplaneCert`, what a dataplane is served.
//! - [`backend_entry`]: `BackendEntry`, one built backend and its roots.
//! - [`backends`]: `MeshBackends`, the built backends of one Mesh.
//! - [`identities`]: the mesh's MeshIdentities as this zone uses them (trust domain, provider).
//! - [`cache`]: `DiskCache`, certificates and root books kept in the zone's sled database.
//! - [`roots`]: `RootBook`, the roots a backend has shown and until when each is trusted.
//! - [`publish`]: `BundleBoard`, which bundle each SDS stream's data plane has confirmed.
//! - [`breaker`]: `CircuitBreaker`, one per backend.
//! - [`backoff`]: jittered backoff and rotation instants, freshness.
//! - [`health`]: `HealthBook`, CA health per mesh/backend.
//! - [`hook`]: `CaHealthHook`, where health is reported.
//! - [`metrics`]: the issuer's metrics.
//! - `trust`: the mesh's MeshTrusts in its bundle; the MeshTrusts this zone makes from its
//!   MeshIdentities, reported to the hook.
//! - `watch`: the per-dataplane rotation task behind [`Issuer::watch`].

pub mod backend_entry;
pub mod backends;
pub mod backoff;
pub mod breaker;
pub mod cache;
pub mod dataplane_cert;
pub mod error;
pub mod health;
pub mod hook;
pub mod identities;
pub mod metrics;
pub mod publish;
pub mod roots;
pub mod settings;
mod trust;
mod watch;

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Instant,
};

use mosaic_core::{
    ca::{CaError, CaErrorKind, IssueRequest, IssuedCert},
    resource::{ResourceType, Spec, zone::CaHealth},
    template::Tags,
};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, broadcast, watch as tokio_watch};
use tracing::Instrument as _;

use self::{
    backends::BackendEntry,
    health::HealthBook,
    publish::{BundleBoard, BundleReader},
    roots::RootBook,
};
pub use self::{
    backends::MeshBackends,
    breaker::CircuitBreaker,
    cache::DiskCache,
    dataplane_cert::DataplaneCert,
    error::IssuerError,
    hook::CaHealthHook,
    settings::{IssuerSettings, ZoneVault},
};
use crate::store::{Change, ChangeOp, KdsType, StoreKey, ZoneStore};

type DpKey = (String, String);

/// How long a backend whose roots could not be fetched is left alone before the next try.
const ROOTS_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The certificate issuer (cheap to clone; clones share everything).
#[derive(Clone, Debug)]
pub struct Issuer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<ZoneStore>,
    settings: IssuerSettings,
    disk: DiskCache,
    meshes: tokio::sync::Mutex<HashMap<String, Arc<MeshBackends>>>,
    memory: Mutex<HashMap<DpKey, Arc<DataplaneCert>>>,
    locks: Mutex<HashMap<DpKey, Arc<tokio::sync::Mutex<()>>>>,
    permits: Semaphore,
    breakers: Mutex<HashMap<DpKey, Arc<CircuitBreaker>>>,
    /// Every root each backend has shown and until when it is trusted, kept across rebuilds and
    /// (on disk) restarts: a backend that cannot answer (Vault down) keeps its roots in the
    /// trust bundle, a rotated CA keeps its old root while certificates it signed live.
    books: Mutex<HashMap<DpKey, RootBook>>,
    /// One reading of a backend's roots at a time when a certificate reaches none of them.
    roots_refresh: tokio::sync::Mutex<()>,
    /// The bundle generations and what each SDS stream's data plane confirmed.
    board: BundleBoard,
    health: Arc<HealthBook>,
    /// Where the MeshTrusts this zone makes are reported (the ZoneInsight).
    trust_hook: Option<Arc<dyn CaHealthHook>>,
    /// Woken when a MeshIdentity, Mesh or Secret changes: the zone's MeshTrusts are made again.
    trust_changed: Arc<tokio::sync::Notify>,
    /// Per mesh, bumped on every change of the Mesh or its Secrets; watch tasks and SDS streams
    /// of that mesh re-check. A mesh nobody watches has no entry.
    mesh_events: Mutex<HashMap<String, tokio_watch::Sender<u64>>>,
    /// Bumped when a backend's open circuit closes (a trial succeeded): watch tasks waiting out
    /// a failure's backoff retry at once, so a returned Vault serves them at its own pace.
    recovered: tokio_watch::Sender<u64>,
}

/// What an attempt to obtain a certificate gave: the certificate to serve (new, cached, or a
/// still-valid old one) and the error, if the CA was asked and failed.
#[derive(Debug)]
struct Outcome {
    current: Option<Arc<DataplaneCert>>,
    error: Option<IssuerError>,
    /// The breaker of the backend that failed: its trial may wake the retry early.
    breaker: Option<Arc<CircuitBreaker>>,
}

// === impl Issuer ===

impl Issuer {
    /// An issuer over `store`, reporting CA health to `hook`. Must be called within a Tokio
    /// runtime: it listens to the store's change feed (until the issuer is dropped).
    pub fn new(
        store: Arc<ZoneStore>,
        hook: Option<Arc<dyn CaHealthHook>>,
        settings: IssuerSettings,
    ) -> Self {
        let feed = store.subscribe();
        let health = HealthBook::new(hook.clone(), settings.health_report_interval);
        let inner = Arc::new(Inner {
            disk: DiskCache::new(store.clone()),
            permits: Semaphore::new(settings.max_in_flight.max(1)),
            store,
            settings,
            meshes: tokio::sync::Mutex::default(),
            memory: Mutex::default(),
            locks: Mutex::default(),
            breakers: Mutex::default(),
            books: Mutex::default(),
            roots_refresh: tokio::sync::Mutex::default(),
            board: BundleBoard::default(),
            health,
            trust_hook: hook,
            trust_changed: Arc::default(),
            mesh_events: Mutex::default(),
            recovered: tokio_watch::channel(0).0,
        });
        tokio::spawn(listen(Arc::downgrade(&inner), feed));
        tokio::spawn(report_token_ttls(Arc::downgrade(&inner)));
        tokio::spawn(refresh_roots(Arc::downgrade(&inner)));
        tokio::spawn(trust::report(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// The certificate for `dataplane` of `mesh` with `tags`, from the Mesh's enabled backend:
    /// the cached one while it has more than 20% of its lifetime left, else a new one. When the
    /// CA fails and a still-valid certificate for the same tags exists, that one is returned.
    pub async fn certificate(
        &self,
        mesh: &str,
        dataplane: &str,
        tags: &Tags,
    ) -> Result<Arc<IssuedCert>, IssuerError> {
        Ok(self
            .dataplane_certificate(mesh, dataplane, tags)
            .await?
            .cert
            .clone())
    }

    /// [`Issuer::certificate`] with where it came from (backend, tags, when issued).
    pub async fn dataplane_certificate(
        &self,
        mesh: &str,
        dataplane: &str,
        tags: &Tags,
    ) -> Result<Arc<DataplaneCert>, IssuerError> {
        let span = tracing::info_span!("certificate", mesh, dataplane);
        let outcome = self
            .obtain(mesh, dataplane, tags, None)
            .instrument(span)
            .await;
        match (outcome.current, outcome.error) {
            (Some(current), error) => {
                if let Some(e) = error {
                    tracing::warn!(mesh, dataplane, error = %e, "CA failed; serving the still-valid certificate");
                }
                Ok(current)
            }
            (None, Some(e)) => Err(e),
            (None, None) => Err(IssuerError::NoMesh(mesh.to_string())),
        }
    }

    /// Keeps `dataplane`'s certificate fresh in the background and publishes each one on the
    /// returned channel (`None` until the first is obtained). Rotation at 80% of the lifetime
    /// (jittered); a new certificate at once when the Mesh's enabled backend changes. Other tags
    /// need a new watch. The task ends when every receiver is dropped.
    pub fn watch(
        &self,
        mesh: &str,
        dataplane: &str,
        tags: Tags,
    ) -> tokio_watch::Receiver<Option<Arc<DataplaneCert>>> {
        let (tx, rx) = tokio_watch::channel(None);
        let span = tracing::info_span!("certificate_watch", mesh, dataplane);
        tokio::spawn(
            watch::run(
                self.clone(),
                mesh.to_string(),
                dataplane.to_string(),
                tags,
                tx,
            )
            .instrument(span),
        );
        rx
    }

    /// Every root (PEM) of every backend of `mesh` (its MeshIdentities' providers included),
    /// deduplicated: those each backend reports and those it reported while a certificate they
    /// signed may live; then every CA of the mesh's MeshTrusts. A backend that cannot say right
    /// now contributes the roots it last reported (if any). Empty when the Mesh does not exist.
    pub async fn trust_bundle(&self, mesh: &str) -> Vec<String> {
        self.trust_bundle_generation(mesh).await.1
    }

    /// [`Issuer::trust_bundle`] with its generation (which [`Issuer::bundle_confirmed`] takes).
    pub async fn trust_bundle_generation(&self, mesh: &str) -> (u64, Vec<String>) {
        let set = match self.mesh_backends(mesh).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(mesh, error = %e, "no trust bundle");
                return (self.inner.board.generation(mesh), Vec::new());
            }
        };
        for (name, entry) in &set.backends {
            self.ensure_roots(mesh, name, entry).await;
        }
        let now = OffsetDateTime::now_utc();
        let mut books = self.lock_books();
        let generation = self.inner.board.generation(mesh);
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for name in set.backends.keys() {
            let book = book_of(&self.inner, &mut books, mesh, name);
            if book.prune(now) {
                tracing::info!(mesh, backend = %name, "a superseded root left the trust bundle: every certificate it signed has expired");
                self.persist_book(mesh, name, book, now);
            }
            for r in book.bundle(now) {
                if seen.insert(r.split_whitespace().collect::<String>()) {
                    out.push(r);
                }
            }
        }
        drop(books);
        // Then every MeshTrust of the mesh: the operator's and every zone's (this one's too,
        // once the global has it), so data planes of other trust domains verify.
        for r in trust::mesh_trust_pems(&self.inner.store, mesh) {
            if seen.insert(r.split_whitespace().collect::<String>()) {
                out.push(r);
            }
        }
        (generation, out)
    }

    /// Makes sure the root book of `name` of `mesh` knows the backend's roots: a remembered
    /// book answers at once, else the backend is asked (once per build, at most once per retry
    /// interval while it fails).
    async fn ensure_roots(&self, mesh: &str, name: &str, entry: &BackendEntry) {
        // Asked once per build of the backends (and on the refresh interval and when a
        // certificate reaches no known root); the book answers in between. A book kept from
        // before a restart answers at once: a restarted zone serves what it served with no
        // call to the CA (a certificate under a root it does not know is checked before it
        // is handed out, and the refresh interval catches up).
        let remembered = !book_of(&self.inner, &mut self.lock_books(), mesh, name)
            .roots()
            .is_empty();
        if remembered {
            return;
        }
        let fetched = entry
            .roots
            .get_or_try_init(|| async {
                // While a backend cannot answer, ask it at most once per retry interval:
                // every stream that opens needs the bundle, and a rush of reconnecting data
                // planes must not become a rush on Vault.
                if let Some(since) = entry.roots_retry_in(ROOTS_RETRY_INTERVAL) {
                    return Err(since);
                }
                let roots = self.read_roots(entry).await.map_err(|e| {
                    let text = e.to_string();
                    entry.roots_failed(&text);
                    text
                })?;
                self.learn_roots(mesh, name, &roots, entry.ca.default_ttl());
                Ok(roots)
            })
            .await;
        if let Err(e) = fetched {
            tracing::warn!(mesh, backend = %name, error = %e, "backend roots unavailable; using the last known");
        }
    }

    /// The mtls backend names of `mesh` as this issuer last built them (what the certificates
    /// it serves come from), or `None` before the mesh's first certificate.
    pub async fn backend_names(&self, mesh: &str) -> Option<Vec<String>> {
        let meshes = self.inner.meshes.lock().await;
        meshes
            .get(mesh)
            .map(|set| set.spec.backends().iter().map(|b| b.name.clone()).collect())
    }

    /// A reader of `mesh`'s bundle confirmations, one per SDS stream (see [`publish`]).
    pub fn bundle_reader(&self, mesh: &str) -> Arc<BundleReader> {
        self.inner.board.reader(mesh)
    }

    /// The data plane behind `reader` confirmed (ACKed) a bundle of `generation`.
    pub fn bundle_confirmed(&self, mesh: &str, reader: &BundleReader, generation: u64) {
        self.inner.board.confirmed(mesh, reader, generation);
    }

    /// CA health of every mesh backend used so far (sorted by mesh, then backend).
    pub fn ca_health(&self) -> Vec<CaHealth> {
        self.inner.health.snapshot()
    }

    /// Makes every certificate cached so far durable (sled otherwise flushes every 500 ms). The
    /// zone calls this on shutdown.
    pub async fn flush(&self) {
        if let Err(e) = self.inner.disk.flush().await {
            tracing::warn!(error = %e, "certificate cache not flushed; a restart may issue again");
        }
    }

    /// The settings.
    pub fn settings(&self) -> &IssuerSettings {
        &self.inner.settings
    }

    /// Ticks whenever a backend whose circuit was open answers again (its trial succeeded).
    pub fn recoveries(&self) -> tokio_watch::Receiver<u64> {
        self.inner.recovered.subscribe()
    }

    /// Ticks whenever `mesh` or one of its Secrets changes (its backends and trust bundle may
    /// have changed with it); changes of other meshes do not wake it.
    pub fn mesh_changes(&self, mesh: &str) -> tokio_watch::Receiver<u64> {
        self.inner
            .mesh_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(mesh.to_string())
            .or_insert_with(|| tokio_watch::channel(0).0)
            .subscribe()
    }

    /// Drops everything kept for `dataplane` of `mesh`: its certificate in memory and on disk and
    /// its share of the CA health's earliest expiry. Called when the Dataplane is deleted.
    pub async fn forget(&self, mesh: &str, dataplane: &str) {
        forget(&self.inner, mesh, dataplane).await;
    }

    /// The labels of `dataplane` of `mesh` as registered in this zone (what a MeshIdentity's
    /// selector and `{{ label }}` read); none when it is not registered.
    fn dataplane_labels(
        &self,
        mesh: &str,
        dataplane: &str,
    ) -> std::collections::BTreeMap<String, String> {
        match self
            .inner
            .store
            .get_resource(ResourceType::Dataplane, Some(mesh), dataplane)
        {
            Ok(Some(r)) => r.meta.labels,
            Ok(None) => Default::default(),
            Err(e) => {
                tracing::warn!(mesh, dataplane, error = %e, "Dataplane unreadable; its MeshIdentity cannot be chosen by its labels");
                Default::default()
            }
        }
    }

    /// The built backends of `mesh`, rebuilt when the stored Mesh's version changed.
    async fn mesh_backends(&self, mesh: &str) -> Result<Arc<MeshBackends>, IssuerError> {
        let key = StoreKey::mesh(mesh);
        let version = self
            .inner
            .store
            .version(&key)?
            .ok_or_else(|| IssuerError::NoMesh(mesh.to_string()))?;
        if let Some(set) = self.inner.meshes.lock().await.get(mesh)
            && set.version == version
        {
            return Ok(set.clone());
        }
        let item = self
            .inner
            .store
            .get(&key)?
            .ok_or_else(|| IssuerError::NoMesh(mesh.to_string()))?;
        let mut meshes = self.inner.meshes.lock().await;
        if let Some(set) = meshes.get(mesh)
            && set.version == item.version
        {
            return Ok(set.clone());
        }
        let resource = item
            .to_resource()
            .map_err(|_| IssuerError::NotAMesh(mesh.to_string()))?;
        let Spec::Mesh(spec) = resource.spec else {
            return Err(IssuerError::NotAMesh(mesh.to_string()));
        };
        let set = Arc::new(
            MeshBackends::build(
                mesh,
                item.version,
                spec,
                self.inner.store.clone(),
                &self.inner.settings.vault,
            )
            .await,
        );
        for (backend, error) in &set.errors {
            self.inner.health.failure(mesh, backend, error, None);
        }
        meshes.insert(mesh.to_string(), set.clone());
        Ok(set)
    }

    /// Obtains the certificate to serve. `replace` names a serial that must not be returned
    /// unless the CA fails (a rotation is due).
    async fn obtain(
        &self,
        mesh: &str,
        dataplane: &str,
        tags: &Tags,
        replace: Option<&str>,
    ) -> Outcome {
        let fail = |e: IssuerError| Outcome {
            current: None,
            error: Some(e),
            breaker: None,
        };
        let set = match self.mesh_backends(mesh).await {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        // A data plane a MeshIdentity selects gets that identity; the others the Mesh's
        // enabled backend, as before.
        let labels = self.dataplane_labels(mesh, dataplane);
        let (backend, spiffe_id) = match set.identity_for(&labels) {
            Some(identity) => {
                let id = identity
                    .trust_domain
                    .clone()
                    .and_then(|td| identity.spec.spiffe_id(&td, &labels));
                match id {
                    Ok(id) => (identity.backend.clone(), Some(id)),
                    Err(reason) => {
                        return fail(IssuerError::Identity {
                            mesh: mesh.to_string(),
                            identity: identity.name.clone(),
                            dataplane: dataplane.to_string(),
                            reason,
                        });
                    }
                }
            }
            None => match set.enabled() {
                Some(b) => (b.to_string(), None),
                None => return fail(IssuerError::MtlsDisabled(mesh.to_string())),
            },
        };
        let key: DpKey = (mesh.to_string(), dataplane.to_string());
        // One request per dataplane at a time: the others wait here and then find it cached.
        let lock = self.key_lock(&key);
        let _guard = lock.lock().await;

        let cached = self.cached(&key).await;
        let now = OffsetDateTime::now_utc();
        if let Some(c) = &cached
            && c.backend == backend
            && c.tags == *tags
            && c.spiffe_id == spiffe_id
            && replace != Some(c.cert.serial.as_str())
            && c.is_fresh(now)
        {
            self.served(c);
            return Outcome {
                current: Some(c.clone()),
                error: None,
                breaker: None,
            };
        }
        let fallback =
            cached.filter(|c| c.tags == *tags && c.spiffe_id == spiffe_id && c.is_valid(now));
        let result = match set.backends.get(&backend) {
            Some(entry) => {
                self.issue(mesh, &backend, entry, tags, spiffe_id.as_deref())
                    .await
            }
            None => Err(IssuerError::Backend {
                mesh: mesh.to_string(),
                backend: backend.clone(),
                reason: set
                    .errors
                    .get(&backend)
                    .cloned()
                    .unwrap_or_else(|| "not found in the Mesh".into()),
            }),
        };
        let result = match result {
            Ok(cert) => match set.backends.get(&backend) {
                Some(entry) => self
                    .vouch(mesh, &backend, entry, &cert)
                    .await
                    .map(|()| cert),
                None => Ok(cert),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(cert) => {
                let dc = Arc::new(DataplaneCert {
                    mesh: mesh.to_string(),
                    dataplane: dataplane.to_string(),
                    backend,
                    tags: tags.clone(),
                    spiffe_id,
                    cert: Arc::new(cert),
                    issued_at: OffsetDateTime::now_utc(),
                });
                if let Err(e) = self.inner.disk.store(&dc) {
                    tracing::warn!(error = %e, "certificate not cached; a restart will issue it again");
                }
                self.lock_memory().insert(key, dc.clone());
                self.served(&dc);
                Outcome {
                    current: Some(dc),
                    error: None,
                    breaker: None,
                }
            }
            Err(e) => {
                if let Some(f) = &fallback {
                    self.served(f);
                }
                Outcome {
                    current: fallback,
                    error: Some(e),
                    breaker: Some(self.breaker(mesh, &backend)),
                }
            }
        }
    }

    /// The backend's roots (Vault: `{pki}/cert/ca_chain` and its issuers), read under one of
    /// the `max_in_flight` permits, as certificate requests are: Vault never sees more than
    /// `max_in_flight` requests from this zone at once, even when the bundle is re-read while
    /// every permit issues (a recovery, a rotation wave).
    async fn read_roots(&self, entry: &BackendEntry) -> Result<Vec<String>, CaError> {
        // The semaphore is never closed, so the permit always comes.
        let _permit = self.inner.permits.acquire().await.ok();
        entry.ca.root_certs().await
    }

    /// One CA call, through the breaker and the semaphore, recorded in health and metrics.
    async fn issue(
        &self,
        mesh: &str,
        backend: &str,
        entry: &BackendEntry,
        tags: &Tags,
        spiffe_id: Option<&str>,
    ) -> Result<IssuedCert, IssuerError> {
        let breaker = self.breaker(mesh, backend);
        // Held until the outcome is recorded: if this request is cancelled first, its trial ends.
        let _attempt = breaker
            .try_acquire()
            .map_err(|last_error| IssuerError::CircuitOpen {
                mesh: mesh.to_string(),
                backend: backend.to_string(),
                last_error,
            })?;
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| IssuerError::Backend {
                mesh: mesh.to_string(),
                backend: backend.to_string(),
                reason: "the issuer is shutting down".into(),
            })?;
        let req = IssueRequest {
            tags: tags.clone(),
            ttl: entry.ca.default_ttl(),
            spiffe_id: spiffe_id.map(str::to_string),
        };
        let start = Instant::now();
        let result = entry.ca.issue(&req).await;
        let elapsed = start.elapsed();
        if let Some(vault) = &entry.vault {
            self.inner
                .health
                .token(mesh, backend, &vault.token_status());
        }
        match result {
            Ok(cert) => {
                if breaker.success() {
                    tracing::info!(
                        backend,
                        "the CA answers again: retrying every waiting certificate"
                    );
                    self.inner.recovered.send_modify(|g| *g = g.wrapping_add(1));
                }
                self.inner.health.success(mesh, backend, elapsed);
                tracing::info!(backend, serial = %cert.serial, not_after = %cert.not_after, "certificate issued");
                Ok(cert)
            }
            Err(e) => {
                let text = e.to_string();
                // A dataplane without a service or a template that does not render is that
                // dataplane's problem, not the CA's.
                if matches!(*e.kind, CaErrorKind::NoService | CaErrorKind::Template(_)) {
                    breaker.neutral();
                } else {
                    if breaker.failure(&text) {
                        // Open now: wake a waiting certificate for the trial at each half-open.
                        tokio::spawn(breaker::probe(Arc::downgrade(&breaker)));
                    }
                    self.inner
                        .health
                        .failure(mesh, backend, &text, Some(elapsed));
                }
                tracing::warn!(backend, error = %text, "certificate issuance failed");
                Err(e.into())
            }
        }
    }

    /// Makes sure `cert`, just issued by `backend`, reaches a root of the trust bundle before it
    /// is served: when it reaches none, the backend's roots are read again and the enlarged
    /// bundle published; the first certificates under a root new to this process wait until
    /// every SDS stream of the mesh confirmed a bundle holding it (or the confirm timeout). The
    /// root is then kept at least until `cert` expires.
    async fn vouch(
        &self,
        mesh: &str,
        backend: &str,
        entry: &BackendEntry,
        cert: &IssuedCert,
    ) -> Result<(), IssuerError> {
        let anchor = |issuer: &Issuer| {
            let now = OffsetDateTime::now_utc();
            let mut books = issuer.lock_books();
            let book = book_of(&issuer.inner, &mut books, mesh, backend);
            let index = book.anchor(&cert.chain_pem, now)?;
            if book.served(index, cert.not_after) {
                issuer.persist_book(mesh, backend, book, now);
            }
            Some(book.roots()[index].added)
        };
        let added = match anchor(self) {
            Some(added) => added,
            None => {
                // One reading at a time: the data planes rotating together find it done.
                let _one = self.inner.roots_refresh.lock().await;
                match anchor(self) {
                    Some(added) => added,
                    None => {
                        let roots =
                            self.read_roots(entry)
                                .await
                                .map_err(|e| IssuerError::UnknownRoot {
                                    mesh: mesh.to_string(),
                                    backend: backend.to_string(),
                                    reason: e.to_string(),
                                })?;
                        self.learn_roots(mesh, backend, &roots, entry.ca.default_ttl());
                        match anchor(self) {
                            Some(added) => added,
                            None => {
                                tracing::warn!(
                                    backend,
                                    serial = %cert.serial,
                                    "the new certificate reaches none of the roots the backend reports; serving it, but peers will not verify it: check that the CA chain the backend publishes (Vault: {{pki}}/cert/ca_chain) holds the CA that signs"
                                );
                                return Ok(());
                            }
                        }
                    }
                }
            }
        };
        let Some((generation, at)) = added else {
            return Ok(());
        };
        let deadline = at + self.inner.settings.bundle_confirm_timeout;
        if !self
            .inner
            .board
            .wait_confirmed(mesh, generation, deadline)
            .await
        {
            tracing::warn!(
                backend,
                "not every data plane confirmed the trust bundle holding the new root in time; serving the certificate signed by it anyway"
            );
        }
        Ok(())
    }

    /// Takes in `roots`, what `backend` of `mesh` reports now: new roots start a new bundle
    /// generation, which the mesh's SDS streams are woken to send; the book is kept on disk.
    fn learn_roots(
        &self,
        mesh: &str,
        backend: &str,
        roots: &[String],
        lifetime: std::time::Duration,
    ) {
        let now = OffsetDateTime::now_utc();
        let changed = {
            let mut books = self.lock_books();
            let book = book_of(&self.inner, &mut books, mesh, backend);
            let next = self.inner.board.generation(mesh) + 1;
            let learned = book.learn(roots, now, lifetime, next);
            if learned.added > 0 {
                let generation = self.inner.board.bump(mesh);
                debug_assert_eq!(generation, next);
                tracing::info!(
                    mesh,
                    backend,
                    roots = learned.added,
                    generation,
                    "new CA root in the trust bundle"
                );
            }
            if learned.changed {
                self.persist_book(mesh, backend, book, now);
            }
            learned.changed
        };
        if changed {
            wake_mesh(&self.inner, Some(mesh));
        }
    }

    fn persist_book(&self, mesh: &str, backend: &str, book: &RootBook, now: OffsetDateTime) {
        if let Err(e) = self.inner.disk.store_root_book(mesh, backend, book, now) {
            tracing::warn!(mesh, backend, error = %e, "backend roots not remembered on disk");
        }
    }

    fn lock_books(&self) -> std::sync::MutexGuard<'_, HashMap<DpKey, RootBook>> {
        self.inner
            .books
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The in-memory certificate, else the disk cache's (then kept in memory).
    async fn cached(&self, key: &DpKey) -> Option<Arc<DataplaneCert>> {
        if let Some(c) = self.lock_memory().get(key) {
            return Some(c.clone());
        }
        match self.inner.disk.load(&key.0, &key.1) {
            Ok(Some(c)) if c.mesh == key.0 && c.dataplane == key.1 => {
                let c = Arc::new(c);
                self.lock_memory().insert(key.clone(), c.clone());
                Some(c)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cached certificate unreadable; issuing a new one");
                None
            }
        }
    }

    fn served(&self, c: &DataplaneCert) {
        self.inner
            .health
            .served(&c.mesh, &c.dataplane, &c.backend, c.cert.not_after);
    }

    fn key_lock(&self, key: &DpKey) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone()
    }

    fn breaker(&self, mesh: &str, backend: &str) -> Arc<CircuitBreaker> {
        let s = &self.inner.settings;
        self.inner
            .breakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((mesh.to_string(), backend.to_string()))
            .or_insert_with(|| {
                Arc::new(CircuitBreaker::new(s.breaker_threshold, s.breaker_cooldown))
            })
            .clone()
    }

    fn lock_memory(&self) -> std::sync::MutexGuard<'_, HashMap<DpKey, Arc<DataplaneCert>>> {
        self.inner
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drops the certificate of a deleted dataplane from memory and disk (a Dataplane registered
/// again gets a new one) and from the health book.
async fn forget(inner: &Inner, mesh: &str, dataplane: &str) {
    let key: DpKey = (mesh.to_string(), dataplane.to_string());
    inner
        .memory
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&key);
    inner
        .locks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&key);
    if let Err(e) = inner.disk.remove(mesh, dataplane) {
        tracing::warn!(mesh, dataplane, error = %e, "cached certificate of a deleted dataplane not removed");
    }
    inner.health.forget(mesh, dataplane);
    tracing::info!(
        mesh,
        dataplane,
        "dataplane deleted; its certificate is forgotten"
    );
}

/// Follows the store's change feed: a Mesh or Secret change drops the Mesh's built backends and
/// circuit breakers and wakes the watch tasks. Ends when the issuer or the store is gone.
/// Keeps `mosaic_vault_token_ttl_seconds` and the zone intermediates' series and health current
/// between issuances (every `token_report_interval`, from what each backend knows; no Vault
/// call), and renews a zone intermediate that is due although nothing is issued.
async fn report_token_ttls(inner: Weak<Inner>) {
    let Some(every) = inner.upgrade().map(|i| i.settings.token_report_interval) else {
        return;
    };
    let mut tick = tokio::time::interval(every.max(std::time::Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let meshes: Vec<(String, Arc<MeshBackends>)> = inner
            .meshes
            .lock()
            .await
            .iter()
            .map(|(m, b)| (m.clone(), b.clone()))
            .collect();
        for (mesh, set) in meshes {
            for (name, entry) in &set.backends {
                if let Some(vault) = &entry.vault {
                    inner.health.token(&mesh, name, &vault.token_status());
                    if let Some(status) = vault.intermediate_status() {
                        // Renewal at 80% even while nothing is issued (coalesced with issuance).
                        let renewing = vault.clone();
                        tokio::spawn(async move { renewing.renew_intermediate_if_due().await });
                        inner.health.intermediate(
                            &mesh,
                            name,
                            &status,
                            mosaic_core::ca::CaBackend::default_ttl(vault.as_ref()),
                        );
                    }
                }
            }
        }
    }
}

async fn listen(inner: Weak<Inner>, mut feed: broadcast::Receiver<Change>) {
    loop {
        let mesh = match feed.recv().await {
            Ok(change) => match change.key.kind {
                KdsType::Resource(ResourceType::Mesh) => Some(change.key.name),
                KdsType::Resource(ResourceType::Secret) => change.key.mesh,
                KdsType::Resource(ResourceType::MeshIdentity) => {
                    if change.op == ChangeOp::Delete
                        && let (Some(inner), Some(mesh)) = (inner.upgrade(), &change.key.mesh)
                    {
                        identities::forget_generated(&inner.store, mesh, &change.key.name);
                    }
                    change.key.mesh
                }
                // A MeshTrust changes the bundle only: wake the mesh's streams.
                KdsType::Resource(ResourceType::MeshTrust) => {
                    let Some(inner) = inner.upgrade() else { return };
                    wake_mesh(&inner, change.key.mesh.as_deref());
                    continue;
                }
                KdsType::Resource(ResourceType::Dataplane) if change.op == ChangeOp::Delete => {
                    let Some(inner) = inner.upgrade() else { return };
                    if let Some(mesh) = &change.key.mesh {
                        forget(&inner, mesh, &change.key.name).await;
                    }
                    continue;
                }
                _ => continue,
            },
            // Missed changes: forget every Mesh.
            Err(broadcast::error::RecvError::Lagged(_)) => None,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else { return };
        {
            let mut meshes = inner.meshes.lock().await;
            match &mesh {
                Some(m) => {
                    meshes.remove(m);
                }
                None => meshes.clear(),
            }
        }
        // A changed configuration deserves a fresh try: close the Mesh's circuits.
        inner
            .breakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(m, _), _| mesh.as_ref().is_some_and(|changed| changed != m));
        wake_mesh(&inner, mesh.as_deref());
        inner.trust_changed.notify_one();
    }
}

/// Wakes whoever watches `mesh` (every mesh for `None`); drops the senders nobody listens to
/// any more.
fn wake_mesh(inner: &Inner, mesh: Option<&str>) {
    inner
        .mesh_events
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|m, events| {
            if mesh.is_none_or(|changed| changed == m) {
                events.send_modify(|g| *g = g.wrapping_add(1));
            }
            events.receiver_count() > 0
        });
}

/// The book of `backend` of `mesh`: the one in memory, else the one on disk, else a new one.
fn book_of<'a>(
    inner: &Inner,
    books: &'a mut HashMap<DpKey, RootBook>,
    mesh: &str,
    backend: &str,
) -> &'a mut RootBook {
    books
        .entry((mesh.to_string(), backend.to_string()))
        .or_insert_with(|| match inner.disk.load_root_book(mesh, backend) {
            Ok(Some(book)) => book,
            Ok(None) => RootBook::default(),
            Err(e) => {
                tracing::warn!(mesh, backend, error = %e, "remembered backend roots unreadable");
                RootBook::default()
            }
        })
}

/// Every `roots_refresh_interval`, reads the roots of every backend in use again, so a root
/// another zone (or an operator) rotated to reaches this zone's bundles before long, and a
/// superseded root leaves them once its keep-until passed (the SDS streams are woken when a
/// bundle changes). One unauthenticated read per backend (Vault: `{pki}/cert/ca_chain`).
async fn refresh_roots(inner: Weak<Inner>) {
    let Some(every) = inner.upgrade().map(|i| i.settings.roots_refresh_interval) else {
        return;
    };
    let mut tick = tokio::time::interval(every.max(std::time::Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let issuer = Issuer { inner: strong };
        let meshes: Vec<(String, Arc<MeshBackends>)> = issuer
            .inner
            .meshes
            .lock()
            .await
            .iter()
            .map(|(m, b)| (m.clone(), b.clone()))
            .collect();
        for (mesh, set) in meshes {
            for (name, entry) in &set.backends {
                match issuer.read_roots(entry).await {
                    Ok(roots) => issuer.learn_roots(&mesh, name, &roots, entry.ca.default_ttl()),
                    Err(e) => {
                        tracing::debug!(mesh, backend = %name, error = %e, "backend roots not re-read");
                    }
                }
                let now = OffsetDateTime::now_utc();
                let dropped = {
                    let mut books = issuer.lock_books();
                    let book = book_of(&issuer.inner, &mut books, &mesh, name);
                    let dropped = book.prune(now);
                    if dropped {
                        issuer.persist_book(&mesh, name, book, now);
                    }
                    dropped
                };
                if dropped {
                    tracing::info!(mesh, backend = %name, "a superseded root left the trust bundle: every certificate it signed has expired");
                    wake_mesh(&issuer.inner, Some(&mesh));
                }
            }
        }
    }
}
