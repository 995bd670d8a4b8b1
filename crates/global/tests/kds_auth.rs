//! KDS authentication against a REAL KDS server: zone tokens (wrong, expired, missing), the zone
//! name, disabled zones (at connect and while connected), self-registration, and TLS trust.

mod kds_support;
mod support;

use kds_support::{KdsHarness, ZoneClient, assert_status, dataplane};
use mosaic_core::resource::{ResourceType, Spec};
use mosaic_global::store::{ResourceKey, ResourceStore};
use mosaic_testkit::token_id;
use support::raft_store::TestStore;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_zone_names_are_checked_on_both_streams() {
    let store = TestStore::start().await;
    let kds = KdsHarness::start(store.store()).await;

    // A token from another global (another signing key).
    let elsewhere = TestStore::start().await;
    let other = KdsHarness::start(elsewhere.store()).await;
    let foreign = other.token("east").await;
    let zone = kds.client("east", &foreign).await;
    let err = zone.global_to_zone().await.err().expect("refused");
    assert_status(
        &err,
        Code::Unauthenticated,
        &[
            "east",
            "generate a new token",
            "mosaicctl generate zone-token --zone east",
        ],
    );
    let err = zone.zone_to_global().await.err().expect("refused");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        !err.message().contains(&foreign),
        "the token is never echoed"
    );

    // Expired.
    let expired = kds.expired_token("east").await;
    let zone = kds.client("east", &expired).await;
    let err = zone.global_to_zone().await.err().expect("refused");
    assert_status(
        &err,
        Code::Unauthenticated,
        &["expired", "mosaicctl generate zone-token --zone east"],
    );

    // Garbage and none.
    let zone = kds.client("east", "not-a-token").await;
    let err = zone.global_to_zone().await.err().expect("refused");
    assert_status(&err, Code::Unauthenticated, &["malformed", "--zone east"]);
    let zone = kds.client("east", "").await;
    let err = zone.global_to_zone().await.err().expect("refused");
    assert_status(
        &err,
        Code::Unauthenticated,
        &["no zone token", "mosaicctl generate zone-token --zone east"],
    );

    // A valid token for another zone.
    let token = kds.token("east").await;
    let zone = kds.client("east", &token).await;
    let err = zone.global_to_zone_as("west").await.err().expect("refused");
    assert_status(
        &err,
        Code::PermissionDenied,
        &["\"east\"", "\"west\"", "--zone west"],
    );

    // None of the refused attempts registered a zone.
    assert!(store.list(ResourceType::Zone, None).unwrap().is_empty());

    // The right token for the right zone works and registers the zone.
    let mut g2z = zone.global_to_zone().await.expect("accepted");
    kds_support::registered(&store, "east").await;
    g2z.subscribe("Zone", &[]).await;
    let full = g2z.next().await;
    assert_eq!(full.resources.len(), 1);
    let z = store
        .get(&ResourceKey::new(ResourceType::Zone, None, "east"))
        .unwrap()
        .expect("registered");
    assert!(matches!(z.spec, Spec::Zone(ref s) if s.enabled == Some(true)));

    drop(g2z);
    other.stop().await;
    elsewhere.stop().await;
    kds.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_zone_is_refused_and_disabling_ends_its_session() {
    let store = TestStore::start().await;
    store.put("type: Zone\nname: west\nenabled: false\n").await;
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("west").await;
    let zone = kds.client("west", &token).await;
    let err = zone.global_to_zone().await.err().expect("refused");
    assert_status(
        &err,
        Code::PermissionDenied,
        &["west", "disabled", "enabled: true"],
    );
    let err = zone.zone_to_global().await.err().expect("refused");
    assert_eq!(err.code(), Code::PermissionDenied);

    store.put("type: Zone\nname: west\nenabled: true\n").await;
    let mut g2z = zone.global_to_zone().await.expect("accepted once enabled");
    g2z.subscribe("Mesh", &[]).await;
    let full = g2z.next().await;
    g2z.ack(&full).await;
    store.put("type: Zone\nname: west\nenabled: false\n").await;
    let status = g2z.ended().await;
    assert_status(&status, Code::PermissionDenied, &["disabled"]);
    kds.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_ca_is_refused_by_the_zone() {
    let store = TestStore::start().await;
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("east").await;
    let wrong = mosaic_runtime::tls::generate_ca("someone else's CA").unwrap();
    let result = ZoneClient::connect(&kds.url, &wrong.cert_pem, "east", &token).await;
    let err = match result {
        Err(e) => format!("{e:?}"),
        Ok(client) => format!(
            "{:?}",
            client
                .global_to_zone()
                .await
                .err()
                .expect("the TLS handshake fails")
        ),
    };
    assert!(
        err.contains("UnknownIssuer") || err.contains("certificate"),
        "{err}"
    );
    // And the right CA works.
    let zone = kds.client("east", &token).await;
    zone.global_to_zone().await.expect("accepted");
    kds.stop().await;
    store.stop().await;
}

/// A zone token that expires while the zone is connected ends both open streams at its `exp`
/// (a timer, not the next message), saying when it expired and what to run; the same token is
/// then refused at connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_zone_token_ends_both_open_streams() {
    let store = TestStore::start().await;
    let kds = KdsHarness::start(store.store()).await;
    let short = kds
        .tokens
        .issue_zone_token("east", std::time::Duration::from_secs(4))
        .await
        .unwrap();
    let short = short.expose().clone();
    let zone = kds.client("east", &short).await;
    let mut g2z = zone.global_to_zone().await.expect("accepted while valid");
    let mut z2g = zone
        .zone_to_global()
        .await
        .expect("z2g accepted while valid");
    g2z.subscribe("Mesh", &[]).await;
    let full = g2z.next().await;
    g2z.ack(&full).await;

    let status = g2z.ended().await;
    assert_status(
        &status,
        Code::Unauthenticated,
        &[
            "zone \"east\"",
            "the zone token expired at ",
            "mosaicctl generate zone-token --zone east",
            "global.token_file",
        ],
    );
    assert!(
        !status.message().contains(&short),
        "the token is never echoed"
    );
    let status = z2g.ended().await;
    assert_status(
        &status,
        Code::Unauthenticated,
        &["the zone token expired at ", "--zone east"],
    );

    let err = zone.global_to_zone().await.err().expect("refused");
    assert_status(&err, Code::Unauthenticated, &["expired", "--zone east"]);
    // A zone with a valid token is unaffected.
    let long = kds.token("east").await;
    kds.client("east", &long)
        .await
        .global_to_zone()
        .await
        .expect("a fresh token connects");
    kds.stop().await;
    store.stop().await;
}

/// Rotating the zone-token signing key keeps zones on tokens of the old key connected (and lets
/// them reconnect); retiring the old key ends their open streams at once, naming the key, and
/// refuses the old token at connect, while a token of the new key connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retiring_a_zone_signing_key_ends_the_sessions_of_its_tokens() {
    use mosaic_core::token::signing_key_of;
    use mosaic_global::tokens::KeyPurpose;
    let store = TestStore::start().await;
    let kds = KdsHarness::start(store.store()).await;
    let old = kds.token("west").await;
    let old_north = kds.token("north").await;
    let old_kid = signing_key_of(&old).unwrap().1;
    let zone = kds.client("west", &old).await;
    let mut g2z = zone.global_to_zone().await.expect("accepted");
    g2z.subscribe("Mesh", &[]).await;
    let full = g2z.next().await;
    g2z.ack(&full).await;
    let mut z2g = zone.zone_to_global().await.expect("z2g accepted");

    let rotated = kds.tokens.rotate(&KeyPurpose::Zone).await.unwrap();
    assert_eq!(rotated.serial, 2);
    let new = kds.token("west").await;
    assert_eq!(signing_key_of(&new).unwrap().1, rotated.kid);
    // Still connected: a change reaches the open stream.
    store.put("type: Mesh\nname: after-rotation\n").await;
    let delta = g2z.next().await;
    assert!(delta.resources.iter().any(|r| r.name == "after-rotation"));
    g2z.ack(&delta).await;
    // ZoneToGlobal still answers.
    z2g.send("Dataplane", true, vec![], vec![], 1).await;
    let north = kds.client("north", &old_north).await;
    let mut north_g2z = north
        .global_to_zone()
        .await
        .expect("an old-key token still connects");

    kds.tokens.retire(&KeyPurpose::Zone, 1).await.unwrap();
    let status = g2z.ended().await;
    assert_status(
        &status,
        Code::Unauthenticated,
        &[
            "zone \"west\"",
            "signing key 1",
            &old_kid,
            "retired",
            "mosaicctl generate zone-token --zone west",
        ],
    );
    let status = z2g.ended().await;
    assert_status(&status, Code::Unauthenticated, &[&old_kid, "retired"]);
    let status = north_g2z.ended().await;
    assert_status(
        &status,
        Code::Unauthenticated,
        &["zone \"north\"", "retired"],
    );

    let err = zone.global_to_zone().await.err().expect("refused");
    assert_status(
        &err,
        Code::Unauthenticated,
        &["signing key 1", &old_kid, "retired", "--zone west"],
    );
    kds.client("west", &new)
        .await
        .global_to_zone()
        .await
        .expect("a token of the new key connects");
    kds.stop().await;
    store.stop().await;
}

/// Kuma's way to revoke a leaked zone token: its id in GlobalSecret `zone-token-revocations`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_zone_token_is_refused_and_revoking_ends_its_sessions() {
    use base64::Engine as _;
    let store = TestStore::start().await;
    let kds = KdsHarness::start(store.store()).await;
    let leaked = kds.token("west").await;
    let fresh = kds.token("west").await;
    let zone = kds.client("west", &leaked).await;
    let mut g2z = zone
        .global_to_zone()
        .await
        .expect("accepted before revocation");
    g2z.subscribe("Mesh", &[]).await;
    let full = g2z.next().await;
    g2z.ack(&full).await;
    let mut z2g = zone.zone_to_global().await.expect("z2g accepted");

    let id = token_id(&leaked);
    let data = base64::engine::general_purpose::STANDARD.encode(format!("unrelated-id, {id}\n"));
    store
        .put(&format!(
            "type: GlobalSecret\nname: zone-token-revocations\ndata: {data}\n"
        ))
        .await;

    // Both open streams end, naming the token id and the GlobalSecret (never the token).
    let status = g2z.ended().await;
    assert_status(
        &status,
        Code::Unauthenticated,
        &["west", &id, "revoked", "zone-token-revocations"],
    );
    assert!(!status.message().contains(&leaked));
    let status = z2g
        .refused("Dataplane", vec![dataplane("default", "dp-after", &[])])
        .await;
    assert_status(&status, Code::Unauthenticated, &[&id, "revoked"]);
    assert!(
        !kds_support::list(store.store().as_ref(), ResourceType::Dataplane)
            .iter()
            .any(|d| d.meta.name == "dp-after"),
        "nothing is taken from a revoked zone"
    );

    // New streams with the revoked token are refused; a token not listed still connects.
    let err = zone.global_to_zone().await.err().expect("refused");
    assert_status(
        &err,
        Code::Unauthenticated,
        &[&id, "zone-token-revocations"],
    );
    let err = zone.zone_to_global().await.err().expect("refused");
    assert_eq!(err.code(), Code::Unauthenticated);
    let other = kds.client("west", &fresh).await;
    other
        .global_to_zone()
        .await
        .expect("a token that is not listed connects");
    kds.stop().await;
    store.stop().await;
}

/// A fresh 2048-bit RSA key as Kuma keeps its signing keys (PEM `RSA PRIVATE KEY`), made by the
/// openssl command line (scripts/setup-test-env.sh installs it).
fn kuma_signing_key_pem() -> String {
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .expect("openssl");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// A zone token exactly as Kong Mesh issues it: RS256, kid "1", claims `Zone`, `Scope`, `jti`,
/// `iat`, `nbf`, `exp`.
fn kuma_zone_token(pem: &str, zone: &str, scope: &[&str], jti: &str) -> String {
    use mosaic_core::token::kuma::{KumaSigningKey, KumaZoneClaims, RegisteredClaims};
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    KumaSigningKey::from_secret_value(1, pem.as_bytes())
        .unwrap()
        .sign(&KumaZoneClaims {
            zone: zone.to_string(),
            scope: Some(scope.iter().map(|s| s.to_string()).collect()),
            registered: RegisteredClaims {
                jti: Some(jti.to_string()),
                iat: Some(now),
                nbf: Some(now - 300.0),
                exp: Some(now + 3600.0),
            },
        })
        .unwrap()
        .into_inner()
}

/// Moving from Kong Mesh: its zone-token signing key, applied as the GlobalSecret
/// `zone-token-signing-key-1` exactly as Kuma keeps it, lets zones connect with the `cp`-scoped
/// RS256 tokens they already have. Tokens without the `cp` scope (Kuma's ingress/egress-only, or
/// Mosaic's own), signed by another key, or revoked are refused, each saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kuma_zone_tokens_verify_with_the_imported_key_and_need_the_cp_scope() {
    use base64::Engine as _;
    let store = TestStore::start().await;
    let kds = KdsHarness::start(store.store()).await;
    let pem = kuma_signing_key_pem();
    let data = base64::engine::general_purpose::STANDARD.encode(&pem);
    store
        .put(&format!(
            "type: GlobalSecret\nname: zone-token-signing-key-1\ndata: {data}\n"
        ))
        .await;

    let token = kuma_zone_token(&pem, "east", &["cp"], "4f1c9e52-kuma-cp");
    let zone = kds.client("east", &token).await;
    zone.global_to_zone()
        .await
        .expect("a Kong Mesh cp token is accepted");
    zone.zone_to_global().await.expect("on both streams");

    // Kuma's default scope (ingress, egress) does not open KDS.
    let proxies = kuma_zone_token(&pem, "east", &["ingress", "egress"], "4f1c9e52-kuma-px");
    let err = kds
        .client("east", &proxies)
        .await
        .global_to_zone()
        .await
        .err()
        .expect("refused");
    assert_status(
        &err,
        Code::PermissionDenied,
        &["[ingress, egress]", "lacks \"cp\"", "--scope cp"],
    );
    // Nor does a Mosaic token for an egress only.
    let egress = kds
        .tokens
        .issue_scoped_zone_token(
            "east",
            Some(&["egress".to_string()]),
            std::time::Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let err = kds
        .client("east", egress.expose())
        .await
        .zone_to_global()
        .await
        .err()
        .expect("refused");
    assert_status(&err, Code::PermissionDenied, &["[egress]", "lacks \"cp\""]);

    // Signed by another key under the same serial.
    let forged = kuma_zone_token(&kuma_signing_key_pem(), "east", &["cp"], "4f1c9e52-other");
    let err = kds
        .client("east", &forged)
        .await
        .global_to_zone()
        .await
        .err()
        .expect("refused");
    assert_status(
        &err,
        Code::Unauthenticated,
        &[
            "does not verify with the imported Kuma signing key 1",
            "zone-token-signing-key-1",
        ],
    );
    assert!(
        !err.message().contains(&forged),
        "the token is never echoed"
    );

    // Revoked the Kuma way.
    let revoked = base64::engine::general_purpose::STANDARD.encode("4f1c9e52-kuma-cp");
    store
        .put(&format!(
            "type: GlobalSecret\nname: zone-token-revocations\ndata: {revoked}\n"
        ))
        .await;
    let err = kds
        .client("east", &token)
        .await
        .global_to_zone()
        .await
        .err()
        .expect("refused");
    assert_status(
        &err,
        Code::Unauthenticated,
        &["4f1c9e52-kuma-cp", "revoked", "zone-token-revocations"],
    );
    store.stop().await;
}
