//! mosaicctl beside a global: with no token given, it uses the token the global generated into
//! `./mosaic-data/global/admin-token` (the default data dir, relative to where both run), but
//! only for an API on a loopback address; it never sends that token anywhere else.

use std::{
    io::{Read as _, Write as _},
    net::{IpAddr, SocketAddr, TcpListener},
    path::Path,
    process::Command,
    time::Duration,
};

use mosaic_testkit::{GlobalCluster, non_loopback_local_ip, workspace_binary};

const READY: Duration = Duration::from_secs(60);

/// mosaicctl in `cwd`, with no token from flags, the environment or a config file.
fn ctl(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaicctl"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MOSAIC_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .args(args)
        .current_dir(cwd)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .expect("run mosaicctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A one-shot HTTP server on `ip` answering 401 and handing back the request's head.
fn capture_one(ip: IpAddr) -> (SocketAddr, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind((ip, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(20))).ok();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).map(|n| n == 1).unwrap_or(false)
        {
            head.push(byte[0]);
        }
        let body = r#"{"type":"/std-errors","status":401,"title":"Unauthorized","detail":"no"}"#;
        let _ = write!(
            conn,
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        String::from_utf8_lossy(&head).into_owned()
    });
    (addr, handle)
}

#[tokio::test]
async fn mosaicctl_uses_the_generated_token_beside_a_global_and_only_on_loopback()
-> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("mosaic-data/global");
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    let port = cluster.replicas[0].api;
    cluster.set_env("MOSAIC_STORE__DATA_DIR", data_dir.display().to_string());
    // Loopback callers are no admins here: only a token gets in.
    cluster.set_env("MOSAIC_API__LOCALHOST_IS_ADMIN", "false");
    cluster.start(0)?;
    cluster.wait_ready(0, READY).await?;
    let generated = std::fs::read_to_string(data_dir.join("admin-token"))?
        .trim()
        .to_string();
    let api = format!("http://127.0.0.1:{port}");

    // Beside the data dir: found and used.
    let (code, out, err) = ctl(work.path(), &["--api", &api, "get", "meshes"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = ctl(work.path(), &["--api", &api, "config-view"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "api: {api}\ntoken: set (found ./mosaic-data/global/admin-token, sent because the API is on a loopback address)\n"
        )
    );
    assert!(!out.contains(&generated));

    // Elsewhere: no token, and the server says what to send.
    let elsewhere = tempfile::tempdir()?;
    let (code, _, err) = ctl(elsewhere.path(), &["--api", &api, "get", "meshes"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("needs the admin token"), "{err}");
    // MOSAIC_ADMIN_TOKEN_FILE names it from anywhere.
    let out = Command::new(env!("CARGO_BIN_EXE_mosaicctl"))
        .args(["--api", &api, "get", "meshes"])
        .current_dir(elsewhere.path())
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env_remove("MOSAIC_TOKEN")
        .env("MOSAIC_ADMIN_TOKEN_FILE", data_dir.join("admin-token"))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A non-loopback API never gets the found token.
    let (code, out, _) = ctl(
        work.path(),
        &["--api", "http://10.255.255.1:5681", "config-view"],
    );
    assert_eq!(code, 0);
    assert!(
        out.ends_with(
            "token: not set (./mosaic-data/global/admin-token exists but is only sent to an API on a loopback address)\n"
        ),
        "{out}"
    );
    match non_loopback_local_ip() {
        Some(ip) => {
            // What actually goes over the wire to a non-loopback address: no Authorization.
            let (addr, head) = capture_one(ip);
            let url = format!("http://{addr}");
            let (code, _, err) = ctl(work.path(), &["--api", &url, "get", "meshes"]);
            assert_eq!(code, 1, "{err}");
            let head = head.join().expect("capture");
            assert!(head.starts_with("GET /meshes"), "{head}");
            assert!(
                !head.to_ascii_lowercase().contains("authorization"),
                "a token was sent to {url}: {head}"
            );
            assert!(!head.contains(&generated));
        }
        None => eprintln!(
            "this machine has no non-loopback address: only the resolution (config-view) is checked"
        ),
    }
    Ok(())
}
