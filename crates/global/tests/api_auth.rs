//! Who may use the global's API, against real `mosaic-global` processes: loopback callers are
//! admins by default (Kuma's `localhostIsAdmin`); callers from another address need an admin
//! token (the one generated into `<data_dir>/admin-token` on first start and kept, or the one in
//! `api.admin_token_file`), on every method and path but `GET /ready` and `/healthy`; an API
//! reachable from other hosts without `api.admin_token_file` refuses to start.

use std::{net::IpAddr, path::Path, time::Duration};

use mosaic_testkit::{
    GlobalCluster,
    api_caller::{
        call, check_exposed_api_refuses_to_start, check_health_open, check_needs_token,
        check_refused, client_from, exposed_api_env, file_mode, read_token, remote_caller,
        remote_client,
    },
    free_port,
};
use reqwest::Method;

const READY: Duration = Duration::from_secs(60);
const SECRET_DATA: &str = "c2VjcmV0LXZhdWx0LXRva2Vu"; // base64 of "secret-vault-token"

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mosaic-global"))
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
    let generated = read_token(&path)?;
    assert_eq!(generated.len(), 64, "{generated:?}");
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(file_mode(&path)?, 0o600);
    let log = cluster.log(0);
    assert!(log.contains(&path.display().to_string()), "{log}");
    assert!(!log.contains(&generated), "the token was logged");

    // Kept across a restart.
    cluster.stop(0)?;
    cluster.start(0)?;
    cluster.wait_ready(0, READY).await?;
    assert_eq!(read_token(&path)?, generated);
    assert_eq!(file_mode(&path)?, 0o600);
    assert!(!cluster.log(0).contains(&generated), "the token was logged");
    let (status, _) = cluster.get(0, "/meshes/default").await?;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test]
async fn remote_callers_need_an_admin_token_on_every_method_and_path() -> anyhow::Result<()> {
    let remote_ip = remote_caller();
    let mut cluster = GlobalCluster::new(binary(), 1, 10_000)?;
    let port = cluster.replicas[0].api;
    let configured = cluster.dir().join("configured-admin-token");
    std::fs::write(&configured, "configured-admin-token-value\n")?;
    for (key, value) in exposed_api_env(remote_ip, port, &configured) {
        cluster.set_env(key, value);
    }
    cluster.start(0)?;
    cluster.wait_ready(0, READY).await?;
    let generated = read_token(&cluster.data_dir(0).join("admin-token"))?;
    let configured_token = "configured-admin-token-value";

    let (remote, base) = remote_client(remote_ip, port, &cluster.api(0))?;
    let local = client_from(IpAddr::from([127, 0, 0, 1]))?;
    let local_base = cluster.api(0);
    let url = |path: &str| format!("{base}{path}");
    let yaml = Some(("application/yaml", "type: Mesh\n"));
    let secret = format!("type: Secret\nmesh: default\nname: s1\ndata: {SECRET_DATA}\n");

    if remote_ip.is_some() {
        // localhost_is_admin = true: the same server lets a loopback caller in without a token.
        let mesh = format!("{local_base}/meshes/default");
        let (status, body) = call(&local, Method::PUT, &mesh, None, yaml).await?;
        assert_eq!(status, 201, "{body}");
    } else {
        let mesh = url("/meshes/default");
        let (status, body) = call(&remote, Method::PUT, &mesh, Some(&generated), yaml).await?;
        assert_eq!(status, 201, "{body}");
    }
    let s1 = url("/meshes/default/secrets/s1");
    let secret = Some(("application/yaml", secret.as_str()));
    let (status, body) = call(&remote, Method::PUT, &s1, Some(&generated), secret).await?;
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
    let never_shown = [SECRET_DATA, generated.as_str(), configured_token];
    check_refused(&remote, &base, &requests, None, &never_shown).await?;
    // Health stays open.
    check_health_open(&remote, &base).await?;
    // Either admin token opens everything, Secrets' data and tokens included.
    for token in [generated.as_str(), configured_token] {
        let (status, body) = call(&remote, Method::GET, &s1, Some(token), None).await?;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(SECRET_DATA), "{body}");
        let zone = Some(("application/json", r#"{"zone":"east"}"#));
        let (status, body) = call(
            &remote,
            Method::POST,
            &url("/tokens/zone"),
            Some(token),
            zone,
        )
        .await?;
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
    check_needs_token(&local, &format!("{local_base}/meshes"), &generated).await?;
    Ok(())
}

#[test]
fn an_exposed_api_without_a_token_file_refuses_to_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let raft = || -> anyhow::Result<Vec<(&'static str, String)>> {
        let port = free_port()?;
        Ok(vec![
            ("MOSAIC_RAFT__LISTEN", format!("127.0.0.1:{port}")),
            ("MOSAIC_RAFT__ADVERTISE", format!("127.0.0.1:{port}")),
        ])
    };
    let stderrs = check_exposed_api_refuses_to_start(binary(), dir.path(), raft, READY)?;
    for stderr in stderrs {
        // Nothing of the store was created: it stopped before raft.
        assert!(!stderr.contains("raft started"), "{stderr}");
    }
    Ok(())
}
