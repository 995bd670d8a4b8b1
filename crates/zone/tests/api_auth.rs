//! Who may use a zone's API, against a real `mosaic-global` and `mosaic-zone`: loopback callers
//! are admins by default (Kuma's `localhostIsAdmin`); callers from another address need an
//! admin token (the one the zone generated into `<data_dir>/admin-token` on first start and
//! kept, or the one in `api.admin_token_file`), on every method and path but `GET /ready` and
//! `/healthy`; an API reachable from other hosts without `api.admin_token_file` refuses to start.

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use mosaic_testkit::{
    GlobalCluster, ZoneProcess, dataplane_yaml, non_loopback_local_ip, workspace_binary,
};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn zone_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mosaic-zone"))
}

/// A one-replica global with Mesh `default`.
async fn global() -> anyhow::Result<GlobalCluster> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start(0)?;
    cluster.wait_ready(0, WAIT).await?;
    let start = Instant::now();
    while !cluster.kds_ca_path(0).exists() {
        anyhow::ensure!(start.elapsed() < WAIT, "the global never wrote kds-ca.pem");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = cluster.put(0, "/meshes/default", "type: Mesh\n").await?;
    anyhow::ensure!(status == 201, "mesh: {status} {body}");
    Ok(cluster)
}

/// Zone `name` of `cluster` (not started).
async fn zone(cluster: &GlobalCluster, name: &str) -> anyhow::Result<ZoneProcess> {
    let (status, token) = cluster
        .post(0, "/tokens/zone", &json!({"zone": name, "validFor": "24h"}))
        .await?;
    anyhow::ensure!(status == 200, "zone token: {status} {token}");
    ZoneProcess::new(
        zone_binary(),
        cluster.dir(),
        name,
        &cluster.kds_url(0),
        &cluster.kds_ca_path(0),
        token.trim(),
    )
}

/// An HTTP client whose connections come from `source`.
fn client_from(source: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A request's status and body text.
async fn call(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    yaml: Option<&str>,
) -> (u16, String) {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(text) = yaml {
        req = req
            .header("content-type", "application/yaml")
            .body(text.to_string());
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
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
        .await;
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

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn read_token(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[tokio::test]
async fn loopback_callers_are_admins_and_the_generated_token_is_kept() -> anyhow::Result<()> {
    let cluster = global().await?;
    let mut east = zone(&cluster, "east").await?;
    east.start()?;
    east.wait_ready(WAIT).await?;
    let local = client_from(IpAddr::from([127, 0, 0, 1]));
    let base = east.api_url();
    wait_for_mesh(&local, &base, None).await?;

    // No token configured, API on 127.0.0.1: a local caller registers and reads Dataplanes.
    let dp = dataplane_yaml("default", "web-1", &[("kuma.io/service", "web")]);
    let path = format!("{base}/meshes/default/dataplanes/web-1");
    let (status, body) = call(&local, Method::PUT, &path, None, Some(&dp)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&local, Method::GET, &path, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body)?["name"], "web-1");

    // The generated token: 32 random bytes in hex, owner-only, named in the log, never logged.
    let token_file = east.data_dir().join("admin-token");
    let generated = read_token(&token_file);
    assert_eq!(generated.len(), 64, "{generated:?}");
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(mode(&token_file), 0o600);
    assert!(east.log().contains(&token_file.display().to_string()));
    assert!(!east.log().contains(&generated), "the token was logged");

    // Kept across a restart.
    east.stop()?;
    east.start()?;
    east.wait_ready(WAIT).await?;
    assert_eq!(read_token(&token_file), generated);
    assert_eq!(mode(&token_file), 0o600);
    assert!(!east.log().contains(&generated), "the token was logged");
    let (status, body) = call(&local, Method::DELETE, &path, None, None).await;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn remote_callers_need_an_admin_token_on_every_method_and_path() -> anyhow::Result<()> {
    // A real remote caller: one of this machine's non-loopback addresses, talking to the API on
    // the wildcard address. Without one (a machine with loopback only), the loopback caller is
    // made non-admin instead (`localhost_is_admin = false`), which takes the same path.
    let remote_ip = non_loopback_local_ip();
    match remote_ip {
        Some(ip) => eprintln!("remote caller: {ip}"),
        None => eprintln!(
            "this machine has no non-loopback address: the remote path runs with localhost_is_admin = false"
        ),
    }
    let cluster = global().await?;
    let mut east = zone(&cluster, "east").await?;
    let port = east.api;
    let configured = cluster.dir().join("zone-admin-token");
    std::fs::write(&configured, "configured-zone-admin-token\n")?;
    let configured_token = "configured-zone-admin-token";
    let wildcard = match remote_ip {
        Some(IpAddr::V6(_)) => format!("[::]:{port}"),
        _ => format!("0.0.0.0:{port}"),
    };
    east.set_env("MOSAIC_API__LISTEN", wildcard);
    east.set_env(
        "MOSAIC_API__ADMIN_TOKEN_FILE",
        configured.display().to_string(),
    );
    east.set_env(
        "MOSAIC_API__LOCALHOST_IS_ADMIN",
        if remote_ip.is_some() { "true" } else { "false" },
    );
    east.start()?;
    east.wait_ready(WAIT).await?;
    let generated = read_token(&east.data_dir().join("admin-token"));
    let local = client_from(IpAddr::from([127, 0, 0, 1]));
    let local_base = east.api_url();
    let (remote, base) = match remote_ip {
        Some(ip) => (
            client_from(ip),
            format!("http://{}", SocketAddr::new(ip, port)),
        ),
        None => (local.clone(), local_base.clone()),
    };
    wait_for_mesh(&remote, &base, Some(&generated)).await?;
    let url = |path: &str| format!("{base}{path}");
    let dp = dataplane_yaml("default", "web-1", &[("kuma.io/service", "web")]);

    if remote_ip.is_some() {
        // localhost_is_admin = true: the same server lets a loopback caller in without a token.
        let (status, body) = call(
            &local,
            Method::PUT,
            &format!("{local_base}/meshes/default/dataplanes/local-1"),
            None,
            Some(&dataplane_yaml(
                "default",
                "local-1",
                &[("kuma.io/service", "web")],
            )),
        )
        .await;
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
    for (method, path) in &requests {
        let body = (*method == Method::PUT).then_some(dp.as_str());
        let (status, text) = call(&remote, method.clone(), &url(path), None, body).await;
        assert_eq!(status, 401, "{method} {path}: {text}");
        if *method != Method::HEAD {
            let e: Value = serde_json::from_str(&text)?;
            assert_eq!(e["status"], 401, "{text}");
            assert!(
                e["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Authorization: Bearer"),
                "{text}"
            );
        }
        let (status, text) = call(
            &remote,
            method.clone(),
            &url(path),
            Some("not-the-token"),
            body,
        )
        .await;
        assert_eq!(status, 403, "{method} {path}: {text}");
        assert!(!text.contains(&generated) && !text.contains(configured_token));
    }
    // Nothing was written by the refused requests.
    let (status, _) = call(
        &remote,
        Method::GET,
        &url("/meshes/default/dataplanes/web-1"),
        Some(&generated),
        None,
    )
    .await;
    assert_eq!(status, 404);
    if remote_ip.is_some() {
        let (status, _) = call(
            &local,
            Method::GET,
            &format!("{local_base}/meshes/default/dataplanes/local-1"),
            None,
            None,
        )
        .await;
        assert_eq!(status, 200, "the refused DELETE deleted nothing");
    }
    // Health stays open.
    for path in ["/ready", "/healthy"] {
        let (status, text) = call(&remote, Method::GET, &url(path), None, None).await;
        assert_eq!(status, 200, "{path}: {text}");
    }
    // Either admin token registers a Dataplane: 201 created, then 200 updated.
    let path = url("/meshes/default/dataplanes/web-1");
    let (status, text) = call(&remote, Method::PUT, &path, Some(&generated), Some(&dp)).await;
    assert_eq!(status, 201, "{text}");
    let (status, text) = call(
        &remote,
        Method::PUT,
        &path,
        Some(configured_token),
        Some(&dp),
    )
    .await;
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
    let (status, text) = call(&local, Method::GET, &list, None, None).await;
    assert_eq!(status, 401, "{text}");
    let (status, text) = call(&local, Method::GET, &list, Some(&generated), None).await;
    assert_eq!(status, 200, "{text}");
    Ok(())
}

#[test]
fn an_exposed_api_without_a_token_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let data_dir = dir.path().join(listen.replace([':', '[', ']', '.'], "_"));
        let mut cmd = Command::new(zone_binary());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MOSAIC_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd
            .arg("run")
            .env("MOSAIC_ZONE", "east")
            .env("MOSAIC_STORE__DATA_DIR", &data_dir)
            // Plain KDS to nowhere: the zone would retry it; the API check comes first.
            .env("MOSAIC_GLOBAL__ADDRESS", "grpc://127.0.0.1:1")
            .env("MOSAIC_API__LISTEN", listen)
            .env("MOSAIC_DP_SERVER__LISTEN", "127.0.0.1:0")
            .env("MOSAIC_DIAGNOSTICS__LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosaic-zone");
        let start = Instant::now();
        let code = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status.code();
            }
            if start.elapsed() > WAIT {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = child.wait_with_output().expect("stderr");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code, Some(1), "{listen}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line: {stderr}"));
        let generated = data_dir.join("admin-token");
        for needle in [
            "reachable from other hosts",
            "api.admin_token_file",
            "MOSAIC_API__ADMIN_TOKEN_FILE",
            "127.0.0.1:0",
            &generated.display().to_string(),
        ] {
            assert!(line.contains(needle), "{needle}: {line}");
        }
        assert_eq!(mode(&generated), 0o600);
    }
}
