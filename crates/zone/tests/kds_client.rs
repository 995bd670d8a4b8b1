//! The KDS client's stream handling, driven message by message by `KdsProtocolDriver` (a minimal
//! in-test server implementing the .proto; the real global is tested against zones after merge).

mod support;

use std::{path::PathBuf, sync::Arc, time::Duration};

use mosaic_core::resource::ResourceType;
use mosaic_proto::kds::DiscoveryResponse;
use mosaic_zone::{
    insight::ZoneInsightReporter,
    kds::{GlobalEndpoint, KdsClient, KdsClientConfig, KdsOptions, KdsStatus},
    store::{StoreKey, ZoneStore},
};
use support::{
    fixtures::{dataplane_json, eventually, mesh, reference, response, secret, secret_raw, within},
    kds_driver::{KdsProtocolDriver, ZoneToGlobalStream},
};
use tokio::{sync::watch, task::JoinHandle};

struct TestZone {
    store: Arc<ZoneStore>,
    status: watch::Receiver<KdsStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestZone {
    fn start(urls: &str, token_file: Option<PathBuf>, ca_pem: Option<Vec<u8>>) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), urls, token_file, ca_pem)
    }

    fn start_in(
        dir: tempfile::TempDir,
        urls: &str,
        token_file: Option<PathBuf>,
        ca_pem: Option<Vec<u8>>,
    ) -> Self {
        mosaic_runtime::tls::install_crypto_provider();
        let store = Arc::new(open_when_released(dir.path()));
        let config = KdsClientConfig {
            zone: "east".into(),
            endpoints: GlobalEndpoint::parse_list(urls).unwrap(),
            ca_pem,
            token_file,
            options: KdsOptions {
                backoff_min: Duration::from_millis(20),
                backoff_max: Duration::from_millis(200),
                connect_timeout: Duration::from_secs(5),
                ..KdsOptions::default()
            },
        };
        let insight = ZoneInsightReporter::new(store.clone(), "east");
        let client = KdsClient::new(config, store.clone(), insight);
        let status = client.status();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(client.run(stop_rx));
        Self {
            store,
            status,
            stop,
            task,
            _dir: dir,
        }
    }

    async fn shutdown(self) -> tempfile::TempDir {
        self.stop.send(true).unwrap();
        within("the KDS client to stop", self.task).await.unwrap();
        self._dir
    }

    fn secret_version(&self, name: &str) -> Option<u64> {
        self.store
            .get(&StoreKey::new(ResourceType::Secret, Some("default"), name))
            .unwrap()
            .map(|i| i.version)
    }
}

fn token_file(dir: &tempfile::TempDir, token: &str) -> PathBuf {
    let path = dir.path().join("zone-token");
    std::fs::write(&path, token).unwrap();
    path
}

/// The next response of `ty` from the zone, ACKing every response on the way.
async fn next_of_type(z2g: &mut ZoneToGlobalStream, ty: &str) -> DiscoveryResponse {
    loop {
        let r = z2g.next_response().await;
        z2g.ack(&r).await;
        if r.r#type == ty {
            return r;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_with_metadata_then_applies_and_acks() {
    let mut driver = KdsProtocolDriver::start().await;
    let tokens = tempfile::tempdir().unwrap();
    let zone = TestZone::start(
        &driver.url(),
        Some(token_file(&tokens, "tok-abc.def\n")),
        None,
    );
    let mut g2z = driver.next_global_to_zone().await;
    let md = &g2z.metadata;
    assert_eq!(md.get("authorization").unwrap(), "Bearer tok-abc.def");
    assert_eq!(md.get("mosaic-zone").unwrap(), "east");
    assert_eq!(
        md.get("mosaic-zone-version").unwrap(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(md.get("mosaic-features").unwrap(), "chunked-responses");
    let subs = g2z.subscriptions().await;
    let types: Vec<_> = subs.iter().map(|s| s.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            "Mesh",
            "Secret",
            "GlobalSecret",
            "Zone",
            "DataplaneTokenKey",
            "MeshIdentity",
            "MeshTrust"
        ]
    );
    assert!(subs.iter().all(|s| s.known.is_empty()));

    let z2g = driver.next_zone_to_global().await;
    assert_eq!(
        z2g.metadata.get("authorization").unwrap(),
        "Bearer tok-abc.def"
    );

    let ack = g2z
        .exchange(response(
            "Mesh",
            "n-1",
            true,
            vec![mesh("default", 7)],
            vec![],
        ))
        .await;
    assert!(ack.rejected.is_empty(), "{ack:?}");
    assert_eq!(ack.r#type, "Mesh");
    let stored = zone.store.get(&StoreKey::mesh("default")).unwrap().unwrap();
    assert_eq!(stored.version, 7);
    assert_eq!(stored.value["version"], 7);
    let mut status = zone.status.clone();
    within("connected", status.wait_for(|s| s.connected))
        .await
        .unwrap();
    assert_eq!(
        status.borrow().global.as_deref(),
        Some(driver.url().as_str())
    );
    zone.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_are_applied_together_after_the_last_one() {
    let mut driver = KdsProtocolDriver::start().await;
    let zone = TestZone::start(&driver.url(), None, None);
    let mut g2z = driver.next_global_to_zone().await;
    g2z.subscriptions().await;
    g2z.exchange(response(
        "Mesh",
        "m",
        true,
        vec![mesh("default", 1)],
        vec![],
    ))
    .await;

    let chunk = |i: u32, names: &[&str]| DiscoveryResponse {
        chunk: i,
        chunks: 3,
        ..response(
            "Secret",
            "big",
            true,
            names
                .iter()
                .map(|n| secret("default", n, 10, "v"))
                .collect(),
            vec![],
        )
    };
    g2z.send(chunk(0, &["a", "b"])).await;
    g2z.send(chunk(2, &["e"])).await;
    // The stream is handled in order: once this later response is ACKed, both chunks above
    // were processed, and nothing of the incomplete response may be in the store.
    let ack = g2z
        .exchange(response("Zone", "z", true, vec![], vec![]))
        .await;
    assert!(ack.rejected.is_empty());
    assert_eq!(zone.secret_version("a"), None);
    assert_eq!(zone.secret_version("e"), None);

    let ack = g2z.exchange(chunk(1, &["c", "d"])).await;
    assert_eq!(ack.response_nonce, "big");
    assert!(ack.rejected.is_empty(), "{ack:?}");
    for n in ["a", "b", "c", "d", "e"] {
        assert_eq!(zone.secret_version(n), Some(10), "{n}");
    }
    zone.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_item_is_nacked_and_the_others_apply() {
    let mut driver = KdsProtocolDriver::start().await;
    let zone = TestZone::start(&driver.url(), None, None);
    let mut g2z = driver.next_global_to_zone().await;
    g2z.subscriptions().await;
    let mut wrong_type = mesh("intruder", 4);
    wrong_type.r#type = "Mesh".into();
    let answer = g2z
        .exchange(response(
            "Secret",
            "s",
            false,
            vec![
                secret("default", "good-1", 4, "x"),
                secret_raw("default", "bad", 4, "%%% not base64"),
                wrong_type,
                secret("default", "good-2", 4, "y"),
            ],
            vec![],
        ))
        .await;
    assert_eq!(answer.rejected.len(), 2, "{answer:?}");
    let bad = &answer.rejected[0];
    assert_eq!(bad.r#ref.as_ref().unwrap().name, "bad");
    assert!(
        bad.reason.contains("data") && bad.reason.contains("base64"),
        "{}",
        bad.reason
    );
    assert_eq!(answer.rejected[1].r#ref.as_ref().unwrap().name, "intruder");
    assert_eq!(zone.secret_version("good-1"), Some(4));
    assert_eq!(zone.secret_version("good-2"), Some(4));
    assert_eq!(zone.secret_version("bad"), None);

    // The stream stays: the next response is applied on it.
    let ack = g2z
        .exchange(response(
            "Secret",
            "s2",
            false,
            vec![secret("default", "good-3", 5, "z")],
            vec![],
        ))
        .await;
    assert!(ack.rejected.is_empty());
    assert_eq!(zone.secret_version("good-3"), Some(5));
    zone.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_resumes_with_known_versions_and_prunes_only_the_diff() {
    let mut driver = KdsProtocolDriver::start().await;
    let zone = TestZone::start(&driver.url(), None, None);
    let mut g2z = driver.next_global_to_zone().await;
    g2z.subscriptions().await;
    g2z.exchange(response(
        "Mesh",
        "m",
        true,
        vec![mesh("default", 1)],
        vec![],
    ))
    .await;
    g2z.exchange(response(
        "Secret",
        "s",
        true,
        vec![
            secret("default", "s1", 1, "a"),
            secret("default", "s2", 2, "b"),
            secret("default", "s3", 3, "c"),
        ],
        vec![],
    ))
    .await;

    // The global goes away: nothing is deleted, and the zone comes back with what it holds.
    g2z.responses
        .send(Err(tonic::Status::unavailable("replica stopping")))
        .await
        .unwrap();
    let mut g2z = driver.next_global_to_zone().await;
    let subs = g2z.subscriptions().await;
    for n in ["s1", "s2", "s3"] {
        assert!(
            zone.secret_version(n).is_some(),
            "{n} was deleted by a disconnect"
        );
    }
    let known_secrets: Vec<(String, u64)> = subs[1]
        .known
        .iter()
        .map(|k| (k.r#ref.as_ref().unwrap().name.clone(), k.version))
        .collect();
    assert_eq!(
        known_secrets,
        [("s1".into(), 1), ("s2".into(), 2), ("s3".into(), 3)]
    );
    assert_eq!(subs[0].known.len(), 1);

    // Authoritative diff: s2 changed, s3 removed, s1 unchanged (not resent, kept).
    g2z.exchange(response(
        "Secret",
        "s-diff",
        true,
        vec![secret("default", "s2", 9, "b2")],
        vec![reference("Secret", "default", "s3")],
    ))
    .await;
    assert_eq!(zone.secret_version("s1"), Some(1));
    assert_eq!(zone.secret_version("s2"), Some(9));
    assert_eq!(zone.secret_version("s3"), None);
    // An authoritative Mesh response with no difference keeps the known Mesh.
    g2z.exchange(response("Mesh", "m-diff", true, vec![], vec![]))
        .await;
    assert!(
        zone.store
            .get(&StoreKey::mesh("default"))
            .unwrap()
            .is_some()
    );

    // Deltas.
    g2z.exchange(response(
        "Secret",
        "d1",
        false,
        vec![secret("default", "s4", 10, "d")],
        vec![reference("Secret", "default", "s1")],
    ))
    .await;
    assert_eq!(zone.secret_version("s1"), None);
    assert_eq!(zone.secret_version("s4"), Some(10));

    // A second authoritative response on the same stream (nothing known any more) prunes
    // everything it does not mention.
    g2z.exchange(response(
        "Secret",
        "full",
        true,
        vec![secret("default", "s4", 10, "d")],
        vec![],
    ))
    .await;
    assert_eq!(zone.secret_version("s2"), None);
    assert_eq!(zone.secret_version("s4"), Some(10));
    assert!(zone.status.borrow().sessions >= 2);
    zone.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_serves_from_disk_and_resubscribes_with_it() {
    let mut driver = KdsProtocolDriver::start().await;
    let zone = TestZone::start(&driver.url(), None, None);
    let mut g2z = driver.next_global_to_zone().await;
    g2z.subscriptions().await;
    g2z.exchange(response(
        "Mesh",
        "m",
        true,
        vec![mesh("default", 5)],
        vec![],
    ))
    .await;
    let dir = zone.shutdown().await;
    driver.stop();

    // The global is gone; the restarted zone still has the Mesh.
    let store = open_when_released(dir.path());
    let m = store
        .get_resource(ResourceType::Mesh, None, "default")
        .unwrap()
        .unwrap();
    assert_eq!(m.meta.version, Some(5));
    drop(store);

    let mut driver = KdsProtocolDriver::start().await;
    let zone = TestZone::start_in(dir, &driver.url(), None, None);
    let mut g2z = driver.next_global_to_zone().await;
    let subs = g2z.subscriptions().await;
    assert_eq!(subs[0].known[0].version, 5);
    zone.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_to_global_sends_authoritative_first_then_deltas_and_survives_a_nack() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = ZoneStore::open(dir.path()).unwrap();
        let dp = mosaic_core::resource::parse::from_value(dataplane_json("default", "dp-1", "web"))
            .unwrap();
        store
            .put_local(dp, time::OffsetDateTime::now_utc())
            .unwrap();
    }
    let mut driver = KdsProtocolDriver::start().await;
    let zone = TestZone::start_in(dir, &driver.url(), None, None);
    let mut z2g = driver.next_zone_to_global().await;
    assert_eq!(z2g.metadata.get("mosaic-zone").unwrap(), "east");
    let first = z2g.next_response().await;
    assert_eq!(first.r#type, "Dataplane");
    assert!(first.authoritative);
    assert_eq!(first.resources.len(), 1);
    assert_eq!(first.resources[0].name, "dp-1");
    assert_eq!(first.resources[0].mesh, "default");
    let json: serde_json::Value = serde_json::from_slice(&first.resources[0].json).unwrap();
    assert_eq!(json["networking"]["address"], "10.0.0.1");
    z2g.ack(&first).await;

    // The zone reports its own ZoneInsight, with this session in it.
    loop {
        let insight = next_of_type(&mut z2g, "ZoneInsight").await;
        let has_session = insight.resources.iter().any(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.json).unwrap();
            assert_eq!(v["name"], "east");
            v["subscriptions"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x["connectTime"].is_string()))
        });
        if has_session {
            break;
        }
    }

    let dp2 =
        mosaic_core::resource::parse::from_value(dataplane_json("default", "dp-2", "api")).unwrap();
    zone.store
        .put_local(dp2, time::OffsetDateTime::now_utc())
        .unwrap();
    let delta = next_of_type(&mut z2g, "Dataplane").await;
    assert!(!delta.authoritative);
    assert_eq!(delta.resources.len(), 1);
    assert_eq!(delta.resources[0].name, "dp-2");
    // A NACK keeps the stream.
    z2g.requests
        .send(Ok(mosaic_proto::kds::DiscoveryRequest {
            r#type: "Dataplane".into(),
            known: vec![],
            response_nonce: delta.nonce.clone(),
            rejected: vec![mosaic_proto::kds::Rejection {
                r#ref: Some(reference("Dataplane", "default", "dp-2")),
                reason: "test says no".into(),
            }],
        }))
        .await
        .unwrap();
    zone.store
        .delete_local(&[StoreKey::new(
            ResourceType::Dataplane,
            Some("default"),
            "dp-1",
        )])
        .unwrap();
    let removal = next_of_type(&mut z2g, "Dataplane").await;
    assert_eq!(
        removal.removed,
        vec![reference("Dataplane", "default", "dp-1")]
    );
    assert_eq!(zone.status.borrow().sessions, 1);

    // A subscribe from the global is answered with an authoritative diff against its versions.
    z2g.requests
        .send(Ok(mosaic_proto::kds::DiscoveryRequest {
            r#type: "Dataplane".into(),
            known: vec![mosaic_proto::kds::ResourceVersion {
                r#ref: Some(reference("Dataplane", "default", "dp-gone")),
                version: 1,
            }],
            response_nonce: String::new(),
            rejected: vec![],
        }))
        .await
        .unwrap();
    let diff = next_of_type(&mut z2g, "Dataplane").await;
    assert!(diff.authoritative);
    assert_eq!(diff.resources.len(), 1);
    assert_eq!(
        diff.removed,
        vec![reference("Dataplane", "default", "dp-gone")]
    );
    zone.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_zone_retries_and_rereads_its_token_file() {
    let mut driver = KdsProtocolDriver::start().await;
    driver.refuse(Some(tonic::Status::unauthenticated(
        "the zone token expired at 2020-01-01T00:00:00Z",
    )));
    let tokens = tempfile::tempdir().unwrap();
    let file = token_file(&tokens, "tok-OLD-7f3a");
    let zone = TestZone::start(&driver.url(), Some(file.clone()), None);
    let md = driver.next_refused().await;
    assert_eq!(md.get("authorization").unwrap(), "Bearer tok-OLD-7f3a");
    let mut status = zone.status.clone();
    within(
        "the refusal in the status",
        status.wait_for(|s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("refused"))
        }),
    )
    .await
    .unwrap();
    let err = status.borrow().last_error.clone().unwrap();
    assert_eq!(
        err,
        "the global refused zone east: the zone token expired at 2020-01-01T00:00:00Z"
    );
    assert!(!err.contains("tok-OLD"));

    // The operator fixes the token file; the next attempt carries the new token.
    std::fs::write(&file, "tok-NEW-9c1e").unwrap();
    loop {
        let md = driver.next_refused().await;
        if md.get("authorization").unwrap() == "Bearer tok-NEW-9c1e" {
            break;
        }
    }
    driver.refuse(None);
    let g2z = driver.next_global_to_zone().await;
    assert_eq!(
        g2z.metadata.get("authorization").unwrap(),
        "Bearer tok-NEW-9c1e"
    );
    within("connected", status.wait_for(|s| s.connected))
        .await
        .unwrap();
    zone.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_next_global_address() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut driver = KdsProtocolDriver::start().await;
    let urls = format!("grpc://{closed}, {}", driver.url());
    let zone = TestZone::start(&urls, None, None);
    let mut g2z = driver.next_global_to_zone().await;
    g2z.subscriptions().await;
    let mut status = zone.status.clone();
    within("connected", status.wait_for(|s| s.connected))
        .await
        .unwrap();
    assert_eq!(
        status.borrow().global.as_deref(),
        Some(driver.url().as_str())
    );
    zone.shutdown().await;
}

fn tls_material() -> (String, String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let other_key = KeyPair::generate().unwrap();
    let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other_ca = other.self_signed(&other_key).unwrap();
    (
        ca_cert.pem(),
        cert.pem(),
        key.serialize_pem(),
        other_ca.pem(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_with_global_ca_cert() {
    mosaic_runtime::tls::install_crypto_provider();
    let (ca, cert, key, wrong_ca) = tls_material();
    let mut driver = KdsProtocolDriver::start_with_tls(Some((cert, key))).await;
    let url = format!("grpcs://localhost:{}", driver.addr.port());

    let wrong = TestZone::start(&url, None, Some(wrong_ca.into_bytes()));
    let mut status = wrong.status.clone();
    within(
        "a TLS failure",
        status.wait_for(|s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("cannot connect"))
        }),
    )
    .await
    .unwrap();
    assert!(!status.borrow().connected);
    wrong.shutdown().await;

    let zone = TestZone::start(&url, None, Some(ca.into_bytes()));
    let mut g2z = driver.next_global_to_zone().await;
    g2z.subscriptions().await;
    let mut status = zone.status.clone();
    within("connected over TLS", status.wait_for(|s| s.connected))
        .await
        .unwrap();
    let _ = eventually("the status to name the TLS address", || {
        (zone.status.borrow().global.as_deref() == Some(url.as_str())).then_some(())
    })
    .await;
    zone.shutdown().await;
}

/// Opens the zone store in `dir`, waiting (bounded) while a previous client's tasks still hold
/// sled's file lock on it: a stopped client releases its handle when its tasks finish.
fn open_when_released(dir: &std::path::Path) -> ZoneStore {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match ZoneStore::open(dir) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("opening the zone store: {e}"),
        }
    }
}

/// A global message over the zone's 16 MiB limit is refused and named, with its size, in the
/// zone's status (and log); nothing of it is stored, and the zone reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_global_message_is_refused_and_its_size_named() {
    let mut driver = KdsProtocolDriver::start().await;
    let zone = TestZone::start(&driver.url(), None, None);
    let mut g2z = driver.next_global_to_zone().await;
    g2z.subscriptions().await;
    let mut huge = mesh("default", 7);
    huge.json = serde_json::to_vec(&serde_json::json!({
        "type": "Mesh", "name": "default", "labels": {"filler": "x".repeat(17 * 1024 * 1024)}
    }))
    .unwrap();
    g2z.send(response("Mesh", "n-1", true, vec![huge], vec![]))
        .await;
    let mut status = zone.status.clone();
    within(
        "the refusal in the status",
        status.wait_for(|s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("over this zone's KDS message limit"))
        }),
    )
    .await
    .unwrap();
    let err = status.borrow().last_error.clone().unwrap();
    assert!(
        err.starts_with("the global sent a GlobalToZone DiscoveryResponse of ")
            && err.contains("over this zone's KDS message limit of 16777216 bytes"),
        "{err}"
    );
    let size: usize = err
        .trim_start_matches("the global sent a GlobalToZone DiscoveryResponse of ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {err}"));
    assert!(size > 17 * 1024 * 1024, "{err}");
    assert!(
        zone.store
            .get(&StoreKey::mesh("default"))
            .unwrap()
            .is_none()
    );
    // It reconnects.
    driver.next_global_to_zone().await;
    zone.shutdown().await;
}
