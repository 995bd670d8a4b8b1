//! Token issuance against REAL raft stores: a single-replica store per test, and a 3-replica
//! cluster where two replicas race to create the first key.

mod support;

use std::{collections::BTreeMap, time::Duration};

use mosaic_core::token::{TokenError, TokenKind, verify_dataplane_token, verify_zone_token};
use mosaic_global::{
    store::{Command, CommandResult, ResourceStore},
    tokens::{KeyPurpose, TokenIssueError, Tokens},
};
use support::{
    TestStore,
    raft_store::{TestCluster, committed_index},
};
use time::OffsetDateTime;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn service(name: &str) -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([("kuma.io/service".to_string(), vec![name.to_string()])])
}

#[tokio::test]
async fn keys_are_created_once_and_reused() {
    let store = TestStore::start().await;
    let tokens = Tokens::new(store.store());
    assert!(tokens.public_keys(&KeyPurpose::Zone).unwrap().is_empty());

    let proposed = store.log_index().await;
    let a = tokens.issue_zone_token("east", HOUR).await.unwrap();
    let b = tokens.issue_zone_token("west", HOUR).await.unwrap();
    assert_eq!(
        store.log_index().await,
        proposed + 1,
        "the key is proposed once"
    );
    // Another Tokens over the same state, with nothing cached (a restarted process), reuses the
    // stored key.
    let replica = Tokens::new(store.store());
    let c = replica.issue_zone_token("north", HOUR).await.unwrap();
    assert_eq!(store.log_index().await, proposed + 1);
    let keys = replica.public_keys(&KeyPurpose::Zone).unwrap();
    assert_eq!(keys.len(), 1);
    let now = OffsetDateTime::now_utc();
    for (token, zone) in [(&a, "east"), (&b, "west"), (&c, "north")] {
        let claims = verify_zone_token(token.expose(), &keys, now).unwrap();
        assert_eq!(claims.zone, zone);
    }
    // Only public material is returned: 32 raw Ed25519 bytes.
    assert_eq!(keys[0].bytes.len(), 32);
    store.stop().await;
}

/// Two replicas of a real cluster (both followers, so both forward to the leader) issue the first
/// zone token at once. Whether both propose a key or one already sees the other's depends on
/// timing; either way exactly one key exists afterwards, the same on every replica, and it
/// verifies both tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_use_yields_one_key() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    let (r1, r2) = (Tokens::new(cluster.store(a)), Tokens::new(cluster.store(b)));
    let (t1, t2) = tokio::join!(
        r1.issue_zone_token("east", HOUR),
        r2.issue_zone_token("west", HOUR)
    );
    let (t1, t2) = (t1.unwrap(), t2.unwrap());
    let k1 = r1.public_keys(&KeyPurpose::Zone).unwrap();
    let k2 = r2.public_keys(&KeyPurpose::Zone).unwrap();
    assert_eq!(k1.len(), 1);
    assert_eq!(k1, k2, "the first writer's key won on both");
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        verify_zone_token(t1.expose(), &k1, now).unwrap().zone,
        "east"
    );
    assert_eq!(
        verify_zone_token(t2.expose(), &k1, now).unwrap().zone,
        "west"
    );
    // Exactly one key is stored: the same record on every replica, and it is that key.
    let record = KeyPurpose::Zone.record();
    let mut stored = Vec::new();
    for i in 0..3 {
        let store = cluster.store(i);
        store.read_barrier().await.unwrap();
        stored.push(store.internal(&record).unwrap().expect("the key is stored"));
        let fresh = Tokens::new(store).public_keys(&KeyPurpose::Zone).unwrap();
        assert_eq!(fresh, k1, "replica {i} holds the winning key");
    }
    assert!(
        stored.windows(2).all(|w| w[0] == w[1]),
        "one key everywhere"
    );

    // The rule that decides the race, with both proposals certainly made: two different values
    // for an absent record, from the two replicas at once. Both get the first one applied.
    let before = committed_index(cluster.node(leader)).await;
    let put = |value: &[u8]| Command::PutInternal {
        key: "tokens/test-race".into(),
        value: value.to_vec(),
        if_absent: true,
    };
    let (s1, s2) = (cluster.store(a), cluster.store(b));
    let (w1, w2) = tokio::join!(s1.write(put(b"from-a")), s2.write(put(b"from-b")));
    let (CommandResult::Internal { value: v1 }, CommandResult::Internal { value: v2 }) =
        (w1.unwrap(), w2.unwrap())
    else {
        panic!("both writes answer with the stored value")
    };
    assert_eq!(v1, v2, "both proposers learn the same winner");
    assert!(v1 == b"from-a" || v1 == b"from-b", "{v1:?}");
    // Both reached the log: as two entries, or as one shared entry (group commit); the rule
    // that picks the winner is the same either way, applied in log order.
    let after = committed_index(cluster.node(leader)).await;
    assert!(
        after == before + 1 || after == before + 2,
        "both were proposed, in one or two entries: {before} → {after}"
    );
    for i in 0..3 {
        let store = cluster.store(i);
        store.read_barrier().await.unwrap();
        assert_eq!(
            store.internal("tokens/test-race").unwrap(),
            Some(v1.clone())
        );
    }
    cluster.stop().await;
}

#[tokio::test]
async fn zone_tokens_are_rejected_when_expired_forged_or_for_another_zone() {
    let store = TestStore::start().await;
    let tokens = Tokens::new(store.store());
    let token = tokens.issue_zone_token("east", DAY).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let claims = tokens.verify_zone_token(token.expose(), now).unwrap();
    assert_eq!(claims.zone, "east");
    // A zone presenting east's token is east, whatever name it claims: the caller compares.
    assert_ne!(claims.zone, "west");

    let err = tokens
        .verify_zone_token(token.expose(), now + 2 * DAY)
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");

    // Signed by another global's key (a different store).
    let other_store = TestStore::start().await;
    let other = Tokens::new(other_store.store());
    let foreign = other.issue_zone_token("east", DAY).await.unwrap();
    other_store.stop().await;
    let err = tokens.verify_zone_token(foreign.expose(), now).unwrap_err();
    assert!(err.to_string().contains("not among"), "{err}");

    // Claims changed to another zone, signature kept.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.expose().split('.').collect();
    let mut body: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    body["zone"] = "west".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(serde_json::to_vec(&body).unwrap()),
        parts[2]
    );
    let err = tokens.verify_zone_token(&forged, now).unwrap_err();
    assert!(
        err.to_string().contains("signature does not verify"),
        "{err}"
    );
    assert!(!err.to_string().contains(parts[2]));
    store.stop().await;
}

#[tokio::test]
async fn zone_names_and_validity_are_checked() {
    let store = TestStore::start().await;
    let proposed = store.log_index().await;
    let tokens = Tokens::new(store.store());
    for bad in ["", "East", "a.b", "-x", &"x".repeat(64)] {
        let err = tokens.issue_zone_token(bad, HOUR).await.unwrap_err();
        assert!(
            matches!(err, TokenIssueError::Invalid { field: "zone", .. }),
            "{bad:?}: {err}"
        );
        assert_eq!(err.status(), 400);
    }
    let err = tokens
        .issue_zone_token("east", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TokenIssueError::Invalid {
            field: "validFor",
            ..
        }
    ));
    assert_eq!(
        store.log_index().await,
        proposed,
        "no key is made for a refused request"
    );
    store.stop().await;
}

#[tokio::test]
async fn dataplane_tokens_need_an_existing_mesh_and_tags_with_values() {
    let store = TestStore::start().await;
    let proposed = store.log_index().await;
    let tokens = Tokens::new(store.store());
    let err = tokens
        .issue_dataplane_token("default", "backend-1", service("backend"), DAY)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenIssueError::MeshNotFound { .. }), "{err}");
    assert_eq!(err.status(), 404);
    assert_eq!(
        store.log_index().await,
        proposed,
        "no key is made for a missing mesh"
    );
    assert!(
        store
            .internal(
                &KeyPurpose::Dataplane {
                    mesh: "default".into()
                }
                .record()
            )
            .unwrap()
            .is_none()
    );

    store.put("type: Mesh\nname: default\n").await;
    store.put("type: Mesh\nname: other\n").await;
    // Kuma: tags are optional (a token without tags checks none); given tags need values.
    let untagged = tokens
        .issue_dataplane_token("default", "backend-1", BTreeMap::new(), DAY)
        .await
        .unwrap();
    let keys = tokens
        .public_keys(&KeyPurpose::Dataplane {
            mesh: "default".into(),
        })
        .unwrap();
    let claims = verify_dataplane_token(
        untagged.expose(),
        &keys,
        "default",
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert!(claims.tags.is_empty());
    let err = tokens
        .issue_dataplane_token(
            "default",
            "backend-1",
            BTreeMap::from([("kuma.io/service".to_string(), vec![String::new()])]),
            DAY,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TokenIssueError::Invalid { field: "tags", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("kuma.io/service"), "{err}");

    let token = tokens
        .issue_dataplane_token("default", "backend-1", service("backend"), DAY)
        .await
        .unwrap();
    let keys = tokens
        .public_keys(&KeyPurpose::Dataplane {
            mesh: "default".into(),
        })
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let claims = verify_dataplane_token(token.expose(), &keys, "default", now).unwrap();
    assert_eq!(
        (claims.mesh.as_str(), claims.name.as_str()),
        ("default", "backend-1")
    );
    assert_eq!(claims.tags, service("backend"));
    assert!(matches!(
        verify_dataplane_token(token.expose(), &keys, "other", now),
        Err(TokenError::WrongMesh { .. })
    ));

    // Each mesh has its own key: other's keys do not know default's tokens.
    tokens
        .issue_dataplane_token("other", "x", service("x"), DAY)
        .await
        .unwrap();
    let other_keys = tokens
        .public_keys(&KeyPurpose::Dataplane {
            mesh: "other".into(),
        })
        .unwrap();
    assert_ne!(other_keys, keys);
    assert!(matches!(
        verify_dataplane_token(token.expose(), &other_keys, "default", now),
        Err(TokenError::UnknownKey { .. })
    ));

    // A zone token is not a dataplane token even under a shared key list.
    let zone = tokens.issue_zone_token("east", DAY).await.unwrap();
    let mut all = keys.clone();
    all.extend(tokens.public_keys(&KeyPurpose::Zone).unwrap());
    assert!(matches!(
        verify_dataplane_token(zone.expose(), &all, "default", now),
        Err(TokenError::WrongKind {
            expected: TokenKind::Dataplane,
            ..
        })
    ));
    store.stop().await;
}

/// A Mesh deleted and re-created gets a new dataplane-token key: the old Mesh's tokens no longer
/// verify, and the same `Tokens` (with its cache) signs with the new key.
#[tokio::test]
async fn a_recreated_mesh_does_not_accept_the_old_meshs_tokens() {
    let store = TestStore::start().await;
    let tokens = Tokens::new(store.store());
    let purpose = KeyPurpose::Dataplane {
        mesh: "default".into(),
    };
    store.put("type: Mesh\nname: default\n").await;
    let old = tokens
        .issue_dataplane_token("default", "backend-1", service("backend"), DAY)
        .await
        .unwrap();
    let result = store
        .store()
        .write(Command::delete(
            mosaic_global::store::ResourceKey::mesh("default"),
            true,
        ))
        .await
        .unwrap();
    assert!(
        matches!(result, CommandResult::Deleted { .. }),
        "{result:?}"
    );
    assert!(
        tokens.public_keys(&purpose).unwrap().is_empty(),
        "the key went with the mesh"
    );
    store.put("type: Mesh\nname: default\n").await;
    let new = tokens
        .issue_dataplane_token("default", "backend-1", service("backend"), DAY)
        .await
        .unwrap();
    let keys = tokens.public_keys(&purpose).unwrap();
    let now = OffsetDateTime::now_utc();
    assert!(verify_dataplane_token(new.expose(), &keys, "default", now).is_ok());
    let err = verify_dataplane_token(old.expose(), &keys, "default", now).unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::UnknownKey { .. } | TokenError::BadSignature { .. }
        ),
        "{err}"
    );
    store.stop().await;
}

/// `POST /tokens/dataplane` and `POST /tokens/zone` with the bodies kumactl 2.14 sends (every
/// field, empty strings, Go durations, `type`, `workload`, `scope`), against a real global.
#[tokio::test]
async fn the_token_api_takes_kumactl_bodies() -> anyhow::Result<()> {
    use mosaic_testkit::{GlobalCluster, workspace_binary};
    use serde_json::json;
    let mut global = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    global.start_all()?;
    global.wait_ready(0, Duration::from_secs(60)).await?;
    let (status, body) = global
        .put(0, "/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    assert!(status == 201 || status == 200, "{status} {body}");

    let decode = |token: &str| -> serde_json::Value {
        use base64::Engine as _;
        let claims = token.trim().split('.').nth(1).unwrap_or_default();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .unwrap_or_default(),
        )
        .unwrap_or_default()
    };
    // kumactl generate dataplane-token --name web-1 --tag kuma.io/service=web,web-api
    //   --type dataplane --workload web --valid-for 24h
    let (status, token) = global
        .post(
            0,
            "/tokens/dataplane",
            &json!({"name": "web-1", "mesh": "default",
                "tags": {"kuma.io/service": ["web", "web-api"]},
                "type": "dataplane", "workload": "web", "validFor": "24h0m0s"}),
        )
        .await?;
    assert_eq!(status, 200, "{token}");
    let claims = decode(&token);
    assert_eq!(claims["type"], "dataplane");
    assert_eq!(claims["workload"], "web");
    assert_eq!(claims["tags"]["kuma.io/service"], json!(["web", "web-api"]));
    // A mesh-wide token: kumactl without --name, --tag or --valid-for.
    let (status, token) = global
        .post(
            0,
            "/tokens/dataplane",
            &json!({"name": "", "mesh": "default", "tags": {}, "type": "", "workload": "",
                "validFor": "0s"}),
        )
        .await?;
    assert_eq!(status, 200, "{token}");
    let claims = decode(&token);
    assert_eq!(claims["name"], "");
    assert_eq!(
        claims["exp"].as_i64().unwrap_or_default() - claims["iat"].as_i64().unwrap_or_default(),
        86_400
    );
    // An unknown type is a 400 naming the field.
    let (status, body) = global
        .post(
            0,
            "/tokens/dataplane",
            &json!({"mesh": "default", "type": "gateway"}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("\"type\"") && body.contains("dataplane, ingress or egress"),
        "{body}"
    );

    // kumactl generate zone-token --zone east --scope cp --valid-for 720h
    let (status, token) = global
        .post(
            0,
            "/tokens/zone",
            &json!({"zone": "east", "scope": ["cp"], "validFor": "720h0m0s"}),
        )
        .await?;
    assert_eq!(status, 200, "{token}");
    assert_eq!(decode(&token)["scope"], json!(["cp"]));
    for (body, says) in [
        (
            json!({"zone": "east", "scope": ["admin"]}),
            "unknown scope \\\"admin\\\"",
        ),
        (json!({"zone": "east", "scope": []}), "cannot be empty"),
    ] {
        let (status, answer) = global.post(0, "/tokens/zone", &body).await?;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer.contains(says) && answer.contains("\"scope\""),
            "{says}: {answer}"
        );
    }
    Ok(())
}

/// Kuma's rotation, on our records: a store from before rotation holds key 1; rotating adds key 2,
/// which signs every new token while tokens of key 1 keep verifying; retiring key 1 refuses its
/// tokens (naming the key); the newest key cannot be retired; the listing shows each key's state.
#[tokio::test]
async fn signing_keys_rotate_and_retire() {
    use mosaic_core::token::{SigningKey, signing_key_of};
    use mosaic_global::tokens::{KeyState, record_of};
    let store = TestStore::start().await;
    // The upgrade path: the single key a store held before (its record as it always was).
    let legacy = SigningKey::generate().unwrap();
    let written = store
        .store()
        .write(Command::PutInternal {
            key: "tokens/signing-key/zone".into(),
            value: legacy.pkcs8().expose().clone(),
            if_absent: true,
        })
        .await
        .unwrap();
    assert!(matches!(written, CommandResult::Internal { .. }));
    let tokens = Tokens::new(store.store());
    let zone = KeyPurpose::Zone;
    let keys = tokens.signing_keys(&zone).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].serial, keys[0].kid.as_str(), keys[0].state),
        (1, legacy.kid(), KeyState::Signing)
    );
    let old = tokens.issue_zone_token("east", DAY).await.unwrap();
    assert_eq!(signing_key_of(old.expose()).unwrap().1, legacy.kid());

    // The newest (and only) key cannot be retired.
    let err = tokens.retire(&zone, 1).await.unwrap_err();
    assert_eq!(err.status(), 409, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("signing key 1 of zone tokens is the newest and only one")
            && text.contains("mosaicctl rotate signing-key zone"),
        "{text}"
    );

    let rotated = tokens.rotate(&zone).await.unwrap();
    assert_eq!((rotated.serial, rotated.state), (2, KeyState::Signing));
    assert_ne!(rotated.kid, legacy.kid());
    assert!(
        store
            .store()
            .internal(&record_of(&zone, 2))
            .unwrap()
            .is_some(),
        "key 2 is its own record"
    );
    let new = tokens.issue_zone_token("east", DAY).await.unwrap();
    assert_eq!(signing_key_of(new.expose()).unwrap().1, rotated.kid);
    let now = OffsetDateTime::now_utc();
    for t in [&old, &new] {
        assert_eq!(
            tokens.verify_zone_token(t.expose(), now).unwrap().zone,
            "east"
        );
    }
    let states: Vec<_> = tokens
        .signing_keys(&zone)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.serial, k.state))
        .collect();
    assert_eq!(states, [(1, KeyState::Verifying), (2, KeyState::Signing)]);
    // Another replica's view (nothing cached) signs with key 2 too.
    let fresh = Tokens::new(store.store());
    let again = fresh.issue_zone_token("west", DAY).await.unwrap();
    assert_eq!(signing_key_of(again.expose()).unwrap().1, rotated.kid);

    let err = tokens.retire(&zone, 2).await.unwrap_err();
    assert_eq!(err.status(), 409);
    assert!(
        err.to_string()
            .contains("signing key 2 of zone tokens is the newest:"),
        "{err}"
    );
    let retired = tokens.retire(&zone, 1).await.unwrap();
    assert_eq!((retired.serial, retired.kid.as_str()), (1, legacy.kid()));
    let err = tokens.verify_zone_token(old.expose(), now).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(legacy.kid()) && text.contains("retired"),
        "the refusal names the key: {text}"
    );
    assert_eq!(tokens.retired_serial(&zone, legacy.kid()), Some(1));
    assert!(tokens.verify_zone_token(new.expose(), now).is_ok());
    assert_eq!(tokens.public_keys(&zone).unwrap().len(), 1);
    // The retired key's private half is gone from the store.
    let record = store
        .store()
        .internal("tokens/signing-key/zone")
        .unwrap()
        .unwrap();
    assert!(SigningKey::from_pkcs8(&record).is_err());

    let err = tokens.retire(&zone, 1).await.unwrap_err();
    assert_eq!(err.status(), 404);
    assert!(err.to_string().contains("retired already"), "{err}");
    let err = tokens.retire(&zone, 7).await.unwrap_err();
    assert_eq!(err.status(), 404);
    assert!(err.to_string().contains("keys not retired: 2"), "{err}");
    let states: Vec<_> = tokens
        .signing_keys(&zone)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.serial, k.state))
        .collect();
    assert_eq!(states, [(1, KeyState::Retired), (2, KeyState::Signing)]);

    // A mesh's dataplane keys: its Mesh must exist; they rotate apart from the zone keys.
    let mesh = KeyPurpose::Dataplane {
        mesh: "default".into(),
    };
    assert_eq!(tokens.rotate(&mesh).await.unwrap_err().status(), 404);
    store.put("type: Mesh\nname: default\n").await;
    let first = tokens
        .issue_dataplane_token("default", "web-1", service("web"), DAY)
        .await
        .unwrap();
    let second = tokens.rotate(&mesh).await.unwrap();
    assert_eq!(second.serial, 2);
    let keys = tokens.public_keys(&mesh).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(verify_dataplane_token(first.expose(), &keys, "default", now).is_ok());
    tokens.retire(&mesh, 1).await.unwrap();
    let keys = tokens.public_keys(&mesh).unwrap();
    assert!(matches!(
        verify_dataplane_token(first.expose(), &keys, "default", now),
        Err(TokenError::UnknownKey { kid, .. }) if kid == signing_key_of(first.expose()).unwrap().1
    ));
    store.stop().await;
}
