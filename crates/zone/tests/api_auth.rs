//! Who may use a zone's API, against a real `mosaic-global` and `mosaic-zone`: loopback callers
//! are admins by default (Kuma's `localhostIsAdmin`); callers from another address need an
//! admin token (the one the zone generated into `<data_dir>/admin-token` on first start and
//! kept, or the one in `api.admin_token_file`), on every method and path but `GET /ready` and
//! `/healthy`; an API reachable from other hosts without `api.admin_token_file` refuses to start.

use std::{
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

use mosaic_testkit::{
    GlobalCluster, ZoneProcess,
    api_caller::{
        call, check_exposed_api_refuses_to_start, check_health_open, check_needs_token,
        check_refused, client_from, exposed_api_env, file_mode, read_token, remote_caller,
        remote_client,
    },
    dataplane_yaml,
    join::{joining_zone, wait_for_kds_ca},
    workspace_binary,
};
use reqwest::Method;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn zone_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mosaic-zone"))
}

/// A one-replica global with Mesh `default`.
async fn global() -> anyhow::Result<GlobalCluster> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start(0)?;
    cluster.wait_ready(0, WAIT).await?;
    wait_for_kds_ca(&cluster, 0, WAIT).await?;
    let (status, body) = cluster.put(0, "/meshes/default", "type: Mesh\n").await?;
    anyhow::ensure!(status == 201, "mesh: {status} {body}");
    Ok(cluster)
}

/// Zone `name` of `cluster` (not started).
async fn zone(cluster: &GlobalCluster, name: &str) -> anyhow::Result<ZoneProcess> {
    joining_zone(zone_binary(), cluster, name, "24h").await
}

/// A YAML request body.
fn yaml(text: &str) -> Option<(&'static str, &str)> {
    Some(("application/yaml", text))
}

/// Waits until the zone serves Mesh `default` (synced from the global) to a caller with `token`.
async fn wait_for_mesh(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let (status, _) = call(
            http,
            Method::GET,
            &format!("{base}/meshes/default"),
            token,
            None,
        )
        .await?;
        if status == 200 {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "the zone never served Mesh default ({status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn loopback_callers_are_admins_and_the_generated_token_is_kept() -> anyhow::Result<()> {
    let cluster = global().await?;
    let mut east = zone(&cluster, "east").await?;
    east.start()?;
    east.wait_ready(WAIT).await?;
    let local = client_from(IpAddr::from([127, 0, 0, 1]))?;
    let base = east.api_url();
    wait_for_mesh(&local, &base, None).await?;

    // No token configured, API on 127.0.0.1: a local caller registers and reads Dataplanes.
    let dp = dataplane_yaml("default", "web-1", &[("kuma.io/service", "web")]);
    let path = format!("{base}/meshes/default/dataplanes/web-1");
    let (status, body) = call(&local, Method::PUT, &path, None, yaml(&dp)).await?;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&local, Method::GET, &path, None, None).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body)?["name"], "web-1");

    // The generated token: 32 random bytes in hex, owner-only, named in the log, never logged.
    let token_file = east.data_dir().join("admin-token");
    let generated = read_token(&token_file)?;
    assert_eq!(generated.len(), 64, "{generated:?}");
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(file_mode(&token_file)?, 0o600);
    assert!(east.log().contains(&token_file.display().to_string()));
    assert!(!east.log().contains(&generated), "the token was logged");

    // Kept across a restart.
    east.stop()?;
    east.start()?;
    east.wait_ready(WAIT).await?;
    assert_eq!(read_token(&token_file)?, generated);
    assert_eq!(file_mode(&token_file)?, 0o600);
    assert!(!east.log().contains(&generated), "the token was logged");
    let (status, body) = call(&local, Method::DELETE, &path, None, None).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn remote_callers_need_an_admin_token_on_every_method_and_path() -> anyhow::Result<()> {
    let remote_ip = remote_caller();
    let cluster = global().await?;
    let mut east = zone(&cluster, "east").await?;
    let port = east.api;
    let configured = cluster.dir().join("zone-admin-token");
    std::fs::write(&configured, "configured-zone-admin-token\n")?;
    let configured_token = "configured-zone-admin-token";
    for (key, value) in exposed_api_env(remote_ip, port, &configured) {
        east.set_env(key, value);
    }
    east.start()?;
    east.wait_ready(WAIT).await?;
    let generated = read_token(&east.data_dir().join("admin-token"))?;
    let local = client_from(IpAddr::from([127, 0, 0, 1]))?;
    let local_base = east.api_url();
    let (remote, base) = remote_client(remote_ip, port, &local_base)?;
    wait_for_mesh(&remote, &base, Some(&generated)).await?;
    let url = |path: &str| format!("{base}{path}");
    let dp = dataplane_yaml("default", "web-1", &[("kuma.io/service", "web")]);
    let web_1 = url("/meshes/default/dataplanes/web-1");
    let local_1 = format!("{local_base}/meshes/default/dataplanes/local-1");

    if remote_ip.is_some() {
        // localhost_is_admin = true: the same server lets a loopback caller in without a token.
        let local_dp = dataplane_yaml("default", "local-1", &[("kuma.io/service", "web")]);
        let (status, body) = call(&local, Method::PUT, &local_1, None, yaml(&local_dp)).await?;
        assert_eq!(status, 201, "{body}");
    }

    // Without a token: 401 everywhere, with Kuma's error body saying what to send.
    let requests: [(Method, &str); 10] = [
        (Method::GET, "/"),
        (Method::GET, "/meshes"),
        (Method::PUT, "/meshes/default/dataplanes/web-1"),
        (Method::DELETE, "/meshes/default/dataplanes/local-1"),
        (Method::GET, "/meshes/default/dataplanes/_overview"),
        (Method::HEAD, "/meshes/default/dataplanes"),
        (Method::OPTIONS, "/meshes/default/dataplanes/web-1"),
        (Method::POST, "/meshes/default/secrets"),
        (Method::GET, "/no/such/path"),
        (Method::POST, "/ready"),
    ];
    let never_shown = [generated.as_str(), configured_token];
    check_refused(&remote, &base, &requests, yaml(&dp), &never_shown).await?;
    // Nothing was written by the refused requests.
    let (status, _) = call(&remote, Method::GET, &web_1, Some(&generated), None).await?;
    assert_eq!(status, 404);
    if remote_ip.is_some() {
        let (status, _) = call(&local, Method::GET, &local_1, None, None).await?;
        assert_eq!(status, 200, "the refused DELETE deleted nothing");
    }
    // Health stays open.
    check_health_open(&remote, &base).await?;
    // Either admin token registers a Dataplane: 201 created, then 200 updated.
    let path = &web_1;
    let (status, text) = call(&remote, Method::PUT, path, Some(&generated), yaml(&dp)).await?;
    assert_eq!(status, 201, "{text}");
    let (status, text) = call(
        &remote,
        Method::PUT,
        path,
        Some(configured_token),
        yaml(&dp),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let log = east.log();
    assert!(!log.contains(&generated) && !log.contains(configured_token));

    // With api.admin_token_file set and localhost_is_admin left unset, loopback callers need the
    // token too.
    east.stop()?;
    east.remove_env("MOSAIC_API__LOCALHOST_IS_ADMIN");
    east.start()?;
    east.wait_ready(WAIT).await?;
    let list = format!("{local_base}/meshes/default/dataplanes");
    check_needs_token(&local, &list, &generated).await?;
    Ok(())
}

#[test]
fn an_exposed_api_without_a_token_file_refuses_to_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let zone_env = || -> anyhow::Result<Vec<(&'static str, String)>> {
        Ok(vec![
            ("MOSAIC_ZONE", "east".to_owned()),
            // Plain KDS to nowhere: the zone would retry it; the API check comes first.
            ("MOSAIC_GLOBAL__ADDRESS", "grpc://127.0.0.1:1".to_owned()),
            ("MOSAIC_DP_SERVER__LISTEN", "127.0.0.1:0".to_owned()),
            ("MOSAIC_DIAGNOSTICS__LISTEN", "127.0.0.1:0".to_owned()),
        ])
    };
    check_exposed_api_refuses_to_start(zone_binary(), dir.path(), zone_env, WAIT)?;
    Ok(())
}
