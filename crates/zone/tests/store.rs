//! The zone store: one transaction per response, authoritative prune, NACK of a bad item while
//! the others apply, the change feed, local writes with the zone's version, restart from disk,
//! and Secrets for CA backends.

mod support;

use std::collections::BTreeMap;

use mosaic_core::{
    datasource::SecretSource,
    resource::{ResourceType, Spec, parse::from_value},
};
use mosaic_kds::assemble::Assembled;
use mosaic_zone::{
    kds::receive,
    store::{ChangeOp, KdsItem, KdsType, StoreError, StoreKey, SyncBatch, ZoneStore},
};
use support::fixtures::{dataplane_json, mesh, reference, secret, secret_raw};
use time::OffsetDateTime;

fn assembled(
    ty: &str,
    authoritative: bool,
    resources: Vec<mosaic_proto::kds::Resource>,
    removed: Vec<mosaic_proto::kds::ResourceRef>,
) -> Assembled {
    Assembled {
        type_url: ty.into(),
        nonce: "n".into(),
        authoritative,
        resources,
        removed,
        global_index: 0,
    }
}

fn secret_key(name: &str) -> StoreKey {
    StoreKey::new(ResourceType::Secret, Some("default"), name)
}

fn apply(
    store: &ZoneStore,
    response: Assembled,
    known: Option<&BTreeMap<StoreKey, u64>>,
) -> receive::Received {
    let kind: KdsType = response.type_url.parse().unwrap();
    let received = receive::plan(store, kind, &response, known).unwrap();
    store.apply_sync(&received.batch).unwrap();
    received
}

#[test]
fn a_response_is_one_transaction_with_its_changes_on_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let store = ZoneStore::open(dir.path()).unwrap();
    let mut feed = store.subscribe();
    let items: Vec<_> = (0..50)
        .map(|i| secret("default", &format!("s{i}"), 3, "v"))
        .collect();
    let received = apply(
        &store,
        assembled("Secret", true, items.clone(), vec![]),
        None,
    );
    assert!(received.rejected.is_empty());
    assert_eq!(
        store.list(ResourceType::Secret.into(), None).unwrap().len(),
        50
    );
    let mut seen = 0;
    while let Ok(c) = feed.try_recv() {
        assert_eq!(c.op, ChangeOp::Put);
        seen += 1;
    }
    assert_eq!(seen, 50);
    // The same response again changes nothing and publishes nothing.
    apply(&store, assembled("Secret", false, items, vec![]), None);
    assert!(feed.try_recv().is_err());

    // A batch that touches a zone-owned kind is refused before anything is written.
    let dp = from_value(dataplane_json("default", "dp", "web")).unwrap();
    let batch = SyncBatch {
        upserts: vec![
            KdsItem::from_resource(
                &from_value(serde_json::json!({"type":"Mesh","name":"m2"})).unwrap(),
                1,
            ),
            KdsItem::from_resource(&dp, 1),
        ],
        removes: vec![],
    };
    assert!(matches!(
        store.apply_sync(&batch),
        Err(StoreError::WrongOwner { .. })
    ));
    assert!(store.get(&StoreKey::mesh("m2")).unwrap().is_none());
}

#[test]
fn authoritative_responses_prune_what_they_do_not_mention() {
    let dir = tempfile::tempdir().unwrap();
    let store = ZoneStore::open(dir.path()).unwrap();
    apply(
        &store,
        assembled(
            "Secret",
            true,
            vec![
                secret("default", "s1", 1, "a"),
                secret("default", "s2", 2, "b"),
                secret("default", "s3", 3, "c"),
            ],
            vec![],
        ),
        None,
    );
    // Known-version diff: unchanged s1 kept, s2 updated, s3 removed.
    let known = store.versions(ResourceType::Secret.into()).unwrap();
    apply(
        &store,
        assembled(
            "Secret",
            true,
            vec![secret("default", "s2", 7, "b2")],
            vec![reference("Secret", "default", "s3")],
        ),
        Some(&known),
    );
    let versions = store.versions(ResourceType::Secret.into()).unwrap();
    assert_eq!(versions.get(&secret_key("s1")), Some(&1));
    assert_eq!(versions.get(&secret_key("s2")), Some(&7));
    assert_eq!(versions.get(&secret_key("s3")), None);

    // Without known versions, everything unmentioned goes; a rejected item keeps its old copy.
    let received = apply(
        &store,
        assembled(
            "Secret",
            true,
            vec![
                secret("default", "s4", 8, "d"),
                secret_raw("default", "s2", 9, "!!"),
            ],
            vec![],
        ),
        None,
    );
    assert_eq!(received.rejected.len(), 1);
    let versions = store.versions(ResourceType::Secret.into()).unwrap();
    assert_eq!(
        versions.keys().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        ["s2", "s4"]
    );
    assert_eq!(versions.get(&secret_key("s2")), Some(&7));

    // Other types are untouched by a Secret response.
    apply(
        &store,
        assembled("Mesh", true, vec![mesh("default", 1)], vec![]),
        None,
    );
    apply(&store, assembled("Secret", true, vec![], vec![]), None);
    assert!(
        store
            .versions(ResourceType::Secret.into())
            .unwrap()
            .is_empty()
    );
    assert!(store.get(&StoreKey::mesh("default")).unwrap().is_some());
}

#[test]
fn bad_items_are_rejected_with_reasons_and_the_rest_apply() {
    let dir = tempfile::tempdir().unwrap();
    let store = ZoneStore::open(dir.path()).unwrap();
    let mut not_json = secret("default", "garbled", 1, "x");
    not_json.json = b"{not json".to_vec();
    let mut misnamed = secret("default", "named-a", 1, "x");
    misnamed.name = "named-b".into();
    let bad_mesh = mosaic_proto::kds::Resource {
        json: serde_json::to_vec(&serde_json::json!({
            "type": "Mesh", "name": "bad-mtls",
            "mtls": {"enabledBackend": "missing", "backends": []}
        }))
        .unwrap(),
        ..mesh("bad-mtls", 1)
    };
    let received = receive::plan(
        &store,
        ResourceType::Secret.into(),
        &assembled(
            "Secret",
            false,
            vec![secret("default", "ok", 1, "x"), not_json, misnamed],
            vec![reference("Mesh", "", "default")],
        ),
        None,
    )
    .unwrap();
    assert_eq!(received.batch.upserts.len(), 1);
    let reasons: Vec<_> = received
        .rejected
        .iter()
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("does not parse"), "{reasons:?}");
    assert!(reasons[1].contains("named-a"), "{reasons:?}");
    assert!(reasons[2].contains("Mesh removal"), "{reasons:?}");

    let received = receive::plan(
        &store,
        ResourceType::Mesh.into(),
        &assembled("Mesh", false, vec![bad_mesh, mesh("good", 2)], vec![]),
        None,
    )
    .unwrap();
    assert_eq!(received.rejected.len(), 1);
    let reason = &received.rejected[0].reason;
    assert!(reason.contains("mtls.enabledBackend"), "{reason}");

    // Dataplane-token keys: a JSON list of 32-byte public keys, named after their mesh with no
    // mesh of their own (as the global sends them), stored where the SDS server looks them up.
    let key = mosaic_core::token::PublicKey {
        kid: "k1".into(),
        alg: mosaic_core::token::KeyAlgorithm::EdDSA,
        bytes: vec![7; 32],
    };
    let wire = |mesh: &str, keys: serde_json::Value| mosaic_proto::kds::Resource {
        r#type: "DataplaneTokenKey".into(),
        mesh: mesh.into(),
        name: "default".into(),
        version: 4,
        json: serde_json::to_vec(&keys).unwrap(),
    };
    let good = mosaic_kds::decode::decode(
        KdsType::DataplaneTokenKey,
        &wire("", serde_json::json!([key])),
    )
    .unwrap();
    assert_eq!(good.public_keys().unwrap(), vec![key.clone()]);
    assert_eq!(good.version, 4);
    assert_eq!(
        good.key,
        StoreKey::new(KdsType::DataplaneTokenKey, None, "default")
    );
    let spelled = mosaic_kds::decode::decode(
        KdsType::DataplaneTokenKey,
        &wire("default", serde_json::json!([key])),
    )
    .unwrap();
    assert_eq!(spelled.key, good.key, "mesh = name is the same item");
    let other = mosaic_kds::decode::decode(
        KdsType::DataplaneTokenKey,
        &wire("other", serde_json::json!([key])),
    );
    assert!(other.unwrap_err().contains("mesh: must be empty"));
    let short = serde_json::json!([{"kid": "k2", "bytes": "AAAA"}]);
    assert!(mosaic_kds::decode::decode(KdsType::DataplaneTokenKey, &wire("", short)).is_err());
    // Zone-owned kinds never come from the global.
    let dp = mosaic_proto::kds::Resource {
        r#type: "Dataplane".into(),
        mesh: "default".into(),
        name: "dp".into(),
        version: 1,
        json: serde_json::to_vec(&dataplane_json("default", "dp", "web")).unwrap(),
    };
    let err = mosaic_kds::decode::decode(ResourceType::Dataplane.into(), &dp).unwrap_err();
    assert!(err.contains("zone-owned"), "{err}");
}

#[test]
fn local_writes_stamp_the_zone_version_and_only_take_zone_owned_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let store = ZoneStore::open(dir.path()).unwrap();
    let t0 = OffsetDateTime::now_utc();
    let dp = from_value(dataplane_json("default", "dp-1", "web")).unwrap();
    let w1 = store.put_local(dp.clone(), t0).unwrap();
    assert!(w1.created && w1.changed);
    let again = store
        .put_local(dp, t0 + time::Duration::seconds(5))
        .unwrap();
    assert!(!again.created && !again.changed);
    assert_eq!(again.item.version, w1.item.version);
    let dp2 = from_value(dataplane_json("default", "dp-1", "api")).unwrap();
    let w2 = store
        .put_local(dp2, t0 + time::Duration::seconds(9))
        .unwrap();
    assert!(!w2.created && w2.changed);
    assert!(w2.item.version > w1.item.version);
    let r = w2.item.to_resource().unwrap();
    let first = w1.item.to_resource().unwrap();
    assert!(first.meta.creation_time.is_some());
    assert_eq!(r.meta.creation_time, first.meta.creation_time);
    assert!(r.meta.modification_time > r.meta.creation_time);

    let mesh = from_value(serde_json::json!({"type": "Mesh", "name": "m"})).unwrap();
    assert!(matches!(
        store.put_local(mesh, t0),
        Err(StoreError::WrongOwner { .. })
    ));
    assert!(store.delete_local(&[StoreKey::mesh("m")]).is_err());
    let gone = store
        .delete_local(&[StoreKey::new(
            ResourceType::Dataplane,
            Some("default"),
            "dp-1",
        )])
        .unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].op, ChangeOp::Delete);
}

#[test]
fn a_reopened_store_serves_what_it_held_and_resolves_secrets() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = ZoneStore::open(dir.path()).unwrap();
        apply(
            &store,
            assembled("Mesh", true, vec![mesh("default", 11)], vec![]),
            None,
        );
        apply(
            &store,
            assembled(
                "Secret",
                true,
                vec![secret("default", "ca-key", 12, "PEM DATA")],
                vec![],
            ),
            None,
        );
        let dp = from_value(dataplane_json("default", "dp-1", "web")).unwrap();
        store.put_local(dp, OffsetDateTime::now_utc()).unwrap();
    }
    let store = ZoneStore::open(dir.path()).unwrap();
    let m = store
        .get_resource(ResourceType::Mesh, None, "default")
        .unwrap()
        .unwrap();
    assert!(matches!(m.spec, Spec::Mesh(_)));
    assert_eq!(m.meta.version, Some(11));
    let value = store.mesh_secret("default", "ca-key").unwrap().unwrap();
    assert_eq!(value.expose().as_slice(), b"PEM DATA");
    assert!(store.mesh_secret("default", "nope").unwrap().is_none());
    assert!(store.mesh_secret("other", "ca-key").unwrap().is_none());
    // The local version counter continues after a restart.
    let before = store
        .get(&StoreKey::new(
            ResourceType::Dataplane,
            Some("default"),
            "dp-1",
        ))
        .unwrap()
        .unwrap()
        .version;
    let dp2 = from_value(dataplane_json("default", "dp-2", "web")).unwrap();
    let w = store.put_local(dp2, OffsetDateTime::now_utc()).unwrap();
    assert!(w.item.version > before);
}
