//! Who may use the global's API, against real `mosaic-global` processes: loopback callers are
//! admins by default (Kuma's `localhostIsAdmin`); callers from another address need an admin
//! token (the one generated into `<data_dir>/admin-token` on first start and kept, or the one in
//! `api.admin_token_file`), on every method and path but `GET /ready` and `/healthy`; an API
//! reachable from other hosts without `api.admin_token_file` refuses to start.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use mosaic_testkit::{GlobalCluster, free_port, non_loopback_local_ip};
use reqwest::Method;
use serde_json::Value;

const READY: Duration = Duration::from_secs(60);
const SECRET_DATA: &str = "c2VjcmV0LXZhdWx0LXRva2Vu"; // base64 of "secret-vault-token"

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mosaic-global"))
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
    body: Option<(&str, &str)>,
) -> (u16, String) {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((content_type, text)) = body {
        req = req
            .header("content-type", content_type)
            .body(text.to_string());
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
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
    let mut cluster = GlobalCluster::new(binary(), 1, 10_000)?;
    cluster.start(0)?;
    cluster.wait_ready(0, READY).await?;

    // No token configured, API on 127.0.0.1: a local caller may do anything without one.
    let (status, body) = cluster.put(0, "/meshes/default", "type: Mesh\n").await?;
    assert_eq!(status, 201, "{body}");
    let secret = format!("type: Secret\nmesh: default\nname: s1\ndata: {SECRET_DATA}\n");
    let (status, body) = cluster
        .put(0, "/meshes/default/secrets/s1", &secret)
        .await?;
    assert_eq!(status, 201, "{body}");
    let (status, body) = cluster.get(0, "/meshes/default/secrets/s1").await?;
    assert_eq!((status, body["data"].as_str()), (200, Some(SECRET_DATA)));
    let (status, token) = cluster
        .post(0, "/tokens/zone", &serde_json::json!({"zone": "east"}))
        .await?;
    assert_eq!(status, 200, "{token}");

    // The generated token: 32 random bytes in hex, owner-only, named in the log, never logged.
    let path = cluster.data_dir(0).join("admin-token");
    let generated = read_token(&path);
    assert_eq!(generated.len(), 64, "{generated:?}");
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(mode(&path), 0o600);
    let log = cluster.log(0);
    assert!(log.contains(&path.display().to_string()), "{log}");
    assert!(!log.contains(&generated), "the token was logged");

    // Kept across a restart.
    cluster.stop(0)?;
    cluster.start(0)?;
    cluster.wait_ready(0, READY).await?;
    assert_eq!(read_token(&path), generated);
    assert_eq!(mode(&path), 0o600);
    assert!(!cluster.log(0).contains(&generated), "the token was logged");
    let (status, _) = cluster.get(0, "/meshes/default").await?;
    assert_eq!(status, 200);
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
    let mut cluster = GlobalCluster::new(binary(), 1, 10_000)?;
    let port = cluster.replicas[0].api;
    let configured = cluster.dir().join("configured-admin-token");
    std::fs::write(&configured, "configured-admin-token-value\n")?;
    let wildcard = match remote_ip {
        Some(IpAddr::V6(_)) => format!("[::]:{port}"),
        _ => format!("0.0.0.0:{port}"),
    };
    cluster.set_env("MOSAIC_API__LISTEN", wildcard);
    cluster.set_env(
        "MOSAIC_API__ADMIN_TOKEN_FILE",
        configured.display().to_string(),
    );
    cluster.set_env(
        "MOSAIC_API__LOCALHOST_IS_ADMIN",
        if remote_ip.is_some() { "true" } else { "false" },
    );
    cluster.start(0)?;
    cluster.wait_ready(0, READY).await?;
    let generated = read_token(&cluster.data_dir(0).join("admin-token"));
    let configured_token = "configured-admin-token-value";

    let (remote, base) = match remote_ip {
        Some(ip) => (
            client_from(ip),
            format!("http://{}", SocketAddr::new(ip, port)),
        ),
        None => (client_from(IpAddr::from([127, 0, 0, 1])), cluster.api(0)),
    };
    let local = client_from(IpAddr::from([127, 0, 0, 1]));
    let local_base = cluster.api(0);
    let url = |path: &str| format!("{base}{path}");
    let yaml = Some(("application/yaml", "type: Mesh\n"));
    let secret = format!("type: Secret\nmesh: default\nname: s1\ndata: {SECRET_DATA}\n");

    if remote_ip.is_some() {
        // localhost_is_admin = true: the same server lets a loopback caller in without a token.
        let (status, body) = call(
            &local,
            Method::PUT,
            &format!("{local_base}/meshes/default"),
            None,
            yaml,
        )
        .await;
        assert_eq!(status, 201, "{body}");
    } else {
        let (status, body) = call(
            &remote,
            Method::PUT,
            &url("/meshes/default"),
            Some(&generated),
            yaml,
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = call(
        &remote,
        Method::PUT,
        &url("/meshes/default/secrets/s1"),
        Some(&generated),
        Some(("application/yaml", &secret)),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Without a token: 401 everywhere, with Kuma's error body saying what to send, and no data.
    let requests: [(Method, &str); 14] = [
        (Method::GET, "/"),
        (Method::GET, "/meshes"),
        (Method::GET, "/meshes/default/secrets"),
        (Method::GET, "/meshes/default/secrets/s1"),
        (Method::GET, "/global-secrets"),
        (Method::POST, "/tokens/zone"),
        (Method::POST, "/tokens/dataplane"),
        (Method::PUT, "/meshes/other"),
        (Method::DELETE, "/meshes/default"),
        (Method::HEAD, "/meshes/default/secrets/s1"),
        (Method::OPTIONS, "/meshes/default/secrets/s1"),
        (Method::PATCH, "/meshes/default"),
        (Method::GET, "/no/such/path"),
        (Method::POST, "/ready"),
    ];
    for (method, path) in &requests {
        let (status, body) = call(&remote, method.clone(), &url(path), None, None).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert!(!body.contains(SECRET_DATA), "{method} {path}: {body}");
        if *method != Method::HEAD {
            let e: Value = serde_json::from_str(&body)?;
            assert_eq!(e["status"], 401, "{body}");
            assert!(
                e["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Authorization: Bearer"),
                "{body}"
            );
        }
        // A wrong token: 403, and neither token appears in the answer.
        let (status, body) = call(
            &remote,
            method.clone(),
            &url(path),
            Some("not-the-token"),
            None,
        )
        .await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(!body.contains(&generated) && !body.contains(configured_token));
    }
    // Health stays open.
    for path in ["/ready", "/healthy"] {
        let (status, body) = call(&remote, Method::GET, &url(path), None, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // Either admin token opens everything, Secrets' data and tokens included.
    for token in [generated.as_str(), configured_token] {
        let (status, body) = call(
            &remote,
            Method::GET,
            &url("/meshes/default/secrets/s1"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(SECRET_DATA), "{body}");
        let (status, body) = call(
            &remote,
            Method::POST,
            &url("/tokens/zone"),
            Some(token),
            Some(("application/json", r#"{"zone":"east"}"#)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let server_log = cluster.log(0);
    assert!(!server_log.contains(&generated) && !server_log.contains(configured_token));

    // With api.admin_token_file set and localhost_is_admin left unset, loopback callers need the
    // token too (the contract's "every request needs the token").
    cluster.stop(0)?;
    cluster.remove_env("MOSAIC_API__LOCALHOST_IS_ADMIN");
    cluster.start(0)?;
    cluster.wait_ready(0, READY).await?;
    let (status, body) = call(
        &local,
        Method::GET,
        &format!("{local_base}/meshes"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = call(
        &local,
        Method::GET,
        &format!("{local_base}/meshes"),
        Some(&generated),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

/// Runs `mosaic-global run` with `env` until it exits (at most 60 s): exit code and stderr.
fn run_until_exit(env: &[(&str, String)]) -> (i32, String) {
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MOSAIC_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .arg("run")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mosaic-global");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("stderr");
            return (
                status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("stderr");
            panic!(
                "mosaic-global kept running: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_exposed_api_without_a_token_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let data_dir: PathBuf = dir.path().join(listen.replace([':', '[', ']', '.'], "_"));
        let port = free_port().unwrap();
        let (code, stderr) = run_until_exit(&[
            ("MOSAIC_STORE__DATA_DIR", data_dir.display().to_string()),
            ("MOSAIC_API__LISTEN", listen.to_string()),
            ("MOSAIC_RAFT__LISTEN", format!("127.0.0.1:{port}")),
            ("MOSAIC_RAFT__ADVERTISE", format!("127.0.0.1:{port}")),
        ]);
        assert_eq!(code, 1, "{listen}: {stderr}");
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
        // The token it points at is there to use.
        assert_eq!(mode(&generated), 0o600);
        // Nothing of the store was created: it stopped before raft.
        assert!(!stderr.contains("raft started"), "{stderr}");
    }
}
