//! The zone HTTP API over a real zone store: reads of synced Meshes, 405 for writes of
//! global-owned types, Secrets not served, Dataplane PUT/GET/DELETE and overviews, 4xx with
//! field paths for bad input.

mod support;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::connect_info::MockConnectInfo,
    http::{Method, Request, StatusCode},
};
use mosaic_core::resource::UnknownFields;
use mosaic_kds::assemble::Assembled;
use mosaic_runtime::api_auth::AdminAuth;
use mosaic_zone::{
    api::{ApiState, router},
    kds::receive,
    store::{KdsType, ZoneStore},
};
use serde_json::{Value, json};
use support::fixtures::{dataplane_json, mesh, secret};
use tower::ServiceExt as _;

struct Api {
    router: Router,
    store: Arc<ZoneStore>,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Self {
        Self::with_unknown_fields(UnknownFields::Ignore)
    }

    /// With `api.unknown_fields = policy`.
    fn with_unknown_fields(policy: UnknownFields) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ZoneStore::open(dir.path()).unwrap());
        for (ty, resources) in [
            ("Mesh", vec![mesh("default", 3), mesh("other", 4)]),
            ("Secret", vec![secret("default", "s1", 5, "hush")]),
        ] {
            let response = Assembled {
                type_url: ty.into(),
                nonce: "n".into(),
                authoritative: true,
                resources,
                ..Assembled::default()
            };
            let kind: KdsType = ty.parse().unwrap();
            let plan = receive::plan(&store, kind, &response, None).unwrap();
            store.apply_sync(&plan.batch).unwrap();
        }
        // A loopback caller with the default rule (no admin token file): an admin.
        let router = router(ApiState {
            store: store.clone(),
            zone: "east".into(),
            auth: Arc::new(AdminAuth::new([], true)),
            unknown_fields: policy,
            config: Arc::new(serde_json::json!({"zone": "east"})),
        })
        .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
        Self {
            router,
            store,
            _dir: dir,
        }
    }

    /// Sends a request; returns the status and the JSON body (`null` when not JSON).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        let body = match body {
            Some((ct, text)) => {
                req = req.header("content-type", ct);
                Body::from(text)
            }
            None => Body::empty(),
        };
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }
}

fn assert_kuma_error(body: &Value, status: u16) {
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(body["type"], "/std-errors");
}

#[tokio::test]
async fn index_and_health() {
    let api = Api::new();
    let (status, body) = api.call(Method::GET, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["product"], "Mosaic");
    assert_eq!(body["mode"], "zone");
    assert_eq!(body["zone"], "east");
    for path in ["/ready", "/healthy"] {
        assert_eq!(api.call(Method::GET, path, None).await.0, StatusCode::OK);
    }
    let (status, body) = api.call(Method::GET, "/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_kuma_error(&body, 404);
}

#[tokio::test]
async fn meshes_are_read_only_copies() {
    let api = Api::new();
    let (status, body) = api.call(Method::GET, "/meshes", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 2);
    assert_eq!(body["items"][0]["name"], "default");
    assert_eq!(body["items"][0]["version"], 3);
    assert!(body["next"].is_null());
    let (status, body) = api.call(Method::GET, "/meshes?size=1", None).await;
    assert_eq!(status, StatusCode::OK);
    // Kuma's absolute nextLink (no Host header in this in-process request: `localhost`).
    assert_eq!(body["next"], "http://localhost/meshes?offset=1&size=1");
    let (status, body) = api.call(Method::GET, "/meshes/other", None).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (StatusCode::OK, Some("Mesh"))
    );
    let (status, body) = api.call(Method::GET, "/meshes/missing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_kuma_error(&body, 404);

    for (method, path) in [
        (Method::PUT, "/meshes/default"),
        (Method::DELETE, "/meshes/default"),
        (Method::PUT, "/meshes/default/secrets/s1"),
        (Method::DELETE, "/global-secrets/g"),
        (Method::PUT, "/zones/east"),
    ] {
        let body = Some((
            "application/json",
            json!({"type": "Mesh", "name": "default"}).to_string(),
        ));
        let (status, body) = api.call(method.clone(), path, body).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_kuma_error(&body, 405);
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("managed on the global control plane"),
            "{body}"
        );
    }
    let (_, body) = api.call(Method::PUT, "/meshes/default", None).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Meshes are managed on the global"),
        "{body}"
    );
    // The store still has the Mesh.
    assert!(
        api.store
            .get(&mosaic_zone::store::StoreKey::mesh("default"))
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn secrets_are_not_served() {
    let api = Api::new();
    for path in [
        "/meshes/default/secrets",
        "/meshes/default/secrets/s1",
        "/global-secrets",
    ] {
        let (status, body) = api.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_kuma_error(&body, 404);
        assert!(!body.to_string().contains("aHVzaA"), "{body}");
    }
}

#[tokio::test]
async fn dataplanes_put_get_list_overview_delete() {
    let api = Api::new();
    let path = "/meshes/default/dataplanes/dp-1";
    let body = dataplane_json("default", "dp-1", "web").to_string();
    let (status, created) = api
        .call(Method::PUT, path, Some(("application/json", body.clone())))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "dp-1");
    assert_eq!(created["mesh"], "default");
    assert!(created["version"].as_u64().unwrap() >= 1);
    let (status, _) = api
        .call(Method::PUT, path, Some(("application/json", body)))
        .await;
    assert_eq!(status, StatusCode::OK);

    // YAML without type/name/mesh: the URL fills them in.
    let yaml = "networking:\n  address: 10.0.0.2\n  inbound:\n  - port: 9090\n    tags:\n      kuma.io/service: api\n";
    let (status, _) = api
        .call(
            Method::PUT,
            "/meshes/default/dataplanes/dp-2",
            Some(("application/yaml", yaml.into())),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, got) = api.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        got["networking"]["inbound"][0]["tags"]["kuma.io/service"],
        "web"
    );
    let (_, list) = api
        .call(Method::GET, "/meshes/default/dataplanes", None)
        .await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][1]["name"], "dp-2");
    let (_, other) = api
        .call(Method::GET, "/meshes/other/dataplanes", None)
        .await;
    assert_eq!(other["total"], 0);

    let (status, ov) = api
        .call(
            Method::GET,
            "/meshes/default/dataplanes/dp-1/_overview",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ov["type"], "DataplaneOverview");
    assert_eq!(ov["name"], "dp-1");
    assert_eq!(ov["dataplane"]["networking"]["address"], "10.0.0.1");
    assert!(ov["dataplaneInsight"].is_object());
    let (_, ovs) = api
        .call(Method::GET, "/meshes/default/dataplanes/_overview", None)
        .await;
    assert_eq!(ovs["total"], 2);

    // YAML out when asked.
    let req = Request::builder()
        .uri(path)
        .header("accept", "application/yaml")
        .body(Body::empty())
        .unwrap();
    let resp = api.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/yaml");

    let (status, _) = api.call(Method::DELETE, path, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_kuma_error(&body, 404);
    let (status, _) = api.call(Method::DELETE, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_dataplanes_are_4xx_with_field_paths() {
    let api = Api::new();
    let put = |path: &'static str, body: Value| {
        let api = &api;
        async move {
            api.call(
                Method::PUT,
                path,
                Some(("application/json", body.to_string())),
            )
            .await
        }
    };
    let fields = |body: &Value| -> Vec<String> {
        body["invalid_parameters"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| p["field"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };

    let mut bad = dataplane_json("default", "dp-1", "web");
    bad["networking"]["address"] = json!("");
    bad["networking"]["inbound"][0]["port"] = json!(0);
    let (status, body) = put("/meshes/default/dataplanes/dp-1", bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_kuma_error(&body, 400);
    let f = fields(&body);
    assert!(f.contains(&"networking.address".to_string()), "{f:?}");
    assert!(
        f.contains(&"networking.inbound[0].port".to_string()),
        "{f:?}"
    );

    let mut no_service = dataplane_json("default", "dp-1", "web");
    no_service["networking"]["inbound"][0]["tags"] = json!({"version": "v1"});
    let (status, body) = put("/meshes/default/dataplanes/dp-1", no_service).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Kuma's path for the missing service tag.
    assert_eq!(
        fields(&body),
        [r#"networking.inbound[0].tags["kuma.io/service"]"#]
    );

    let (status, body) = put(
        "/meshes/default/dataplanes/dp-1",
        dataplane_json("default", "dp-9", "web"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["name"]);
    let (status, body) = put(
        "/meshes/default/dataplanes/dp-1",
        dataplane_json("other", "dp-1", "web"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["mesh"]);
    let (status, body) = put(
        "/meshes/nowhere/dataplanes/dp-1",
        dataplane_json("nowhere", "dp-1", "web"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["mesh"]);
    assert!(
        body["detail"].as_str().unwrap().contains("does not exist"),
        "{body}"
    );
    let (status, body) = put("/meshes/default/dataplanes/dp-1", json!({"type": "Mesh"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["type"]);

    let (status, body) = api
        .call(
            Method::PUT,
            "/meshes/default/dataplanes/dp-1",
            Some(("application/yaml", "networking: [".into())),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_kuma_error(&body, 400);
    let (status, body) = api
        .call(Method::GET, "/meshes/default/dataplanes?size=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["size"]);
    let (status, _) = api
        .call(Method::POST, "/meshes/default/dataplanes", None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    let big = "x".repeat(3 * 1024 * 1024);
    let (status, _) = api
        .call(
            Method::PUT,
            "/meshes/default/dataplanes/dp-1",
            Some(("application/yaml", big)),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        api.store
            .list(
                KdsType::Resource(mosaic_core::resource::ResourceType::Dataplane),
                None
            )
            .unwrap()
            .is_empty()
    );
}

/// What the security probe sent: Dataplanes the global refuses (an address that is no address,
/// an unknown top-level field, with `api.unknown_fields = "refuse"`). The zone refuses them the
/// same way, naming the field, and stores nothing.
#[tokio::test]
async fn dataplanes_the_global_refuses_are_refused_and_nothing_is_stored() {
    let api = Api::with_unknown_fields(UnknownFields::Refuse);
    let mut bad_address = dataplane_json("default", "dp-1", "web");
    bad_address["networking"]["address"] = json!("not an ip;rm -rf");
    let mut unknown_field = dataplane_json("default", "dp-1", "web");
    unknown_field["evil"] = json!({"run": "rm -rf /"});
    for (body, field, words) in [
        (
            bad_address,
            "networking.address",
            "\"not an ip;rm -rf\" is not an IP address or a DNS name",
        ),
        (unknown_field, "evil", "unknown field"),
    ] {
        let (status, answer) = api
            .call(
                Method::PUT,
                "/meshes/default/dataplanes/dp-1",
                Some(("application/json", body.to_string())),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_kuma_error(&answer, 400);
        let params = answer["invalid_parameters"].as_array().expect("fields");
        assert_eq!(params.len(), 1, "{answer}");
        assert_eq!(params[0]["field"], field, "{answer}");
        assert!(
            params[0]["reason"].as_str().unwrap().contains(words),
            "{answer}"
        );
        let (status, _) = api
            .call(Method::GET, "/meshes/default/dataplanes/dp-1", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing stored");
    }
    assert!(
        api.store
            .list(
                KdsType::Resource(mosaic_core::resource::ResourceType::Dataplane),
                None
            )
            .unwrap()
            .is_empty()
    );
}

/// By default (Kuma's behaviour) a Dataplane's unknown fields are dropped: the PUT succeeds with
/// a `Warning` header per ignored field, and what is stored (and synced up) has none of them.
#[tokio::test]
async fn unknown_dataplane_fields_are_ignored_with_a_warning_by_default() {
    let api = Api::new();
    let mut body = dataplane_json("default", "dp-1", "web");
    body["evil"] = json!({"run": "rm -rf /"});
    body["networking"]["inbound"][0]["health"] = json!({"ready": true});
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/meshes/default/dataplanes/dp-1")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = api.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let warnings: Vec<&str> = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(warnings, [r#"299 - "unknown field evil ignored""#]);
    let (status, stored) = api
        .call(Method::GET, "/meshes/default/dataplanes/dp-1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(stored.get("evil").is_none(), "{stored}");
    // Kuma's inbound fields are kept as written.
    assert_eq!(
        stored["networking"]["inbound"][0]["health"],
        json!({"ready": true})
    );
}
