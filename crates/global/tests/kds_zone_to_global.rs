//! ZoneToGlobal against a REAL KDS server: Dataplanes written through raft stamped with the
//! zone, cross-zone writes refused and named while the rest apply, the authoritative prune, a
//! chunked response, the ZoneInsight (sessions + reported CA health), and a disconnect that
//! deletes nothing.

mod kds_support;
mod support;

use kds_support::{KdsHarness, dataplane, list, test_settings, zone_insight};
use mosaic_core::resource::{ResourceType, Spec};
use mosaic_global::{api::zones::is_online, kds::KdsSettings, store::ResourceStore};
use support::raft_store::{TestStore, eventually};

fn names_of(store: &TestStore, zone: &str) -> Vec<String> {
    let mut v: Vec<String> = list(store, ResourceType::Dataplane)
        .into_iter()
        .filter(|r| r.meta.labels.get("kuma.io/zone").map(String::as_str) == Some(zone))
        .map(|r| r.meta.name)
        .collect();
    v.sort();
    v
}

fn rejected_names(answer: &mosaic_proto::kds::DiscoveryRequest) -> Vec<String> {
    answer
        .rejected
        .iter()
        .map(|r| r.r#ref.as_ref().map(|x| x.name.clone()).unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataplanes_are_stamped_and_zones_cannot_touch_each_others() {
    let store = TestStore::start().await;
    store.put("type: Mesh\nname: default\n").await;
    let kds = KdsHarness::start(store.store()).await;
    let east_token = kds.token("east").await;
    let west_token = kds.token("west").await;
    let east = kds.client("east", &east_token).await;
    let west = kds.client("west", &west_token).await;

    let mut e = east.zone_to_global().await.expect("east");
    let answer = e
        .send(
            "Dataplane",
            true,
            vec![
                dataplane("default", "web-1", &[]),
                dataplane("default", "web-2", &[]),
            ],
            vec![],
            1,
        )
        .await;
    assert!(answer.rejected.is_empty(), "{answer:?}");
    assert_eq!(answer.r#type, "Dataplane");
    assert_eq!(names_of(&store, "east"), vec!["web-1", "web-2"]);

    let mut w = west.zone_to_global().await.expect("west");
    let answer = w
        .send(
            "Dataplane",
            true,
            vec![
                dataplane("default", "web-1", &[]),
                dataplane("default", "api-1", &[("kuma.io/zone", "east")]),
                dataplane("nope", "lost-1", &[]),
                dataplane("default", "west-1", &[("team", "a")]),
            ],
            vec![("default".into(), "web-2".into())],
            1,
        )
        .await;
    let mut rejected = rejected_names(&answer);
    rejected.sort();
    assert_eq!(
        rejected,
        vec!["api-1", "lost-1", "web-1", "web-2"],
        "{answer:?}"
    );
    let reason = |name: &str| {
        answer
            .rejected
            .iter()
            .find(|r| r.r#ref.as_ref().unwrap().name == name)
            .unwrap()
            .reason
            .clone()
    };
    assert!(
        reason("web-1").contains("belongs to zone \"east\""),
        "{}",
        reason("web-1")
    );
    assert!(
        reason("api-1").contains("claims zone \"east\""),
        "{}",
        reason("api-1")
    );
    assert!(
        reason("lost-1").contains("mesh \"nope\" does not exist"),
        "{}",
        reason("lost-1")
    );
    assert!(
        reason("web-2").contains("belongs to zone \"east\""),
        "{}",
        reason("web-2")
    );
    // The valid item applied, stamped; east's are untouched.
    assert_eq!(names_of(&store, "west"), vec!["west-1"]);
    assert_eq!(names_of(&store, "east"), vec!["web-1", "web-2"]);
    let w1 = list(&store, ResourceType::Dataplane)
        .into_iter()
        .find(|r| r.meta.name == "west-1")
        .unwrap();
    assert_eq!(w1.meta.labels.get("team").map(String::as_str), Some("a"));

    // A delta removes; the stream goes on after the NACK.
    let answer = e
        .send(
            "Dataplane",
            false,
            vec![],
            vec![("default".into(), "web-2".into())],
            1,
        )
        .await;
    assert!(answer.rejected.is_empty());
    assert_eq!(names_of(&store, "east"), vec!["web-1"]);

    // A reconnect's authoritative response prunes only this zone's resources.
    drop(e);
    let mut e = east.zone_to_global().await.expect("east again");
    let answer = e
        .send(
            "Dataplane",
            true,
            vec![dataplane("default", "web-3", &[])],
            vec![],
            3,
        )
        .await;
    assert!(answer.rejected.is_empty(), "{answer:?}");
    assert_eq!(names_of(&store, "east"), vec!["web-3"]);
    assert_eq!(names_of(&store, "west"), vec!["west-1"]);

    drop(e);
    drop(w);
    kds.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insight_and_a_disconnect_that_deletes_nothing() {
    let store = TestStore::start().await;
    store.put("type: Mesh\nname: default\n").await;
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("east").await;
    let zone = kds.client("east", &token).await;
    let mut g2z = zone.global_to_zone().await.expect("g2z");
    g2z.subscribe("Mesh", &[]).await;
    let full = g2z.next().await;
    g2z.ack(&full).await;
    let mut z2g = zone.zone_to_global().await.expect("z2g");
    let dps: Vec<_> = (0..50)
        .map(|i| dataplane("default", &format!("dp-{i}"), &[]))
        .collect();
    let answer = z2g.send("Dataplane", true, dps, vec![], 4).await;
    assert!(
        answer.rejected.is_empty(),
        "a chunked response applies as one: {answer:?}"
    );
    assert_eq!(names_of(&store, "east").len(), 50);

    // The zone reports its CA health; the global keeps its own session records.
    let insight = serde_json::json!({
        "type": "ZoneInsight",
        "name": "east",
        "caHealth": [{"mesh": "default", "backend": "vault-1", "healthy": false,
                      "lastError": "permission denied", "certificatesIssued": 3}],
        "subscriptions": [{"id": "forged", "globalInstanceId": "x"}]
    });
    let answer = z2g
        .send("ZoneInsight", true, vec![insight], vec![], 1)
        .await;
    assert!(answer.rejected.is_empty(), "{answer:?}");
    let forged = serde_json::json!({"type": "ZoneInsight", "name": "west"});
    let answer = z2g
        .send("ZoneInsight", false, vec![forged], vec![], 1)
        .await;
    assert_eq!(rejected_names(&answer), vec!["west"]);

    eventually("the insight shows the session and the CA health", || {
        let i = zone_insight(&store, "east");
        std::future::ready(i.is_some_and(|i| {
            is_online(&i)
                && i.ca_health.len() == 1
                && !i.ca_health[0].healthy
                && i.subscriptions.iter().all(|s| s.id != "forged")
                && i.subscriptions.last().is_some_and(|s| {
                    s.stats
                        .get("Dataplane")
                        .is_some_and(|st| st.responses_acknowledged == 1)
                })
        }))
    })
    .await;
    assert!(zone_insight(&store, "west").is_none());

    // The zone goes away: offline, and nothing it reported is deleted.
    drop(g2z);
    drop(z2g);
    drop(zone);
    eventually("the insight shows the zone offline", || {
        std::future::ready(zone_insight(&store, "east").is_some_and(|i| !is_online(&i)))
    })
    .await;
    assert_eq!(names_of(&store, "east").len(), 50);
    let i = zone_insight(&store, "east").unwrap();
    assert_eq!(i.ca_health.len(), 1, "CA health is kept");
    let r = store
        .list(ResourceType::ZoneInsight, None)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        r.meta.labels.get("kuma.io/zone").map(String::as_str),
        Some("east")
    );
    assert!(matches!(r.spec, Spec::ZoneInsight(_)));
    kds.stop().await;
    store.stop().await;
}

/// The Dataplanes the zone's API refuses (an address that is no address, an unknown top-level
/// field with `api.unknown_fields = "refuse"`) the global refuses too, with the same field and
/// words, and stores nothing of them: both run the one check in `mosaic_core`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataplanes_the_zone_refuses_are_refused_by_the_global_alike() {
    let store = TestStore::start().await;
    store.put("type: Mesh\nname: default\n").await;
    let settings = KdsSettings {
        unknown_fields: mosaic_core::resource::UnknownFields::Refuse,
        ..test_settings()
    };
    let kds = KdsHarness::start_with(store.store(), settings).await;
    let token = kds.token("east").await;
    let east = kds.client("east", &token).await;
    let mut e = east.zone_to_global().await.expect("east");

    let mut bad_address = dataplane("default", "bad-address", &[]);
    bad_address["networking"]["address"] = serde_json::json!("not an ip;rm -rf");
    let mut unknown_field = dataplane("default", "unknown-field", &[]);
    unknown_field["evil"] = serde_json::json!({"run": "rm -rf /"});
    let answer = e
        .send(
            "Dataplane",
            false,
            vec![
                bad_address,
                unknown_field,
                dataplane("default", "good-1", &[]),
            ],
            vec![],
            1,
        )
        .await;
    let mut rejected = rejected_names(&answer);
    rejected.sort();
    assert_eq!(rejected, ["bad-address", "unknown-field"], "{answer:?}");
    let reason = |name: &str| {
        answer
            .rejected
            .iter()
            .find(|r| r.r#ref.as_ref().unwrap().name == name)
            .unwrap()
            .reason
            .clone()
    };
    assert!(
        reason("bad-address").contains(
            "networking.address: \"not an ip;rm -rf\" is not an IP address or a DNS name"
        ),
        "{}",
        reason("bad-address")
    );
    assert!(
        reason("unknown-field").contains("evil: unknown field"),
        "{}",
        reason("unknown-field")
    );
    // Only the valid one was stored.
    assert_eq!(names_of(&store, "east"), vec!["good-1"]);
    drop(e);
    kds.stop().await;
    store.stop().await;
}

/// The size a RESOURCE_EXHAUSTED message names (`... of N bytes ...`), the first number followed
/// by " bytes".
fn named_size(message: &str) -> Option<usize> {
    message
        .split(" bytes")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
}

/// A zone message over the 16 MiB limit ends the stream with RESOURCE_EXHAUSTED naming its size
/// (not with OK, which the zone could not tell from a normal end), and nothing of it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_zone_message_ends_the_stream_with_resource_exhausted() {
    let store = TestStore::start().await;
    store.put("type: Mesh\nname: default\n").await;
    let kds = KdsHarness::start(store.store()).await;
    let token = kds.token("east").await;
    let east = kds.client("east", &token).await;
    let mut e = east.zone_to_global().await.expect("east");

    let mut huge = dataplane("default", "huge-1", &[]);
    huge["labels"] = serde_json::json!({"filler": "x".repeat(17 * 1024 * 1024)});
    let status = e.refused("Dataplane", vec![huge]).await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let message = status.message();
    assert!(
        message.contains("DiscoveryResponse")
            && message.contains("over the KDS message limit of 16777216 bytes"),
        "{message}"
    );
    let size = named_size(message).unwrap_or_else(|| panic!("no size in {message}"));
    assert!(size > 17 * 1024 * 1024, "{message}");
    assert!(names_of(&store, "east").is_empty(), "nothing was stored");

    // The zone reconnects and is served as usual.
    let mut e = east.zone_to_global().await.expect("east again");
    let answer = e
        .send(
            "Dataplane",
            true,
            vec![dataplane("default", "web-1", &[])],
            vec![],
            1,
        )
        .await;
    assert!(answer.rejected.is_empty(), "{answer:?}");
    assert_eq!(names_of(&store, "east"), vec!["web-1"]);
    drop(e);
    kds.stop().await;
    store.stop().await;
}
