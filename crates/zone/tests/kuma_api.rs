//! Kuma's API paths, shapes and filters on real processes: one global and one zone on loopback.
//! The zone registers Kuma-shaped data planes (a standard one, one with another service, a builtin
//! gateway, an outbound-only client without inbounds); the global and the zone then answer Kuma's
//! index, `/config`, `/_resources`, the insight and overview paths (with Kuma's older
//! `+insights` spellings), lists across meshes, `?name=`, `?filter[labels.K]=`, `?tag=K:V`,
//! `?gateway=`, absolute `next` links and error bodies with `details`/`causes`.

use std::{path::Path, time::Duration};

use mosaic_testkit::{
    GlobalCluster, ZoneProcess,
    join::{wait_for_kds_ca, zone_token},
    workspace_binary,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn names(list: &Value) -> Vec<String> {
    let mut out: Vec<String> = list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

async fn get(base: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let resp = reqwest::get(format!("{base}{path}")).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

async fn ok(base: &str, path: &str) -> anyhow::Result<Value> {
    let (status, body) = get(base, path).await?;
    anyhow::ensure!(status == 200, "GET {path} answered {status}: {body}");
    Ok(body)
}

async fn put(base: &str, path: &str, body: &str) -> anyhow::Result<u16> {
    let resp = reqwest::Client::new()
        .put(format!("{base}{path}"))
        .header("content-type", "application/yaml")
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    anyhow::ensure!(
        status == 200 || status == 201,
        "PUT {path}: {status} {text}"
    );
    Ok(status)
}

/// A global with Mesh `default` (label `team: payments`) and a Secret, and zone `east` with four
/// data planes, all of them reported to the global.
pub async fn setup() -> anyhow::Result<(GlobalCluster, ZoneProcess)> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, WAIT).await?;
    wait_for_kds_ca(&cluster, 0, WAIT).await?;
    let g = cluster.api(0);
    put(
        &g,
        "/meshes/default",
        "type: Mesh\nname: default\nlabels:\n  team: payments\n",
    )
    .await?;
    put(&g, "/meshes/other", "type: Mesh\nname: other\n").await?;
    put(
        &g,
        "/meshes/default/secrets/s1",
        "type: Secret\nname: s1\nmesh: default\ndata: YQ==\n",
    )
    .await?;
    let token = zone_token(&cluster, 0, "east", "24h").await?;
    let binary = Path::new(env!("CARGO_BIN_EXE_mosaic-zone"));
    let zone = cluster
        .start_zone(binary, "east", &[0], &token, WAIT)
        .await?;
    zone.wait_for("/meshes", "mesh default arrives", WAIT, |b| {
        names(b).iter().any(|n| n == "default")
    })
    .await?;
    let z = zone.api_url();
    let dp =
        |name: &str, rest: &str| format!("type: Dataplane\nmesh: default\nname: {name}\n{rest}");
    for (name, doc) in [
        (
            "web-1",
            dp(
                "web-1",
                "labels:\n  team: a\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n      version: v1\n",
            ),
        ),
        (
            "web-admin-1",
            dp(
                "web-admin-1",
                "networking:\n  address: 10.0.0.2\n  inbound:\n  - port: 81\n    tags:\n      kuma.io/service: web-admin\n      version: v2\n",
            ),
        ),
        (
            "edge-1",
            dp(
                "edge-1",
                "networking:\n  address: 10.0.0.3\n  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge\n",
            ),
        ),
        // Kuma 2.14 accepts a client without inbounds (outbounds or transparent proxying).
        (
            "client-1",
            dp(
                "client-1",
                "networking:\n  address: 10.0.0.4\n  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: web\n",
            ),
        ),
    ] {
        assert_eq!(
            put(&z, &format!("/meshes/default/dataplanes/{name}"), &doc).await?,
            201
        );
    }
    let start = std::time::Instant::now();
    while ok(&g, "/meshes/default/dataplanes").await?["total"] != 4 {
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "the zone's data planes did not reach the global"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((cluster, zone))
}

fn assert_kuma_index(index: &Value, mode: &str) {
    for key in [
        "hostname",
        "product",
        "version",
        "instanceId",
        "clusterId",
        "gui",
    ] {
        assert!(index[key].is_string(), "{key} in {index}");
    }
    assert_eq!(index["basedOnKuma"], "2.14.3", "{index}");
    assert_eq!(index["mode"], mode);
}

#[tokio::test]
async fn kuma_paths_shapes_and_filters_on_the_global_and_the_zone() -> anyhow::Result<()> {
    let (cluster, zone) = setup().await?;
    let g = cluster.api(0);

    // Index, config, resource types.
    let index = ok(&g, "/").await?;
    assert_kuma_index(&index, "global");
    assert!(
        !index["clusterId"].as_str().unwrap_or_default().is_empty(),
        "{index}"
    );
    let config = ok(&g, "/config").await?;
    assert!(config["api"]["listen"].is_string(), "{config}");
    let types = ok(&g, "/_resources").await?;
    let by_name = |v: &Value, name: &str| -> Value {
        v["resources"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        by_name(&types, "Mesh"),
        json!({"name": "Mesh", "path": "meshes", "scope": "Global", "readOnly": false,
               "singularDisplayName": "Mesh", "pluralDisplayName": "Meshes", "shortName": "m",
               "includeInFederation": true})
    );
    assert_eq!(by_name(&types, "Dataplane")["readOnly"], true);
    assert_eq!(by_name(&types, "Secret")["scope"], "Mesh");

    // Lists across meshes.
    assert_eq!(ok(&g, "/dataplanes").await?["total"], 4);
    let secrets = ok(&g, "/secrets").await?;
    assert_eq!(names(&secrets), ["s1"]);
    assert_eq!(secrets["items"][0]["mesh"], "default");

    // Filters.
    let dps = "/meshes/default/dataplanes";
    assert_eq!(
        names(&ok(&g, &format!("{dps}?name=web")).await?),
        ["web-1", "web-admin-1"]
    );
    assert_eq!(
        names(&ok(&g, &format!("{dps}?filter[labels.team]=a")).await?),
        ["web-1"]
    );
    assert_eq!(
        names(&ok(&g, "/meshes?filter[labels.team]=payments").await?),
        ["default"]
    );
    assert_eq!(names(&ok(&g, "/meshes?name=oth").await?), ["other"]);
    assert_eq!(
        names(&ok(&g, &format!("{dps}?tag=version:v1")).await?),
        ["web-1"]
    );
    assert_eq!(
        names(&ok(&g, &format!("{dps}?tag=kuma.io/service:web")).await?),
        ["web-1", "web-admin-1"],
        "Kuma matches tag values by substring"
    );
    assert_eq!(
        names(&ok(&g, &format!("{dps}?tag=kuma.io/service:web&tag=version:v2")).await?),
        ["web-admin-1"]
    );
    assert_eq!(
        names(&ok(&g, &format!("{dps}?gateway=true")).await?),
        ["edge-1"]
    );
    assert_eq!(
        names(&ok(&g, &format!("{dps}?gateway=builtin")).await?),
        ["edge-1"]
    );
    assert_eq!(
        names(&ok(&g, &format!("{dps}?gateway=delegated")).await?),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&ok(&g, &format!("{dps}?gateway=false")).await?),
        ["client-1", "web-1", "web-admin-1"]
    );
    let (status, err) = get(&g, &format!("{dps}?gateway=maybe")).await?;
    assert_eq!(status, 400);
    assert_eq!(
        err["invalid_parameters"][0]["field"],
        "/meshes/{mesh}/dataplanes.gateway"
    );
    assert_eq!(
        err["causes"][0]["field"],
        "/meshes/{mesh}/dataplanes.gateway"
    );
    assert_eq!(err["details"], err["detail"]);
    let (status, err) = get(&g, &format!("{dps}?filter[name]=x")).await?;
    assert_eq!(
        (status, err["causes"][0]["message"].as_str()),
        (400, Some("filters are only supported on labels"))
    );

    // `next` is an absolute URL from the request's Host, keeping the other parameters.
    let page = ok(&g, &format!("{dps}?size=1&name=web")).await?;
    assert_eq!(page["total"], 2);
    assert_eq!(page["next"], format!("{g}{dps}?name=web&offset=1&size=1"));
    let next = ok(
        &g,
        &page["next"].as_str().unwrap_or_default().replace(&g, ""),
    )
    .await?;
    assert_eq!(names(&next), ["web-admin-1"]);
    assert_eq!(next["next"], Value::Null);

    // Overviews, with Kuma's older spellings.
    for path in [
        "/meshes/default/dataplanes/_overview?tag=version:v2",
        "/meshes/default/dataplanes+insights?tag=version:v2",
    ] {
        let v = ok(&g, path).await?;
        assert_eq!(names(&v), ["web-admin-1"], "{path}");
        assert_eq!(v["items"][0]["type"], "DataplaneOverview");
        assert!(
            v["items"][0]["dataplane"]["networking"].is_object(),
            "{path}: {v}"
        );
    }
    assert_eq!(
        ok(&g, "/dataplanes+insights?gateway=true").await?["total"],
        1
    );
    for path in [
        "/meshes/default/dataplanes/web-1/_overview",
        "/meshes/default/dataplanes+insights/web-1",
    ] {
        let v = ok(&g, path).await?;
        assert_eq!(
            (v["type"].as_str(), v["name"].as_str()),
            (Some("DataplaneOverview"), Some("web-1"))
        );
        assert_eq!(v["labels"]["kuma.io/zone"], "east");
    }
    assert_eq!(
        get(&g, "/meshes/default/dataplanes/nope/_overview")
            .await?
            .0,
        404
    );

    // Zones: overviews and Kuma's subscription fields.
    for path in ["/zones/_overview", "/zones+insights"] {
        assert_eq!(names(&ok(&g, path).await?), ["east"], "{path}");
    }
    for path in ["/zones/east/_overview", "/zones+insights/east"] {
        let v = ok(&g, path).await?;
        assert_eq!(
            (v["type"].as_str(), v["name"].as_str()),
            (Some("ZoneOverview"), Some("east"))
        );
        let sub = &v["zoneInsight"]["subscriptions"][0];
        assert!(
            !sub["version"]["kumaCp"]["version"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{path}: {v}"
        );
        assert!(
            sub["status"]["stat"].is_object() && sub["status"]["total"].is_object(),
            "{v}"
        );
        assert!(
            sub.get("stats").is_none() && sub.get("zoneVersion").is_none(),
            "{v}"
        );
    }
    assert_eq!(get(&g, "/zones/nope/_overview").await?.0, 404);

    // Insights.
    let insights = ok(&g, "/mesh-insights").await?;
    assert_eq!(names(&insights), ["default", "other"]);
    let mi = ok(&g, "/mesh-insights/default").await?;
    assert_eq!(mi["type"], "MeshInsight");
    assert_eq!(mi["dataplanes"]["total"], 4);
    assert_eq!(mi["dataplanesByType"]["gatewayBuiltin"]["total"], 1);
    assert_eq!(mi["dataplanesByType"]["standard"]["total"], 3);
    assert_eq!(mi["resources"]["Secret"]["total"], 1);
    assert_eq!(names(&ok(&g, "/mesh-insights?name=oth").await?), ["other"]);
    assert_eq!(get(&g, "/mesh-insights/nope").await?.0, 404);
    let gi = ok(&g, "/global-insight").await?;
    assert_eq!(gi["meshes"]["total"], 2);
    assert_eq!(gi["dataplanes"]["standard"]["total"], 3);
    assert_eq!(
        gi["zones"]["controlPlanes"],
        json!({"total": 1, "online": 1})
    );
    assert!(gi["createdAt"].is_string(), "{gi}");

    // The zone serves the same where Kuma's zone CP does.
    let z = zone.api_url();
    let index = ok(&z, "/").await?;
    assert_kuma_index(&index, "zone");
    assert_eq!(index["zone"], "east");
    assert_eq!(ok(&z, "/config").await?["zone"], "east");
    let types = ok(&z, "/_resources").await?;
    assert_eq!(by_name(&types, "Mesh")["readOnly"], true);
    assert_eq!(by_name(&types, "Dataplane")["readOnly"], false);
    assert_eq!(
        names(&ok(&z, "/dataplanes?name=client").await?),
        ["client-1"]
    );
    assert_eq!(
        names(&ok(&z, "/meshes/default/dataplanes+insights?gateway=true").await?),
        ["edge-1"]
    );
    assert_eq!(
        names(&ok(&z, "/meshes/default/dataplanes?tag=version:v1").await?),
        ["web-1"]
    );
    let page = ok(&z, "/meshes/default/dataplanes?size=3").await?;
    assert_eq!(
        page["next"],
        format!("{z}/meshes/default/dataplanes?offset=3&size=3")
    );
    assert_eq!(
        ok(&z, "/meshes/default/dataplanes+insights/web-1").await?["name"],
        "web-1"
    );
    drop(zone);
    Ok(())
}
