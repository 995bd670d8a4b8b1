//! The zone's certificate issuer against a real OpenBao set up as seed 000 says: issuance and
//! trust bundle, reuse of cached certificates after a restart (zero Vault issue calls), coalesced
//! concurrent requests, rotation, a Vault outage (old certificate served, health unhealthy, then
//! recovery; waiting watches served once Vault answers again), and a builtin → vault migration (both roots trusted, re-issue on the switch).

use std::{
    os::unix::fs::PermissionsExt as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine as _;
use mosaic_ca::local::LocalCa;
use mosaic_core::{
    ca::{IssuedCert, identity},
    resource::{
        parse::from_value,
        zone::{CaHealth, ZoneTrust},
    },
    template::Tags,
};
use mosaic_testkit::{OpenBao, SEED_MOUNT, SEED_ROLE, ensure_crypto_provider};
use mosaic_zone::{
    issuer::{CaHealthHook, Issuer, IssuerError, IssuerSettings, ZoneVault, cache::DiskCache},
    store::{KdsItem, SyncBatch, ZoneStore},
};
use serde_json::{Value, json};

const MESH: &str = "default";
/// Generous deadline for anything the tests wait for.
const DEADLINE: Duration = Duration::from_secs(120);

fn issue_path() -> String {
    format!("{SEED_MOUNT}/issue/{SEED_ROLE}")
}

/// A seed-000 root-layout OpenBao with an audit log; returns it, its root PEM and a token.
async fn seed_vault() -> anyhow::Result<(OpenBao, String, String)> {
    ensure_crypto_provider();
    let bao = OpenBao::start_with_audit(None).await?;
    let (root, token) = setup_pki(&bao).await?;
    Ok((bao, root, token))
}

async fn setup_pki(bao: &OpenBao) -> anyhow::Result<(String, String)> {
    let root = bao.setup_root_pki(SEED_MOUNT, MESH).await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    let token = bao.seed_policy_and_token().await?;
    Ok((root, token))
}

fn vault_backend(name: &str, addr: &str, expiration: &str) -> Value {
    json!({
        "name": name,
        "type": "vault",
        "dpCert": {"rotation": {"expiration": expiration}},
        "conf": {"fromCp": {
            "address": addr,
            "pki": SEED_MOUNT,
            "role": SEED_ROLE,
            "commonName": "{{ tag \"kuma.io/service\" }}.mesh",
            "auth": {"token": {"secret": "vault-token"}}
        }}
    })
}

fn builtin_backend(name: &str) -> Value {
    json!({"name": name, "type": "builtin", "dpCert": {"rotation": {"expiration": "24h"}}})
}

fn put(store: &ZoneStore, value: Value, version: u64) {
    let resource = from_value(value).expect("valid resource");
    store
        .apply_sync(&SyncBatch {
            upserts: vec![KdsItem::from_resource(&resource, version)],
            removes: vec![],
        })
        .expect("sync applied");
}

fn put_mesh(store: &ZoneStore, version: u64, enabled: &str, backends: Vec<Value>) {
    put(
        store,
        json!({"type": "Mesh", "name": MESH, "mtls": {"enabledBackend": enabled, "backends": backends}}),
        version,
    );
}

/// Mesh `default` (version 1) with one enabled Vault backend `vault-1` at `addr`, whose token is
/// the Secret `vault-token`; certificates live `expiration`.
fn put_vault_mesh(store: &ZoneStore, addr: &str, token: &str, expiration: &str) {
    put_secret(store, "vault-token", token, 1);
    put_mesh(
        store,
        1,
        "vault-1",
        vec![vault_backend("vault-1", addr, expiration)],
    );
}

fn put_secret(store: &ZoneStore, name: &str, value: &str, version: u64) {
    let data = base64::engine::general_purpose::STANDARD.encode(value);
    put(
        store,
        json!({"type": "Secret", "mesh": MESH, "name": name, "data": data}),
        version,
    );
}

fn tags(service: &str) -> Tags {
    let mut t = Tags::new();
    t.entry("kuma.io/service".into())
        .or_default()
        .insert(service.into());
    t
}

#[derive(Debug, Default)]
struct RecordingHook {
    pushes: Mutex<Vec<Vec<CaHealth>>>,
    trusts: Mutex<Option<Vec<ZoneTrust>>>,
}

impl CaHealthHook for RecordingHook {
    fn set_ca_health(&self, health: Vec<CaHealth>) {
        self.pushes.lock().unwrap().push(health);
    }

    fn set_mesh_trusts(&self, trusts: Vec<ZoneTrust>) {
        *self.trusts.lock().unwrap() = Some(trusts);
    }
}

impl RecordingHook {
    fn last(&self, backend: &str) -> Option<CaHealth> {
        self.pushes
            .lock()
            .unwrap()
            .last()
            .and_then(|l| l.iter().find(|h| h.backend == backend).cloned())
    }

    /// Polls until the last report of `backend` satisfies `check` (reports are debounced).
    async fn wait_for(&self, backend: &str, check: impl Fn(&CaHealth) -> bool) -> CaHealth {
        let start = Instant::now();
        loop {
            if let Some(h) = self.last(backend).filter(|h| check(h)) {
                return h;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for the health of {backend}; last: {:?}",
                self.last(backend)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn issuer(store: &Arc<ZoneStore>, hook: Option<Arc<RecordingHook>>) -> Issuer {
    Issuer::new(
        store.clone(),
        hook.map(|h| h as Arc<dyn CaHealthHook>),
        IssuerSettings::default(),
    )
}

/// Verifies the chain the way a data plane would (rustls-webpki, serverAuth and clientAuth).
fn verify(cert: &IssuedCert, roots: &[String]) {
    mosaic_testkit::verify_chain(&cert.chain_pem, roots).expect("chain verifies against the roots");
}

fn same_pems(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.trim().to_string()).collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

#[tokio::test]
async fn issues_from_vault_with_a_verifying_chain_and_the_vault_root_as_trust_bundle()
-> anyhow::Result<()> {
    let (bao, root, token) = seed_vault().await?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(ZoneStore::open(dir.path())?);
    put_vault_mesh(&store, bao.addr(), &token, "24h");
    let hook = Arc::new(RecordingHook::default());
    let issuer = issuer(&store, Some(hook.clone()));

    let cert = issuer.certificate(MESH, "web-1", &tags("web")).await?;
    verify(&cert, std::slice::from_ref(&root));
    let info = identity::inspect_pem(&cert.chain_pem)?;
    assert!(
        info.uri_sans.contains(&"spiffe://default/web".to_string()),
        "SPIFFE identity: {:?}",
        info.uri_sans
    );
    assert_eq!(info.common_name.as_deref(), Some("web.mesh"));
    let lifetime = cert.not_after - time::OffsetDateTime::now_utc();
    assert!(lifetime > time::Duration::hours(23) && lifetime <= time::Duration::hours(25));

    assert!(same_pems(&issuer.trust_bundle(MESH).await, &[root]));
    assert_eq!(bao.count_audit_requests(&issue_path())?, 1);

    issuer.flush().await;
    // Cached in the zone's own database, which is owner-only; the backend's roots are
    // remembered beside it (for a restart while Vault is unreachable).
    let cache = DiskCache::new(store.clone());
    assert_eq!(cache.len(), 1);
    let cached = cache
        .load(MESH, "web-1")?
        .expect("web-1's certificate is cached");
    assert_eq!(cached.cert.serial, cert.serial);
    assert!(cache.load_roots(MESH, "vault-1")?.is_some());
    let mode = std::fs::metadata(dir.path().join(mosaic_zone::store::STORE_DIR))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    let health = hook
        .wait_for("vault-1", |h| {
            h.certificates_issued == 1 && h.earliest_expiry.is_some()
        })
        .await;
    assert!(health.healthy);
    assert_eq!(health.certificates_issued, 1);
    assert_eq!(health.earliest_expiry, Some(cert.not_after));
    assert!(health.last_success.is_some());
    assert_eq!(issuer.ca_health(), vec![health]);
    Ok(())
}

#[tokio::test]
async fn a_restarted_issuer_serves_cached_certificates_without_calling_vault() -> anyhow::Result<()>
{
    let (bao, _root, token) = seed_vault().await?;
    let dir = tempfile::tempdir()?;
    let mut serials = Vec::new();
    {
        let store = Arc::new(ZoneStore::open(dir.path())?);
        put_vault_mesh(&store, bao.addr(), &token, "24h");
        store.flush().await?;
        let issuer = issuer(&store, None);
        for i in 0..5 {
            let c = issuer
                .certificate(MESH, &format!("web-{i}"), &tags("web"))
                .await?;
            serials.push(c.serial.clone());
        }
        // As the zone does on shutdown: the cache is made durable.
        issuer.flush().await;
    }
    assert_eq!(bao.count_audit_requests(&issue_path())?, 5);

    // The store is reopened (retrying while the old handle's lock is released).
    let start = Instant::now();
    let store = loop {
        match ZoneStore::open(dir.path()) {
            Ok(s) => break Arc::new(s),
            Err(e) => {
                assert!(start.elapsed() < DEADLINE, "store did not reopen: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let issuer = issuer(&store, None);
    for (i, serial) in serials.iter().enumerate() {
        let c = issuer
            .certificate(MESH, &format!("web-{i}"), &tags("web"))
            .await?;
        assert_eq!(&c.serial, serial, "the cached certificate is served");
    }
    assert_eq!(
        bao.count_audit_requests(&issue_path())?,
        5,
        "no Vault issue call after the restart"
    );
    // Other tags are another identity: that one is issued.
    let c = issuer.certificate(MESH, "web-0", &tags("api")).await?;
    assert_ne!(&c.serial, &serials[0]);
    assert_eq!(bao.count_audit_requests(&issue_path())?, 6);
    Ok(())
}

#[tokio::test]
async fn concurrent_requests_for_one_dataplane_make_one_vault_call() -> anyhow::Result<()> {
    let (bao, root, token) = seed_vault().await?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(ZoneStore::open(dir.path())?);
    put_vault_mesh(&store, bao.addr(), &token, "24h");
    let issuer = issuer(&store, None);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let issuer = issuer.clone();
        tasks.spawn(async move { issuer.certificate(MESH, "web-1", &tags("web")).await });
    }
    let mut serials = std::collections::BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        let cert = r??;
        verify(&cert, std::slice::from_ref(&root));
        serials.insert(cert.serial.clone());
    }
    assert_eq!(serials.len(), 1, "every caller got the same certificate");
    assert_eq!(bao.count_audit_requests(&issue_path())?, 1);
    Ok(())
}

#[tokio::test]
async fn a_watch_rotates_a_short_lived_certificate() -> anyhow::Result<()> {
    let (bao, root, token) = seed_vault().await?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(ZoneStore::open(dir.path())?);
    put_vault_mesh(&store, bao.addr(), &token, "20s");
    let issuer = issuer(&store, None);

    let mut rx = issuer.watch(MESH, "web-1", tags("web"));
    let first = tokio::time::timeout(DEADLINE, rx.wait_for(Option::is_some))
        .await??
        .clone()
        .expect("a certificate");
    verify(&first.cert, std::slice::from_ref(&root));
    assert_eq!(first.backend, "vault-1");
    let second = tokio::time::timeout(
        DEADLINE,
        rx.wait_for(|c| {
            c.as_ref()
                .is_some_and(|c| c.cert.serial != first.cert.serial)
        }),
    )
    .await??
    .clone()
    .expect("a certificate");
    verify(&second.cert, std::slice::from_ref(&root));
    assert!(second.cert.not_after > first.cert.not_after);
    Ok(())
}

#[tokio::test]
async fn while_vault_is_down_the_old_certificate_is_served_and_health_says_why()
-> anyhow::Result<()> {
    let (mut bao, root, token) = seed_vault().await?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(ZoneStore::open(dir.path())?);
    put_vault_mesh(&store, bao.addr(), &token, "24h");
    let hook = Arc::new(RecordingHook::default());
    let issuer = issuer(&store, Some(hook.clone()));
    let old = issuer.certificate(MESH, "web-1", &tags("web")).await?;
    assert!(same_pems(
        &issuer.trust_bundle(MESH).await,
        std::slice::from_ref(&root)
    ));

    bao.stop();
    // A Mesh update during the outage rebuilds the backends; the Vault root stays trusted.
    put_mesh(
        &store,
        2,
        "vault-1",
        vec![vault_backend("vault-1", bao.addr(), "24h")],
    );
    assert!(same_pems(
        &issuer.trust_bundle(MESH).await,
        std::slice::from_ref(&root)
    ));
    let again = issuer.certificate(MESH, "web-1", &tags("web")).await?;
    assert_eq!(
        again.serial, old.serial,
        "the still-valid certificate is served"
    );
    let mut rx = issuer.watch(MESH, "web-1", tags("web"));
    let watched = tokio::time::timeout(DEADLINE, rx.wait_for(Option::is_some))
        .await??
        .clone()
        .expect("a certificate");
    assert_eq!(watched.cert.serial, old.serial);

    let err = issuer
        .certificate(MESH, "web-2", &tags("web"))
        .await
        .expect_err("Vault is down");
    let health = hook.wait_for("vault-1", |h| !h.healthy).await;
    assert!(!health.last_error.is_empty());
    assert_eq!(health.last_error, err.to_string());
    assert_eq!(health.certificates_issued, 1);

    // Vault back (dev mode: set up again, with a new token delivered as a Secret update).
    bao.restart().await?;
    let (new_root, new_token) = setup_pki(&bao).await?;
    put_secret(&store, "vault-token", &new_token, 3);
    let start = Instant::now();
    let cert = loop {
        match issuer.certificate(MESH, "web-2", &tags("web")).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(start.elapsed() < DEADLINE, "issuance did not resume: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    verify(&cert, &[new_root]);
    let health = hook.wait_for("vault-1", |h| h.healthy).await;
    assert!(health.last_error.is_empty());
    Ok(())
}

/// Watches waiting out a failure's backoff (an hour here) are served as soon as a trial through
/// the open circuit succeeds, not at the end of their backoff: a returned Vault serves every
/// waiting data plane at its own pace.
#[tokio::test]
async fn watches_waiting_out_a_backoff_are_served_once_vault_answers_again() -> anyhow::Result<()> {
    let (bao, root, token) = seed_vault().await?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(ZoneStore::open(dir.path())?);
    put_secret(&store, "vault-token", &token, 1);
    let mut backend = vault_backend("vault-1", bao.addr(), "24h");
    backend["dpCert"]["requestTimeout"] = json!("1s");
    put_mesh(&store, 1, "vault-1", vec![backend]);
    let hook = Arc::new(RecordingHook::default());
    let settings = IssuerSettings {
        min_backoff: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        breaker_threshold: 1,
        breaker_cooldown: Duration::from_secs(2),
        ..IssuerSettings::default()
    };
    let issuer = Issuer::new(
        store.clone(),
        Some(hook.clone() as Arc<dyn CaHealthHook>),
        settings,
    );

    // A hung Vault: every watch's first request times out and the circuit opens.
    bao.pause()?;
    let mut watches: Vec<_> = (0..4)
        .map(|i| issuer.watch(MESH, &format!("web-{i}"), tags("web")))
        .collect();
    hook.wait_for("vault-1", |h| !h.healthy).await;
    // Let every watch's request reach its timeout (they started together).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(watches.iter().all(|w| w.borrow().is_none()));

    // Vault answers again; new data planes keep arriving (as they would), and a request of
    // theirs is the trial that finds it so. A request that hung before the return may still
    // time out after it and open the circuit again: the next new data plane's trial closes it.
    bao.resume()?;
    let arrivals = {
        let issuer = issuer.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let _ = issuer
                    .certificate(MESH, &format!("web-new-{i}"), &tags("web"))
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    for w in &mut watches {
        let cert = tokio::time::timeout(DEADLINE, w.wait_for(Option::is_some))
            .await
            .map_err(|_| anyhow::anyhow!("a waiting watch was not served once Vault answered"))??
            .clone()
            .expect("a certificate");
        verify(&cert.cert, std::slice::from_ref(&root));
    }
    arrivals.abort();
    Ok(())
}

#[tokio::test]
async fn builtin_and_vault_in_one_mesh_trust_both_roots_and_a_switch_reissues() -> anyhow::Result<()>
{
    let (bao, vault_root, token) = seed_vault().await?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(ZoneStore::open(dir.path())?);
    let (builtin_cert, builtin_key) =
        LocalCa::generate_root(MESH, "builtin", Duration::from_secs(86_400 * 365))?;
    put_secret(&store, "vault-token", &token, 1);
    put_secret(&store, "default.ca-builtin-cert-ca-1", &builtin_cert, 1);
    put_secret(
        &store,
        "default.ca-builtin-key-ca-1",
        builtin_key.expose(),
        1,
    );
    let backends = vec![
        builtin_backend("ca-1"),
        vault_backend("vault-1", bao.addr(), "24h"),
    ];
    put_mesh(&store, 1, "ca-1", backends.clone());
    let issuer = issuer(&store, None);

    let bundle = issuer.trust_bundle(MESH).await;
    assert!(same_pems(
        &bundle,
        &[builtin_cert.clone(), vault_root.clone()]
    ));

    let mut rx = issuer.watch(MESH, "web-1", tags("web"));
    let first = tokio::time::timeout(DEADLINE, rx.wait_for(Option::is_some))
        .await??
        .clone()
        .expect("a certificate");
    assert_eq!(first.backend, "ca-1");
    verify(&first.cert, std::slice::from_ref(&builtin_cert));
    assert_eq!(bao.count_audit_requests(&issue_path())?, 0);

    // The migration: vault becomes the enabled backend; the watch re-issues at once.
    put_mesh(&store, 2, "vault-1", backends);
    let second = tokio::time::timeout(
        DEADLINE,
        rx.wait_for(|c| c.as_ref().is_some_and(|c| c.backend == "vault-1")),
    )
    .await??
    .clone()
    .expect("a certificate");
    verify(&second.cert, &bundle);
    verify(&second.cert, std::slice::from_ref(&vault_root));
    assert_eq!(bao.count_audit_requests(&issue_path())?, 1);
    Ok(())
}

#[tokio::test]
async fn a_mesh_change_wakes_only_that_meshs_watchers() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(ZoneStore::open(&dir.path().join("store"))?);
    let issuer = issuer(&store, None);
    let mut ours = issuer.mesh_changes(MESH);
    let mut other = issuer.mesh_changes("other");
    put_mesh(&store, 1, "ca-1", vec![builtin_backend("ca-1")]);
    tokio::time::timeout(DEADLINE, ours.changed()).await??;

    // A change of another mesh (its Secret) wakes that mesh's watchers...
    put(
        &store,
        json!({"type": "Secret", "mesh": "other", "name": "s", "data": "dA=="}),
        2,
    );
    tokio::time::timeout(DEADLINE, other.changed()).await??;
    // ...and, handled in the same step, not ours.
    assert!(
        !ours.has_changed()?,
        "a change of mesh `other` woke `{MESH}`"
    );

    put_secret(&store, "ours", "x", 3);
    tokio::time::timeout(DEADLINE, ours.changed()).await??;
    Ok(())
}

#[tokio::test]
async fn the_vault_token_ttl_metric_stays_current_without_issuance() -> anyhow::Result<()> {
    // This test's process records metrics (nextest runs each test in a process of its own).
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    let ttl = || {
        handle
            .render()
            .lines()
            .find(|l| {
                l.starts_with("mosaic_vault_token_ttl_seconds{")
                    && l.contains("mesh=\"default\"")
                    && l.contains("backend=\"vault-1\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };

    let (bao, _root, token) = seed_vault().await?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(ZoneStore::open(dir.path())?);
    put_vault_mesh(&store, bao.addr(), &token, "24h");
    let settings = IssuerSettings {
        token_report_interval: Duration::from_millis(100),
        ..IssuerSettings::default()
    };
    let issuer = Issuer::new(store.clone(), None, settings);
    issuer.certificate(MESH, "web-1", &tags("web")).await?;
    let first = ttl().expect("the TTL is reported at the first issuance");
    assert!(first > 0.0, "{first}");

    // Nothing more is issued, yet the reported TTL follows the clock.
    let start = Instant::now();
    while ttl().is_none_or(|now| now >= first) {
        assert!(
            start.elapsed() < DEADLINE,
            "the token TTL stayed at {first} s without an issuance"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        bao.count_audit_requests(&issue_path())?,
        1,
        "one issuance only"
    );
    Ok(())
}

#[tokio::test]
async fn a_meshidentity_issues_its_spiffe_id_to_the_data_planes_it_selects_and_makes_a_meshtrust()
-> anyhow::Result<()> {
    ensure_crypto_provider();
    let dir = tempfile::tempdir()?;
    let store = Arc::new(ZoneStore::open(dir.path())?);
    put(&store, json!({"type": "Mesh", "name": MESH}), 1);
    put(
        &store,
        json!({"type": "MeshIdentity", "name": "web-id", "mesh": MESH, "spec": {
            "selector": {"dataplane": {"matchLabels": {"app": "web"}}},
            "provider": {"type": "Bundled", "bundled": {
                "insecureAllowSelfSigned": true, "autogenerate": {"enabled": true},
                "certificateParameters": {"expiry": "2h"}}}}}),
        2,
    );
    for (name, app) in [("web-1", "web"), ("db-1", "db")] {
        let dp = from_value(json!({"type": "Dataplane", "mesh": MESH, "name": name,
            "labels": {"app": app, "kuma.io/workload": app},
            "networking": {"address": "127.0.0.1",
                "inbound": [{"port": 8080, "tags": {"kuma.io/service": app}}]}}))?;
        store.put_local(dp, time::OffsetDateTime::now_utc())?;
    }
    let hook = Arc::new(RecordingHook::default());
    let issuer = Issuer::new(
        store.clone(),
        Some(hook.clone() as Arc<dyn CaHealthHook>),
        IssuerSettings {
            vault: ZoneVault {
                zone: Some("east".into()),
                ..ZoneVault::default()
            },
            ..IssuerSettings::default()
        },
    );
    let cert = issuer
        .dataplane_certificate(MESH, "web-1", &tags("web"))
        .await?;
    let info = identity::inspect_pem(&cert.cert.chain_pem)?;
    assert_eq!(
        info.uri_sans,
        ["spiffe://default.east.mesh.local/workload/web"],
        "the SPIFFE ID is the only URI SAN"
    );
    assert_eq!(cert.backend, "MeshIdentity/web-id");
    let lifetime = cert.cert.not_after - cert.cert.not_before;
    assert!(lifetime <= time::Duration::hours(2) + time::Duration::minutes(2));
    let bundle = issuer.trust_bundle(MESH).await;
    verify(&cert.cert, &bundle);
    // Not selected, and the Mesh has no mtls: no certificate, saying why.
    let err = issuer
        .certificate(MESH, "db-1", &tags("db"))
        .await
        .expect_err("db-1 has no identity");
    assert!(matches!(err, IssuerError::MtlsDisabled(_)), "{err}");
    // The zone's MeshTrust: the identity's trust domain here and its generated CA.
    let start = Instant::now();
    let trust = loop {
        if let Some(t) = hook
            .trusts
            .lock()
            .unwrap()
            .clone()
            .filter(|t| !t.is_empty())
        {
            break t;
        }
        assert!(start.elapsed() < DEADLINE, "no MeshTrust reported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(trust.len(), 1);
    assert_eq!(trust[0].identity, "web-id");
    assert_eq!(trust[0].trust_domain, "default.east.mesh.local");
    verify(&cert.cert, &trust[0].ca_bundles);
    // The same generated CA after a restart of the issuer (kept in the zone's database).
    drop(issuer);
    let again = Issuer::new(
        store.clone(),
        None,
        IssuerSettings {
            vault: ZoneVault {
                zone: Some("east".into()),
                ..ZoneVault::default()
            },
            ..IssuerSettings::default()
        },
    );
    assert!(same_pems(&again.trust_bundle(MESH).await, &bundle));
    Ok(())
}
