//! GlobalToZone against a REAL KDS server (real raft store, TLS, tonic): initial sync, deltas
//! after writes, resume with known versions, removals, chunking, NACKs, replacement, lag-free
//! DataplaneTokenKey pushes.

mod kds_support;
mod support;

use std::time::Duration;

use kds_support::{Cache, KdsHarness, apply, assert_status, known, zone_insight};
use mosaic_core::{
    resource::{ResourceType, parse_document},
    token::PublicKey,
};
use mosaic_global::{
    store::{Command, ResourceKey, ResourceStore},
    tokens::KeyPurpose,
};
use support::raft_store::{TestStore, eventually};
use time::OffsetDateTime;
use tonic::Code;

const MESH: &str = "type: Mesh\nname: default\n";

fn secret(mesh: &str, name: &str, value: &str) -> String {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(value);
    format!("type: Secret\nmesh: {mesh}\nname: {name}\ndata: {data}\n")
}

async fn put_all(store: &TestStore, yamls: &[String]) {
    let now = OffsetDateTime::now_utc();
    let cmds = yamls
        .iter()
        .map(|y| Command::put(&parse_document(y.as_bytes()).expect("fixture"), now))
        .collect();
    let r = store.apply(Command::Batch(cmds)).await;
    assert!(
        matches!(r, mosaic_global::store::CommandResult::Batch(_)),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_then_every_change_is_pushed() {
    let store = TestStore::start().await;
    store.put(MESH).await;
    store.put(&secret("default", "s1", "one")).await;
    store
        .put("type: GlobalSecret\nname: g1\ndata: Z2xvYmFs\n")
        .await;
    // Another zone's Zone resource is never sent to this one (each zone gets its own only).
    store.put("type: Zone\nname: west\nenabled: true\n").await;
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("east").await;
    let zone = kds.client("east", &token).await;
    let mut g2z = zone.global_to_zone().await.expect("stream");
    kds_support::registered(&store, "east").await;

    let mut caches: std::collections::BTreeMap<String, Cache> = Default::default();
    for t in [
        "Mesh",
        "Secret",
        "GlobalSecret",
        "Zone",
        "DataplaneTokenKey",
    ] {
        g2z.subscribe(t, &[]).await;
        let full = g2z.next().await;
        assert_eq!(full.rtype, t);
        assert!(
            full.authoritative,
            "the first response per type is authoritative"
        );
        apply(caches.entry(t.to_string()).or_default(), &full);
        g2z.ack(&full).await;
    }
    let names = |t: &str, caches: &std::collections::BTreeMap<String, Cache>| -> Vec<String> {
        caches[t].keys().map(|(m, n)| format!("{m}/{n}")).collect()
    };
    assert_eq!(names("Mesh", &caches), vec!["/default"]);
    assert_eq!(names("Secret", &caches), vec!["default/s1"]);
    assert_eq!(names("GlobalSecret", &caches), vec!["/g1"]);
    assert_eq!(
        names("Zone", &caches),
        vec!["/east"],
        "a zone without a Zone resource registers itself, and gets no other zone's"
    );
    assert!(
        caches["DataplaneTokenKey"].is_empty(),
        "no dataplane token issued yet"
    );
    let (version, json) = &caches["Mesh"][&(String::new(), "default".to_string())];
    assert_eq!(json["name"], "default");
    assert_eq!(
        Some(*version),
        store
            .get(&ResourceKey::mesh("default"))
            .unwrap()
            .unwrap()
            .meta
            .version
    );

    // A write on the global is pushed at once, as a delta.
    store.put(&secret("default", "s2", "two")).await;
    let full = g2z.next().await;
    assert_eq!((full.rtype.as_str(), full.authoritative), ("Secret", false));
    assert_eq!(full.resources.len(), 1);
    assert_eq!(full.resources[0].name, "s2");
    apply(caches.get_mut("Secret").unwrap(), &full);
    g2z.ack(&full).await;

    // Another zone's change is not pushed: the next response is the Mesh update after it.
    store.put("type: Zone\nname: west\nenabled: false\n").await;

    // An update, then a delete.
    store
        .put("type: Mesh\nname: default\nmtls:\n  enabledBackend: \"\"\n  backends: []\n")
        .await;
    let full = g2z.next().await;
    assert_eq!(full.rtype, "Mesh");
    g2z.ack(&full).await;
    store
        .apply(Command::delete(
            ResourceKey::new(ResourceType::Secret, Some("default"), "s1"),
            false,
        ))
        .await;
    let full = g2z.next().await;
    assert_eq!((full.rtype.as_str(), full.authoritative), ("Secret", false));
    assert!(full.resources.is_empty());
    assert_eq!(full.removed.len(), 1);
    assert_eq!(full.removed[0].name, "s1");
    apply(caches.get_mut("Secret").unwrap(), &full);
    g2z.ack(&full).await;
    assert_eq!(names("Secret", &caches), vec!["default/s2"]);

    // The first dataplane token of a mesh creates its signing key: its public key is pushed.
    kds.tokens
        .issue_dataplane_token(
            "default",
            "dp-1",
            [("kuma.io/service".to_string(), vec!["web".to_string()])].into(),
            Duration::from_secs(3600),
        )
        .await
        .expect("dataplane token");
    let full = g2z.next().await;
    assert_eq!(full.rtype, "DataplaneTokenKey");
    assert_eq!(full.resources.len(), 1);
    assert_eq!(full.resources[0].name, "default");
    let keys: Vec<PublicKey> = serde_json::from_slice(&full.resources[0].json).unwrap();
    let expected = kds
        .tokens
        .public_keys(&KeyPurpose::Dataplane {
            mesh: "default".into(),
        })
        .unwrap();
    assert_eq!(keys, expected);
    g2z.ack(&full).await;

    // ACKs and sends are counted in the zone's insight.
    eventually("the ZoneInsight counts the ACKs", || {
        let insight = zone_insight(&store, "east");
        std::future::ready(insight.is_some_and(|i| {
            i.subscriptions.last().is_some_and(|s| {
                s.disconnect_time.is_none()
                    && s.zone_version == "test-1.0"
                    && s.global_instance_id == "1"
                    && s.stats
                        .get("Secret")
                        .is_some_and(|st| st.responses_sent == 3 && st.responses_acknowledged == 3)
            })
        }))
    })
    .await;
    drop(g2z);
    kds.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_known_versions_sends_only_the_difference() {
    let store = TestStore::start().await;
    store.put(MESH).await;
    put_all(
        &store,
        &(0..10)
            .map(|i| secret("default", &format!("s{i}"), "v1"))
            .collect::<Vec<_>>(),
    )
    .await;
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("east").await;
    let zone = kds.client("east", &token).await;
    let mut cache = Cache::new();
    {
        let mut g2z = zone.global_to_zone().await.expect("stream");
        g2z.subscribe("Secret", &[]).await;
        let full = g2z.next().await;
        assert_eq!(full.resources.len(), 10);
        apply(&mut cache, &full);
        g2z.ack(&full).await;
    }
    // While the zone is away: one changed, one deleted, one added.
    store.put(&secret("default", "s3", "v2")).await;
    store
        .apply(Command::delete(
            ResourceKey::new(ResourceType::Secret, Some("default"), "s7"),
            false,
        ))
        .await;
    store.put(&secret("default", "s10", "v1")).await;

    let mut g2z = zone.global_to_zone().await.expect("stream");
    g2z.subscribe("Secret", &known(&cache)).await;
    let full = g2z.next().await;
    assert!(full.authoritative);
    let mut sent: Vec<&str> = full.resources.iter().map(|r| r.name.as_str()).collect();
    sent.sort();
    assert_eq!(sent, vec!["s10", "s3"], "only the difference is sent");
    let removed: Vec<&str> = full.removed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(removed, vec!["s7"]);
    apply_resume(&mut cache, &full);
    g2z.ack(&full).await;
    let mut names: Vec<String> = cache.keys().map(|(_, n)| n.clone()).collect();
    names.sort();
    let mut expected: Vec<String> = (0..11)
        .filter(|i| *i != 7)
        .map(|i| format!("s{i}"))
        .collect();
    expected.sort();
    assert_eq!(names, expected, "the zone converges");
    drop(g2z);
    kds.stop().await;
    store.stop().await;
}

/// Applies an authoritative diff on top of what the zone held (the zone prunes only what the
/// response removes or, having announced its versions, keeps what is unchanged).
fn apply_resume(cache: &mut Cache, full: &kds_support::Full) {
    for r in &full.resources {
        let json = serde_json::from_slice(&r.json).expect("json");
        cache.insert((r.mesh.clone(), r.name.clone()), (r.version, json));
    }
    for r in &full.removed {
        cache.remove(&(r.mesh.clone(), r.name.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_secrets_arrive_chunked() {
    let store = TestStore::start().await;
    store.put(MESH).await;
    let filler = "x".repeat(1024);
    for batch in 0..4 {
        let yamls: Vec<String> = (0..500)
            .map(|i| secret("default", &format!("secret-{}", batch * 500 + i), &filler))
            .collect();
        put_all(&store, &yamls).await;
    }
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("east").await;
    let zone = kds.client("east", &token).await;
    let mut g2z = zone.global_to_zone().await.expect("stream");
    g2z.subscribe("Secret", &[]).await;
    let full = g2z.next().await;
    assert!(
        full.chunks > 1,
        "2,000 secrets of ~1.4 KiB need several ~1 MiB chunks"
    );
    assert_eq!(full.resources.len(), 2000);
    let names: std::collections::BTreeSet<String> =
        full.resources.iter().map(|r| r.name.clone()).collect();
    for i in 0..2000 {
        assert!(names.contains(&format!("secret-{i}")), "secret-{i} missing");
    }
    g2z.ack(&full).await;
    drop(g2z);
    kds.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_keeps_the_stream_and_is_counted() {
    let store = TestStore::start().await;
    store.put(MESH).await;
    store.put(&secret("default", "good", "1")).await;
    store.put(&secret("default", "bad", "2")).await;
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("east").await;
    let zone = kds.client("east", &token).await;
    let mut g2z = zone.global_to_zone().await.expect("stream");
    g2z.subscribe("Secret", &[]).await;
    let full = g2z.next().await;
    assert_eq!(full.resources.len(), 2);
    g2z.nack(
        &full,
        vec![("default".into(), "bad".into(), "cannot decode".into())],
    )
    .await;
    // The stream goes on: the next change arrives on it, and the rejected item comes again
    // when it changes.
    store.put(&secret("default", "bad", "3")).await;
    let full = g2z.next().await;
    assert_eq!(full.resources.len(), 1);
    assert_eq!(full.resources[0].name, "bad");
    g2z.ack(&full).await;
    eventually("the NACK is counted in the ZoneInsight", || {
        let insight = zone_insight(&store, "east");
        std::future::ready(insight.is_some_and(|i| {
            i.subscriptions.last().is_some_and(|s| {
                s.stats
                    .get("Secret")
                    .is_some_and(|st| st.responses_rejected == 1 && st.responses_acknowledged == 1)
            })
        }))
    })
    .await;
    drop(g2z);
    kds.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_replaces_the_first() {
    let store = TestStore::start().await;
    store.put(MESH).await;
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("east").await;
    let zone = kds.client("east", &token).await;
    let mut first = zone.global_to_zone().await.expect("stream");
    first.subscribe("Mesh", &[]).await;
    let full = first.next().await;
    first.ack(&full).await;

    let other = kds.client("east", &token).await;
    let mut second = other.global_to_zone().await.expect("stream");
    let status = first.ended().await;
    assert_status(&status, Code::Aborted, &["replaced", "east"]);

    second.subscribe("Mesh", &[]).await;
    let full = second.next().await;
    assert_eq!(full.resources.len(), 1);
    second.ack(&full).await;
    store.put("type: Mesh\nname: other\n").await;
    let full = second.next().await;
    assert_eq!(full.resources[0].name, "other");

    eventually("one open subscription in the ZoneInsight", || {
        let insight = zone_insight(&store, "east");
        std::future::ready(insight.is_some_and(|i| {
            i.subscriptions.len() == 2
                && i.subscriptions
                    .iter()
                    .filter(|s| s.disconnect_time.is_none())
                    .count()
                    == 1
        }))
    })
    .await;
    drop(second);
    kds.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_serves_from_its_applied_state() {
    let cluster = support::raft_store::TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let kds = KdsHarness::start(cluster.store(follower)).await;
    let token = kds.token("east").await;
    let zone = kds.client("east", &token).await;
    let mut g2z = zone.global_to_zone().await.expect("stream");
    g2z.subscribe("Mesh", &[]).await;
    let full = g2z.next().await;
    assert!(full.resources.is_empty());
    g2z.ack(&full).await;
    // Written on the leader, pushed by the follower's KDS once applied there.
    let mesh = parse_document(MESH.as_bytes()).unwrap();
    cluster
        .store(leader)
        .write(Command::put(&mesh, OffsetDateTime::now_utc()))
        .await
        .expect("write");
    let full = g2z.next().await;
    assert_eq!(full.rtype, "Mesh");
    assert_eq!(full.resources[0].name, "default");
    g2z.ack(&full).await;
    drop(g2z);
    kds.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_change_feed_still_converges() {
    // 6,000 secrets in one raft entry overflow the change feed (4,096 entries) while the session
    // is busy: the session re-sends an authoritative diff. Whether the feed overflows depends on
    // scheduling, so this asserts only what must hold either way: the zone converges.
    let store = TestStore::start().await;
    store.put(MESH).await;
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("east").await;
    let zone = kds.client("east", &token).await;
    let mut g2z = zone.global_to_zone().await.expect("stream");
    g2z.subscribe("Secret", &[]).await;
    let mut cache = Cache::new();
    let full = g2z.next().await;
    apply(&mut cache, &full);
    g2z.ack(&full).await;
    let yamls: Vec<String> = (0..6000)
        .map(|i| secret("default", &format!("burst-{i}"), "v"))
        .collect();
    put_all(&store, &yamls).await;
    let mut authoritative = 0;
    while cache.len() < 6000 {
        let full = g2z.next().await;
        authoritative += usize::from(full.authoritative);
        apply(&mut cache, &full);
        g2z.ack(&full).await;
    }
    assert_eq!(cache.len(), 6000);
    eprintln!("authoritative resyncs after the burst: {authoritative}");
    drop(g2z);
    kds.stop().await;
    store.stop().await;
}

/// A zone request over the 16 MiB limit (here a NACK with a huge reason) ends GlobalToZone with
/// RESOURCE_EXHAUSTED naming the message and its size, instead of a silent end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_zone_request_ends_the_stream_with_resource_exhausted() {
    let store = TestStore::start().await;
    store.put(MESH).await;
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("east").await;
    let zone = kds.client("east", &token).await;
    let mut g2z = zone.global_to_zone().await.expect("stream");
    g2z.subscribe("Mesh", &[]).await;
    let full = g2z.next().await;
    g2z.nack(
        &full,
        vec![(
            String::new(),
            "default".into(),
            "x".repeat(17 * 1024 * 1024),
        )],
    )
    .await;
    let status = g2z.ended().await;
    assert_status(
        &status,
        Code::ResourceExhausted,
        &[
            "GlobalToZone DiscoveryRequest of ",
            "over the KDS message limit of 16777216 bytes",
        ],
    );
    kds.stop().await;
    store.stop().await;
}
