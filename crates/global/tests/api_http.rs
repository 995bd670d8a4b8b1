//! The global's HTTP API over REAL raft stores (a single-replica store per test; a 3-replica
//! cluster where a majority must be lost): every route's happy path, YAML and Kubernetes forms,
//! paging, overviews, 404/405/409/503, and Mesh admission without Vault (builtin CA generated
//! once, provided CA checked, referenced Secrets must exist), and the admin token.

mod support;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use mosaic_ca::{builtin, local::LocalCa};
use mosaic_core::resource::{ResourceType, parse_document};
use mosaic_global::{
    raft::RaftStore,
    store::{Command, ResourceKey, ResourceStore},
};
use mosaic_testkit::TestCa;
use serde_json::json;
use support::{
    raft_store::{TestCluster, all_resources, mesh_names},
    *,
};
use time::OffsetDateTime;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The API over one replica of a cluster (no admin token).
fn router(store: std::sync::Arc<RaftStore>) -> axum::Router {
    mosaic_global::api::router(mosaic_global::api::ApiState::new(store, None))
        .layer(loopback_peer())
}

/// Stores a zone-owned resource as a zone's sync would (through raft, not through the API).
async fn zone_put(store: &TestStore, yaml: &str) {
    store.put(yaml).await;
}

const DP1: &str = "type: Dataplane\nmesh: default\nname: dp-1\nlabels:\n  kuma.io/zone: east\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n";

#[tokio::test]
async fn index_ready_and_healthy() {
    let (app, store) = app().await;
    let r = get(&app, "/").await;
    expect(&r, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["product"], "Mosaic");
    assert_eq!(v["mode"], "global");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    expect(&get(&app, "/ready").await, StatusCode::OK);
    expect(&get(&app, "/healthy").await, StatusCode::OK);
    store.stop().await;
}

#[tokio::test]
async fn mesh_lifecycle() {
    let (app, store) = app().await;
    let r = put(&app, "/meshes/default", "type: Mesh\nname: default\n").await;
    expect(&r, StatusCode::CREATED);
    let v = r.json();
    assert_eq!(v["type"], "Mesh");
    assert_eq!(v["name"], "default");
    assert!(v["creationTime"].is_string() && v["modificationTime"].is_string());
    let version = v["version"].as_u64().expect("version");

    // Re-applying updates (200) and keeps the creation time.
    let r = put(
        &app,
        "/meshes/default",
        "type: Mesh\nname: default\nmetrics: {}\n",
    )
    .await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.json()["creationTime"], v["creationTime"]);
    assert!(r.json()["version"].as_u64().expect("version") > version);

    let r = get(&app, "/meshes/default").await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.json()["metrics"], json!({}));
    assert_eq!(content_type(&r), "application/json");

    // What GET returns can be PUT back as is (times and version are ignored).
    let fetched = get(&app, "/meshes/default").await.text();
    let r = call(
        &app,
        Method::PUT,
        "/meshes/default",
        &[("content-type", "application/json")],
        fetched,
    )
    .await;
    expect(&r, StatusCode::OK);

    let r = get(&app, "/meshes").await;
    expect(&r, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["total"], 1);
    assert_eq!(v["items"][0]["name"], "default");
    assert!(v["next"].is_null());

    let r = delete(&app, "/meshes/default").await;
    expect(&r, StatusCode::OK);
    let r = get(&app, "/meshes/default").await;
    expect(&r, StatusCode::NOT_FOUND);
    let e = r.error();
    assert_eq!(e.status, 404);
    assert!(
        e.detail.contains("Mesh \"default\"") && e.detail.contains("GET /meshes"),
        "{e}"
    );
    let r = delete(&app, "/meshes/default").await;
    expect(&r, StatusCode::NOT_FOUND);
    assert!(r.error().detail.contains("nothing to delete"));
    assert!(store.all().is_empty());
    store.stop().await;
}

#[tokio::test]
async fn secrets_global_secrets_and_zones() {
    let (app, store) = app().await;
    // Mesh secrets (in an existing Mesh: see a_secret_needs_its_mesh); the URL gives name and mesh.
    for mesh in ["default", "other"] {
        expect(
            &put(&app, &format!("/meshes/{mesh}"), "{}").await,
            StatusCode::CREATED,
        );
    }
    let r = put(
        &app,
        "/meshes/default/secrets/token-1",
        &format!("data: {}\n", b64("t")),
    )
    .await;
    expect(&r, StatusCode::CREATED);
    let v = r.json();
    assert_eq!(
        (v["type"].as_str(), v["mesh"].as_str(), v["name"].as_str()),
        (Some("Secret"), Some("default"), Some("token-1"))
    );
    assert_eq!(v["data"], b64("t"));
    let r = put(
        &app,
        "/meshes/default/secrets/token-1",
        &format!(
            "type: Secret\nmesh: default\nname: token-1\ndata: {}\n",
            b64("u")
        ),
    )
    .await;
    expect(&r, StatusCode::OK);
    put(
        &app,
        "/meshes/other/secrets/a",
        &format!("data: {}\n", b64("x")),
    )
    .await;
    let r = get(&app, "/meshes/default/secrets").await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.json()["total"], 1, "only this mesh's secrets");
    expect(
        &get(&app, "/meshes/default/secrets/token-1").await,
        StatusCode::OK,
    );
    expect(
        &get(&app, "/meshes/other/secrets/token-1").await,
        StatusCode::NOT_FOUND,
    );
    expect(
        &delete(&app, "/meshes/default/secrets/token-1").await,
        StatusCode::OK,
    );
    expect(
        &get(&app, "/meshes/default/secrets/token-1").await,
        StatusCode::NOT_FOUND,
    );

    // Global secrets.
    let r = put(
        &app,
        "/global-secrets/g1",
        &format!("type: GlobalSecret\nname: g1\ndata: {}\n", b64("g")),
    )
    .await;
    expect(&r, StatusCode::CREATED);
    assert!(r.json().get("mesh").is_none());
    expect(&get(&app, "/global-secrets/g1").await, StatusCode::OK);
    assert_eq!(get(&app, "/global-secrets").await.json()["total"], 1);
    expect(&delete(&app, "/global-secrets/g1").await, StatusCode::OK);

    // Zones.
    let r = put(
        &app,
        "/zones/east",
        "type: Zone\nname: east\nenabled: false\n",
    )
    .await;
    expect(&r, StatusCode::CREATED);
    assert_eq!(r.json()["enabled"], false);
    let r = put(&app, "/zones/east", "enabled: true\n").await;
    expect(&r, StatusCode::OK);
    assert_eq!(get(&app, "/zones/east").await.json()["enabled"], true);
    assert_eq!(get(&app, "/zones").await.json()["items"][0]["name"], "east");
    expect(&delete(&app, "/zones/east").await, StatusCode::OK);
    expect(&get(&app, "/zones/east").await, StatusCode::NOT_FOUND);
    let left: Vec<String> = store
        .all()
        .iter()
        .filter(|r| r.resource_type() != ResourceType::Mesh)
        .map(|r| {
            format!(
                "{}/{}",
                r.meta.mesh.as_deref().unwrap_or_default(),
                r.meta.name
            )
        })
        .collect();
    assert_eq!(
        left,
        ["other/a"],
        "only other/a is left (besides the Meshes)"
    );
    store.stop().await;
}

#[tokio::test]
async fn yaml_in_and_out_and_kubernetes_form() {
    let (app, store) = app().await;
    let r = call(
        &app,
        Method::PUT,
        "/meshes/default",
        &[("content-type", "application/yaml"), ("accept", "application/yaml")],
        "apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n  metrics: {}\n",
    )
    .await;
    expect(&r, StatusCode::CREATED);
    assert_eq!(content_type(&r), "application/yaml");
    let text = r.text();
    assert!(
        text.contains("type: Mesh") && text.contains("name: default"),
        "{text}"
    );

    // Kubernetes Secret: mesh from the URL.
    let r = call(
        &app,
        Method::PUT,
        "/meshes/default/secrets/s1",
        &[("content-type", "text/yaml")],
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s1\ntype: system.kuma.io/secret\ndata:\n  value: {}\n", b64("v")),
    )
    .await;
    expect(&r, StatusCode::CREATED);
    assert_eq!(r.json()["mesh"], "default");

    // JSON in.
    let r = call(
        &app,
        Method::PUT,
        "/zones/west",
        &[("content-type", "application/json")],
        r#"{"type":"Zone","name":"west"}"#,
    )
    .await;
    expect(&r, StatusCode::CREATED);

    // YAML lists.
    let r = call(
        &app,
        Method::GET,
        "/zones",
        &[("accept", "application/x-yaml")],
        "",
    )
    .await;
    expect(&r, StatusCode::OK);
    assert!(r.text().contains("total: 1"), "{}", r.text());
    store.stop().await;
}

#[tokio::test]
async fn lists_page_with_size_and_offset_sorted_by_name() {
    let (app, store) = app().await;
    for name in ["m5", "m3", "m1", "m4", "m2"] {
        expect(
            &put(&app, &format!("/meshes/{name}"), "type: Mesh\n").await,
            StatusCode::CREATED,
        );
    }
    let r = get(&app, "/meshes?size=2").await;
    let v = r.json();
    assert_eq!(v["total"], 5);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        (
            v["items"][0]["name"].as_str(),
            v["items"][1]["name"].as_str()
        ),
        (Some("m1"), Some("m2"))
    );
    // Kuma's nextLink: absolute, from the request's scheme and Host (none here: `localhost`),
    // the query kept with `offset` set, keys sorted.
    assert_eq!(v["next"], "http://localhost/meshes?offset=2&size=2");
    let mut names = Vec::new();
    let mut next = Some("/meshes?size=2".to_string());
    while let Some(url) = next {
        let path = url.strip_prefix("http://localhost").unwrap_or(&url);
        let v = get(&app, path).await.json();
        names.extend(
            v["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["name"].as_str().unwrap_or_default().to_string()),
        );
        next = v["next"].as_str().map(str::to_string);
    }
    assert_eq!(names, ["m1", "m2", "m3", "m4", "m5"]);
    let r = get(&app, "/meshes?size=2&offset=10").await;
    assert_eq!(r.json()["items"], json!([]));
    for bad in [
        "/meshes?size=0",
        "/meshes?size=x",
        "/meshes?offset=-2",
        "/meshes?size=100000",
    ] {
        let r = get(&app, bad).await;
        expect(&r, StatusCode::BAD_REQUEST);
        assert!(!r.fields().is_empty(), "{bad}");
    }
    store.stop().await;
}

/// A real 3-replica cluster, the API served by a follower (the survivor). Consistent reads there
/// run the read barrier: they see what the leader acknowledged, and once the survivor is alone
/// (no majority, so no leader) they, like writes, answer 503 while plain reads are still served
/// from local state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_reads_run_the_barrier_and_503_without_a_leader() {
    let mut cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let (survivor, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let app = router(cluster.store(survivor));
    let leader_app = router(cluster.store(leader));

    expect(
        &put(&leader_app, "/meshes/default", "type: Mesh\n").await,
        StatusCode::CREATED,
    );
    // The survivor is a follower: its consistent reads wait for what the leader acknowledged.
    let r = get(&app, "/meshes/default?consistent=true").await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.json()["name"], "default");
    let r = get(&app, "/meshes?consistent=true").await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.json()["total"], 1);
    expect(
        &put(&leader_app, "/meshes/second", "type: Mesh\n").await,
        StatusCode::CREATED,
    );
    let r = get(&app, "/meshes?consistent=true").await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.json()["total"], 2);
    let survivor_store = cluster.store(survivor);
    let before = all_resources(&survivor_store);
    assert_eq!(
        mesh_names(&survivor_store),
        ["default", "second"].map(String::from).into()
    );

    // Lose the majority: the other follower first (the leader keeps its quorum meanwhile, so the
    // survivor stays a follower), then the leader. The survivor can never be elected alone.
    cluster.stop_node(other).await;
    cluster.stop_node(leader).await;

    // Each of these keeps retrying inside the store for a bounded time, then gives up: run them
    // together.
    let (read, write, remove) = tokio::join!(
        get(&app, "/meshes?consistent=true"),
        put(&app, "/meshes/other", "type: Mesh\n"),
        delete(&app, "/meshes/default"),
    );
    for (what, r) in [
        ("consistent read", &read),
        ("write", &write),
        ("delete", &remove),
    ] {
        expect(r, StatusCode::SERVICE_UNAVAILABLE);
        let e = r.error();
        assert_eq!(e.status, 503, "{what}: {e}");
        assert!(e.detail.contains("retry"), "{what}: {}", r.text());
    }
    // Plain reads are served from local state, which nothing changed.
    let r = get(&app, "/meshes/default").await;
    expect(&r, StatusCode::OK);
    assert_eq!(get(&app, "/meshes").await.json()["total"], 2);
    assert_eq!(all_resources(&survivor_store), before, "nothing changed");
    drop(survivor_store);
    cluster.stop().await;
}

/// A write sent to a follower is forwarded to the leader, and the follower's reply shows the
/// stored resource, which its plain reads serve from then on.
///
/// A forwarded write is answered only once this replica has applied it too (the leader returns
/// the write's log index and the follower waits for it), so the read-back here always sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_a_follower_are_forwarded_and_read_back_there() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let app = router(cluster.store(follower));
    for i in 0..20 {
        let uri = format!("/meshes/m-{i}");
        let r = put(&app, &uri, "type: Mesh\n").await;
        expect(&r, StatusCode::CREATED);
        assert_eq!(r.json()["name"], format!("m-{i}"));
        // Read your own write: a plain (local) read on the same replica.
        expect(&get(&app, &uri).await, StatusCode::OK);
        expect(&delete(&app, &uri).await, StatusCode::OK);
        expect(&get(&app, &uri).await, StatusCode::NOT_FOUND);
    }
    cluster.stop().await;
}

#[tokio::test]
async fn zone_owned_types_are_read_only_here() {
    let (app, store) = app().await;
    put(&app, "/meshes/default", "type: Mesh\n").await;
    zone_put(&store, DP1).await;
    zone_put(
        &store,
        "type: DataplaneInsight\nmesh: default\nname: dp-1\nmTLS:\n  certificateRegenerations: 3\n  issuedBackend: ca-1\n",
    )
    .await;
    zone_put(
        &store,
        "type: Dataplane\nmesh: default\nname: dp-0\nnetworking:\n  address: 10.0.0.2\n  inbound:\n  - port: 81\n    tags:\n      kuma.io/service: api\n",
    )
    .await;
    zone_put(
        &store,
        "type: ZoneInsight\nname: east\nsubscriptions:\n- id: s1\n  zoneVersion: 0.1.0\n",
    )
    .await;

    let r = get(&app, "/meshes/default/dataplanes").await;
    expect(&r, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["total"], 2);
    assert_eq!(v["items"][0]["name"], "dp-0");
    let r = get(&app, "/meshes/default/dataplanes/dp-1").await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.json()["networking"]["address"], "10.0.0.1");
    expect(
        &get(&app, "/meshes/default/dataplanes/nope").await,
        StatusCode::NOT_FOUND,
    );

    let r = get(&app, "/meshes/default/dataplanes/_overview").await;
    expect(&r, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["total"], 2);
    let dp1 = &v["items"][1];
    assert_eq!(dp1["type"], "DataplaneOverview");
    assert_eq!(
        (dp1["mesh"].as_str(), dp1["name"].as_str()),
        (Some("default"), Some("dp-1"))
    );
    assert_eq!(dp1["dataplane"]["networking"]["inbound"][0]["port"], 80);
    assert_eq!(
        dp1["dataplaneInsight"]["mTLS"]["certificateRegenerations"],
        3
    );
    assert_eq!(v["items"][0]["dataplaneInsight"], json!({}));

    let r = get(&app, "/meshes/default/dataplane-insights").await;
    assert_eq!(r.json()["total"], 1);
    expect(
        &get(&app, "/meshes/default/dataplane-insights/dp-1").await,
        StatusCode::OK,
    );
    assert_eq!(get(&app, "/zone-insights").await.json()["total"], 1);
    expect(&get(&app, "/zone-insights/east").await, StatusCode::OK);

    let before = store.all();
    for (uri, word) in [
        (
            "/meshes/default/dataplanes/dp-1",
            "register them on a zone control plane",
        ),
        ("/meshes/default/dataplane-insights/dp-1", "read-only"),
        ("/zone-insights/east", "read-only"),
    ] {
        for method in [Method::PUT, Method::DELETE] {
            let r = call(&app, method.clone(), uri, &[], "type: Dataplane\n").await;
            expect(&r, StatusCode::METHOD_NOT_ALLOWED);
            let e = r.error();
            assert_eq!(e.status, 405);
            assert!(e.detail.contains(word), "{method} {uri}: {e}");
        }
    }
    assert!(get(&app, "/meshes/default/dataplanes/dp-1").await.status == StatusCode::OK);
    assert_eq!(store.all(), before, "nothing changed");
    let e = put(&app, "/meshes/default/dataplanes/dp-9", DP1)
        .await
        .error();
    assert!(e.detail.starts_with("Dataplanes are owned by zones"), "{e}");
    store.stop().await;
}

#[tokio::test]
async fn zones_overview_reports_online_state_versions_and_ca_health() {
    let (app, store) = app().await;
    put(&app, "/zones/east", "type: Zone\n").await;
    put(&app, "/zones/west", "type: Zone\nenabled: false\n").await;
    zone_put(
        &store,
        "type: ZoneInsight\nname: east\nsubscriptions:\n- id: s1\n  connectTime: 2024-01-01T00:00:00Z\n  disconnectTime: 2024-01-01T01:00:00Z\n  zoneVersion: 0.0.9\n- id: s2\n  connectTime: 2024-01-01T02:00:00Z\n  zoneVersion: 0.1.0\ncaHealth:\n- mesh: default\n  backend: vault-1\n  healthy: false\n  error: permission denied\n",
    )
    .await;
    zone_put(
        &store,
        "type: ZoneInsight\nname: west\nsubscriptions:\n- id: s1\n  connectTime: 2024-01-01T00:00:00Z\n  disconnectTime: 2024-01-01T01:00:00Z\n",
    )
    .await;
    zone_put(&store, "type: ZoneInsight\nname: north\n").await;

    let r = get(&app, "/zones/_overview").await;
    expect(&r, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["total"], 3);
    let items = v["items"].as_array().expect("items");
    let names: Vec<_> = items
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["east", "north", "west"]);
    let east = &items[0];
    assert_eq!(east["type"], "ZoneOverview");
    assert_eq!(east["online"], true);
    assert_eq!(east["version"], "0.1.0");
    assert_eq!(east["zone"]["enabled"], true);
    assert_eq!(east["caHealth"][0]["backend"], "vault-1");
    assert_eq!(east["caHealth"][0]["healthy"], false);
    assert_eq!(items[1]["registered"], false);
    assert_eq!(items[2]["online"], false);
    assert_eq!(items[2]["zone"]["enabled"], false);
    let r = get(&app, "/zones/_overview?size=1").await.json();
    assert_eq!(
        r["next"],
        "http://localhost/zones/_overview?offset=1&size=1"
    );
    store.stop().await;
}

#[tokio::test]
async fn unknown_paths_404_and_unserved_methods_405_in_kuma_shape() {
    let (app, store) = app().await;
    for uri in [
        "/nope",
        "/meshes/default/foos",
        "/meshes/default/foos/x",
        "/meshes/a/b/c/d/e",
    ] {
        let r = get(&app, uri).await;
        expect(&r, StatusCode::NOT_FOUND);
        let e = r.error();
        assert_eq!(e.status, 404);
        assert!(e.detail.contains("/meshes"), "{e}");
    }
    for (method, uri) in [
        (Method::POST, "/meshes"),
        (Method::PUT, "/meshes"),
        (Method::DELETE, "/zones/_overview"),
        (Method::PATCH, "/meshes/default"),
    ] {
        let r = call(&app, method.clone(), uri, &[], "").await;
        expect(&r, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.error().status, 405, "{method} {uri}");
    }
    store.stop().await;
}

#[tokio::test]
async fn conflicts_are_409() {
    let (app, store) = app().await;
    let r = put(
        &app,
        "/meshes/default",
        "mtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n",
    )
    .await;
    expect(&r, StatusCode::CREATED);
    // A Secret in use.
    let cert = builtin::cert_secret_name("default", "ca-1");
    let r = delete(&app, &format!("/meshes/default/secrets/{cert}")).await;
    expect(&r, StatusCode::CONFLICT);
    let e = r.error();
    assert_eq!(e.status, 409);
    assert!(
        e.detail.contains("used by Mesh") && e.detail.contains("change or remove"),
        "{e}"
    );

    // A Mesh with data planes: 409, then ?force=true deletes it and everything in it.
    zone_put(&store, DP1).await;
    let r = delete(&app, "/meshes/default").await;
    expect(&r, StatusCode::CONFLICT);
    assert!(r.error().detail.contains("force=true"));
    expect(
        &delete(&app, "/meshes/default?force=true").await,
        StatusCode::OK,
    );
    assert!(store.all().is_empty(), "{:?}", store.all());
    store.stop().await;
}

#[tokio::test]
async fn builtin_ca_is_generated_once_and_kept_on_reapply() {
    let (app, store) = app().await;
    let mesh = "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n    conf:\n      caCert:\n        expiration: 1y\n";
    expect(
        &put(&app, "/meshes/default", mesh).await,
        StatusCode::CREATED,
    );
    let proposed = store.log_index().await;
    let read = |name: String| store.get_secret("default", &name);
    let cert = read(builtin::cert_secret_name("default", "ca-1"));
    let key = read(builtin::key_secret_name("default", "ca-1"));
    assert!(cert.0.contains("BEGIN CERTIFICATE"), "{}", cert.0);
    assert!(key.0.contains("PRIVATE KEY"));

    // The CA secrets are ordinary mesh secrets (zones receive them); GET shows them.
    let list = get(&app, "/meshes/default/secrets").await.json();
    assert_eq!(list["total"], 2);

    let r = put(&app, "/meshes/default", mesh).await;
    expect(&r, StatusCode::OK);
    assert_eq!(
        store.log_index().await,
        proposed + 1,
        "one write: the Mesh alone"
    );
    assert_eq!(
        read(builtin::cert_secret_name("default", "ca-1")),
        cert,
        "same CA, same version"
    );
    assert_eq!(read(builtin::key_secret_name("default", "ca-1")), key);

    // A second builtin backend gets its own CA; the first stays.
    let two = format!("{mesh}  - name: ca-2\n    type: builtin\n");
    expect(&put(&app, "/meshes/default", &two).await, StatusCode::OK);
    assert_eq!(read(builtin::cert_secret_name("default", "ca-1")), cert);
    assert!(
        read(builtin::cert_secret_name("default", "ca-2"))
            .0
            .contains("BEGIN CERTIFICATE")
    );
    store.stop().await;
}

#[tokio::test]
async fn a_broken_builtin_ca_is_reported_not_replaced() {
    let (app, store) = app().await;
    let mesh = "mtls:\n  backends:\n  - name: ca-1\n    type: builtin\n";
    expect(
        &put(&app, "/meshes/default", mesh).await,
        StatusCode::CREATED,
    );
    let key_name = builtin::key_secret_name("default", "ca-1");
    expect(
        &put(
            &app,
            &format!("/meshes/default/secrets/{key_name}"),
            &format!("data: {}\n", b64("not a key")),
        )
        .await,
        StatusCode::OK,
    );
    let r = put(&app, "/meshes/default", mesh).await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["mtls.backends[0]"]);
    assert!(
        r.error().invalid_parameters[0]
            .reason
            .contains("delete both"),
        "{}",
        r.text()
    );
    assert_eq!(store.get_secret("default", &key_name).0, "not a key");
    store.stop().await;
}

#[tokio::test]
async fn provided_backends_must_be_a_ca_with_its_key() {
    let (app, store) = app().await;
    let (cert, key) = LocalCa::generate_root(
        "default",
        "Provided CA",
        std::time::Duration::from_secs(86_400 * 30),
    )
    .expect("ca");
    let (_, other_key) =
        LocalCa::generate_root("default", "Other", std::time::Duration::from_secs(86_400))
            .expect("ca");
    let leaf = TestCa::new("leaf issuer")
        .expect("ca")
        .client_cert("leaf")
        .expect("leaf");
    let mesh = |cert: &str, key: &str| {
        json!({"type": "Mesh", "name": "default", "mtls": {"enabledBackend": "p", "backends": [
            {"name": "p", "type": "provided", "conf": {"cert": {"inlineString": cert}, "key": {"inlineString": key}}}
        ]}})
        .to_string()
    };
    let json_put = |body: String| {
        call(
            &app,
            Method::PUT,
            "/meshes/default",
            &[("content-type", "application/json")],
            body,
        )
    };

    let r = json_put(mesh(&leaf.cert_pem, &leaf.key_pem)).await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["mtls.backends[0]"]);
    assert!(r.error().detail.contains("backend \"p\""), "{}", r.text());
    let r = json_put(mesh(&cert, other_key.expose())).await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["mtls.backends[0]"]);
    assert!(
        !r.text().contains("PRIVATE KEY"),
        "key material must not be echoed: {}",
        r.text()
    );
    assert!(store.all().is_empty());

    expect(
        &json_put(mesh(&cert, key.expose())).await,
        StatusCode::CREATED,
    );

    // From Secrets: they must exist.
    let by_secret = "mtls:\n  backends:\n  - name: p\n    type: provided\n    conf:\n      cert:\n        secret: ca-cert\n      key:\n        secret: ca-key\n";
    let r = put(&app, "/meshes/default", by_secret).await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.fields(),
        [
            "mtls.backends[0].conf.cert.secret",
            "mtls.backends[0].conf.key.secret"
        ]
    );
    assert!(
        r.error().invalid_parameters[0]
            .reason
            .contains("PUT /meshes/default/secrets/ca-cert")
    );
    put(
        &app,
        "/meshes/default/secrets/ca-cert",
        &format!("data: {}\n", b64(&cert)),
    )
    .await;
    put(
        &app,
        "/meshes/default/secrets/ca-key",
        &format!("data: {}\n", b64(key.expose())),
    )
    .await;
    expect(
        &put(&app, "/meshes/default", by_secret).await,
        StatusCode::OK,
    );
    store.stop().await;
}

#[tokio::test]
async fn vault_backends_need_their_secrets_even_when_validation_is_skipped() {
    let (app, store) = app().await;
    let mesh = "mtls:\n  skipValidation: true\n  enabledBackend: v\n  backends:\n  - name: v\n    type: vault\n    conf:\n      fromCp:\n        address: http://127.0.0.1:1\n        pki: p\n        role: r\n        auth:\n          token:\n            secret: token-1\n";
    let r = put(&app, "/meshes/default", mesh).await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.fields(),
        ["mtls.backends[0].conf.fromCp.auth.token.secret"]
    );
    assert!(store.all().is_empty());
    // The Mesh without mtls first (a Secret needs its Mesh), then the Secret.
    expect(
        &put(&app, "/meshes/default", "{}").await,
        StatusCode::CREATED,
    );
    expect(
        &put(
            &app,
            "/meshes/default/secrets/token-1",
            &format!("data: {}\n", b64("s.whatever")),
        )
        .await,
        StatusCode::CREATED,
    );
    // skipValidation: Vault (unreachable here) is not contacted.
    expect(&put(&app, "/meshes/default", mesh).await, StatusCode::OK);
    // Without skipValidation, the unreachable Vault is a 400 naming the backend.
    let checked = mesh.replace("skipValidation: true", "skipValidation: false");
    let r = put(&app, "/meshes/default", &checked).await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["mtls.backends[0]"]);
    let reason = &r.error().invalid_parameters[0].reason;
    assert!(reason.contains("could not reach Vault"), "{reason}");
    assert!(!r.text().contains("s.whatever"));
    store.stop().await;
}

#[tokio::test]
async fn url_and_body_must_agree() {
    let (app, store) = app().await;
    let proposed = store.log_index().await;
    let r = put(&app, "/meshes/default", "type: Mesh\nname: other\n").await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["name"]);
    let r = put(
        &app,
        "/meshes/default/secrets/s",
        &format!("type: Secret\nmesh: other\ndata: {}\n", b64("x")),
    )
    .await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["mesh"]);
    let r = put(&app, "/global-secrets/s", "type: Mesh\n").await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["type"]);
    let r = put(
        &app,
        "/zones/east",
        "apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: east\n",
    )
    .await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["kind"]);
    for uri in ["/meshes/%ff", "/meshes/%ff/secrets/x", "/zones/%c3%28"] {
        let r = put(&app, uri, "type: Mesh\n").await;
        expect(&r, StatusCode::BAD_REQUEST);
        assert!(!r.fields().is_empty(), "{uri}");
        let r = get(&app, uri).await;
        expect(&r, StatusCode::BAD_REQUEST);
    }
    let r = put(&app, "/meshes/Bad_Name", "type: Mesh\n").await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["name"]);
    assert!(store.all().is_empty());
    assert_eq!(store.log_index().await, proposed, "nothing was proposed");
    store.stop().await;
}

/// Every writable endpoint with every kind of bad body: a 4xx with field paths, never a 5xx,
/// and nothing stored (with `api.unknown_fields = "refuse"`, so that an unknown field is one).
#[tokio::test]
async fn bad_bodies_are_4xx_with_fields_and_store_nothing() {
    let (app, store) = app_refusing_unknown_fields().await;
    let proposed = store.log_index().await;
    let endpoints = [
        "/meshes/default",
        "/meshes/default/secrets/s1",
        "/global-secrets/g1",
        "/zones/east",
    ];
    let bodies: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "invalid UTF-8",
            b"type: Mesh\nname: \xff\xfe\n".to_vec(),
            None,
        ),
        (
            "malformed YAML",
            b"type: Mesh\nname: [unclosed\n".to_vec(),
            Some("application/yaml"),
        ),
        (
            "malformed JSON",
            br#"{"type": "Mesh", "name": }"#.to_vec(),
            Some("application/json"),
        ),
        (
            "YAML sent as JSON",
            b"type: Mesh\n".to_vec(),
            Some("application/json"),
        ),
        ("empty", Vec::new(), None),
        ("a scalar", b"42\n".to_vec(), None),
        ("a list", b"- type: Mesh\n".to_vec(), None),
        (
            "two documents",
            b"type: Mesh\n---\ntype: Mesh\n".to_vec(),
            None,
        ),
        ("unknown type", b"type: Nope\n".to_vec(), None),
        ("wrong type of name", b"name: 7\n".to_vec(), None),
        (
            "wrong type of field",
            b"mtls: [1]\ndata: [1]\nenabled: yes-please\n".to_vec(),
            None,
        ),
        ("unknown field", b"bogus: 1\n".to_vec(), None),
        (
            "unknown apiVersion",
            b"apiVersion: v9\nkind: Mesh\nmetadata:\n  name: x\n".to_vec(),
            None,
        ),
    ];
    for uri in endpoints {
        for (what, body, ct) in &bodies {
            let headers: Vec<(&str, &str)> = ct.iter().map(|c| ("content-type", *c)).collect();
            let r = call(&app, Method::PUT, uri, &headers, body.clone()).await;
            assert!(
                r.status.is_client_error(),
                "{uri} {what}: {} {}",
                r.status,
                r.text()
            );
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{uri} {what}: {}",
                r.text()
            );
            let e = r.error();
            assert_eq!(e.status, 400);
            assert!(!e.invalid_parameters.is_empty(), "{uri} {what}: {e}");
            assert!(!e.detail.is_empty());
        }
    }
    // Invalid Mesh content: every violation with its path.
    let r = put(&app, "/meshes/default", "mtls:\n  enabledBackend: nope\n  backends:\n  - name: v\n    type: vault\n    conf:\n      fromCp:\n        address: not a url\n").await;
    expect(&r, StatusCode::BAD_REQUEST);
    let fields = r.fields();
    assert!(
        fields.contains(&"mtls.enabledBackend".to_string()),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("mtls.backends[0].conf.fromCp")),
        "{fields:?}"
    );
    let r = put(
        &app,
        "/meshes/default/secrets/s1",
        "data: '!!!not base64'\n",
    )
    .await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["data"]);

    assert!(store.all().is_empty());
    assert_eq!(store.log_index().await, proposed, "nothing was proposed");
    store.stop().await;
}

#[tokio::test]
async fn huge_bodies_are_413() {
    let (app, store) = app().await;
    let big = format!(
        "type: Secret\ndata: {}\n",
        "A".repeat(mosaic_core::resource::parse::MAX_DOCUMENT_BYTES + 1)
    );
    for uri in [
        "/meshes/default",
        "/meshes/default/secrets/s1",
        "/global-secrets/g",
        "/zones/z",
    ] {
        let r = put(&app, uri, &big).await;
        expect(&r, StatusCode::PAYLOAD_TOO_LARGE);
        let e = r.error();
        assert_eq!(e.status, 413);
        assert!(e.detail.contains("one resource per request"), "{e}");
    }
    assert!(store.all().is_empty());
    store.stop().await;
}

#[tokio::test]
async fn deleting_a_mesh_cascades_to_its_secrets() {
    let (app, store) = app().await;
    put(&app, "/meshes/default", "type: Mesh\n").await;
    put(
        &app,
        "/meshes/default/secrets/s",
        &format!("data: {}\n", b64("x")),
    )
    .await;
    expect(&delete(&app, "/meshes/default").await, StatusCode::OK);
    assert!(
        store
            .get(&ResourceKey::new(
                ResourceType::Secret,
                Some("default"),
                "s"
            ))
            .expect("get")
            .is_none()
    );
    store.stop().await;
}

#[tokio::test]
async fn the_admin_token_guards_everything_but_ready_and_healthy() {
    let (app, store) = app_with_token(Some("s3cret-admin")).await;
    expect(&get(&app, "/ready").await, StatusCode::OK);
    expect(&get(&app, "/healthy").await, StatusCode::OK);
    for uri in ["/", "/meshes", "/zones/_overview", "/nope"] {
        let r = get(&app, uri).await;
        expect(&r, StatusCode::UNAUTHORIZED);
        let e = r.error();
        assert_eq!(e.status, 401);
        assert!(e.detail.contains("Authorization: Bearer"), "{e}");
    }
    let r = put(&app, "/meshes/default", "type: Mesh\n").await;
    expect(&r, StatusCode::UNAUTHORIZED);
    for wrong in [
        "Bearer nope",
        "Bearer s3cret-admin2",
        "Bearer ",
        "Basic s3cret-admin",
    ] {
        let r = call(
            &app,
            Method::GET,
            "/meshes",
            &[("authorization", wrong)],
            "",
        )
        .await;
        assert!(
            matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "{wrong}: {}",
            r.status
        );
        assert!(
            !r.text().contains("s3cret-admin"),
            "the token never appears in errors"
        );
    }
    let r = call(
        &app,
        Method::GET,
        "/meshes",
        &[("authorization", "Bearer nope")],
        "",
    )
    .await;
    expect(&r, StatusCode::FORBIDDEN);
    assert_eq!(r.error().status, 403);
    // A POST to /ready is not exempt.
    let r = call(&app, Method::POST, "/ready", &[], "").await;
    expect(&r, StatusCode::UNAUTHORIZED);
    assert!(store.all().is_empty());

    let auth = [("authorization", "Bearer s3cret-admin")];
    let r = call(&app, Method::PUT, "/meshes/default", &auth, "type: Mesh\n").await;
    expect(&r, StatusCode::CREATED);
    let r = call(
        &app,
        Method::GET,
        "/meshes",
        &[("authorization", "bearer s3cret-admin")],
        "",
    )
    .await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.json()["total"], 1);
    store.stop().await;
}

/// Two first applies admitted before either is written both generate a CA; the CA Secret puts are
/// conditional, so the second batch is refused whole and the first CA stays.
#[tokio::test]
async fn concurrent_first_applies_install_exactly_one_ca() {
    use mosaic_global::{
        admission::Admission,
        store::{CommandResult, Refusal},
    };

    let store = TestStore::start().await;
    let admission = Admission::new(store.store());
    let mesh = parse_document(
        b"type: Mesh\nname: default\nmtls:\n  backends:\n  - name: ca-1\n    type: builtin\n",
    )
    .expect("mesh");
    let now = OffsetDateTime::now_utc();
    let first = admission.admit(&mesh, now).await.expect("admit");
    let second = admission.admit(&mesh, now).await.expect("admit");
    assert!(
        matches!(&first, Command::Batch(c) if c.len() == 3),
        "{first:?}"
    );
    assert!(matches!(store.apply(first).await, CommandResult::Batch(_)));
    let cert = store.get_secret("default", &builtin::cert_secret_name("default", "ca-1"));
    let before = store.all();
    assert!(matches!(
        store.apply(second).await,
        CommandResult::Refused(Refusal::Conflict(_))
    ));
    assert_eq!(
        store.get_secret("default", &builtin::cert_secret_name("default", "ca-1")),
        cert
    );
    assert_eq!(store.all(), before, "the refused batch applied nothing");
    // Admitted again, the Mesh is a plain put that keeps the installed CA.
    assert!(matches!(
        admission.admit(&mesh, now).await.expect("admit"),
        Command::Put { .. }
    ));
    store.stop().await;
}

#[tokio::test]
async fn a_mesh_with_20000_builtin_backends_is_refused_before_any_ca_is_made() {
    let (app, store) = app().await;
    let backends: Vec<serde_json::Value> = (0..20_000)
        .map(|i| json!({"name": format!("ca-{i}"), "type": "builtin"}))
        .collect();
    let body = json!({
        "type": "Mesh",
        "name": "default",
        "mtls": {"enabledBackend": "ca-0", "backends": backends}
    })
    .to_string();
    assert!(body.len() > 700 * 1024, "the probe's 769 KB request");
    let r = call(
        &app,
        Method::PUT,
        "/meshes/default",
        &[("content-type", "application/json")],
        body,
    )
    .await;
    expect(&r, StatusCode::BAD_REQUEST);
    let e = r.error();
    assert_eq!(r.fields(), ["mtls.backends"], "{e}");
    assert!(
        e.invalid_parameters[0]
            .reason
            .starts_with("at most 32 backends per Mesh (got 20000)"),
        "{e}"
    );
    // Nothing was created: no Mesh, no CA Secrets.
    assert!(store.all().is_empty(), "{:?}", store.all());
    expect(&get(&app, "/meshes/default").await, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&app, "/meshes/default/secrets").await.json()["total"],
        0
    );

    // Within the limit the same Mesh is admitted, each builtin backend with its CA.
    let backends: Vec<serde_json::Value> = (0..32)
        .map(|i| json!({"name": format!("ca-{i}"), "type": "builtin"}))
        .collect();
    let body = json!({"mtls": {"enabledBackend": "ca-0", "backends": backends}}).to_string();
    expect(
        &put(&app, "/meshes/default", &body).await,
        StatusCode::CREATED,
    );
    assert_eq!(
        get(&app, "/meshes/default/secrets").await.json()["total"],
        64
    );
    store.stop().await;
}

#[tokio::test]
async fn a_secret_needs_its_mesh() {
    let (app, store) = app().await;
    let r = put(
        &app,
        "/meshes/later/secrets/vault-token",
        &format!("data: {}\n", b64("s.planted")),
    )
    .await;
    expect(&r, StatusCode::NOT_FOUND);
    let detail = r.error().detail;
    assert!(
        detail.contains("mesh \"later\" does not exist")
            && detail.contains("create Mesh \"later\" first")
            && detail.contains("without mtls"),
        "{detail}"
    );
    assert!(store.all().is_empty(), "nothing stored: {:?}", store.all());
    expect(
        &get(&app, "/meshes/later/secrets/vault-token").await,
        StatusCode::NOT_FOUND,
    );

    // GlobalSecrets belong to no mesh; with the Mesh in place its Secrets are written.
    expect(
        &put(&app, "/global-secrets/g", &format!("data: {}\n", b64("g"))).await,
        StatusCode::CREATED,
    );
    expect(&put(&app, "/meshes/later", "{}").await, StatusCode::CREATED);
    expect(
        &put(
            &app,
            "/meshes/later/secrets/vault-token",
            &format!("data: {}\n", b64("s.token")),
        )
        .await,
        StatusCode::CREATED,
    );
    store.stop().await;
}
