//! Command-line behaviour of the `mosaic-global` binary: flags, exit codes, config errors.

use std::{fs, process::Command};

use mosaic_testkit::cli;

const BIN: &str = env!("CARGO_BIN_EXE_mosaic-global");

mosaic_testkit::control_plane_cli_tests!(BIN, "mosaic-global");

#[test]
fn unknown_key_exits_1_naming_it() {
    let text = "[kds]\nlisten = \"0.0.0.0:5685\"\nlisen = \"x\"\n";
    cli::assert_config_refused(BIN, "global.toml", text, &["kds.lisen", "global.toml"]);
}

#[test]
fn bad_env_exits_1_naming_the_variable() {
    let peers = ("MOSAIC_RAFT__PEERS", "1=10.0.0.1:5682,oops");
    cli::assert_env_refused(BIN, &[peers], &["MOSAIC_RAFT__PEERS", "oops"]);
}

/// `GET path` on loopback; the status code, or `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    cli::http_get(port, path, std::time::Duration::from_secs(5)).map(|(code, _)| code)
}

#[test]
fn run_logs_the_config_serves_until_sigterm_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let ports = mosaic_testkit::free_ports(4).unwrap();
    let (raft, api, diag, kds) = (ports[0], ports[1], ports[2], ports[3]);
    let loopback = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut config = mosaic_global::config::GlobalConfig::default();
    config.raft.listen = loopback(raft);
    config.raft.advertise = loopback(raft).to_string();
    config.api.listen = loopback(api);
    config.diagnostics.listen = loopback(diag);
    fs::write(
        dir.path().join("global.toml"),
        toml::to_string(&config).unwrap(),
    )
    .unwrap();
    let child = cli::command(BIN, dir.path())
        .env("MOSAIC_KDS__LISTEN", format!("127.0.0.1:{kds}"))
        .args(["--log-format", "json", "run", "--config", "global.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http_status(diag, "/ready") != Some(200) {
        assert!(std::time::Instant::now() < deadline, "never became ready");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(http_status(api, "/"), Some(200));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let first: serde_json::Value = serde_json::from_str(err.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["fields"]["message"], "effective configuration",
        "{err}"
    );
    assert!(err.contains(&format!("127.0.0.1:{kds}")), "{err}");
    assert!(err.contains("SIGTERM received"), "{err}");
    assert!(
        dir.path().join("mosaic-data/global").exists(),
        "the default data dir is used"
    );
}

/// The contract: `mosaic-global run` with no config at all starts a working single node in
/// `./mosaic-data/global` on Kuma's default ports (5681 API, 5682 HTTPS API with a generated
/// certificate, 5680 diagnostics) and raft on 5689. Then an older config with an explicit
/// `raft.listen` on 5682 still starts: raft keeps 5682 and the HTTPS API's default yields (said
/// in the log). (One test: both use the fixed ports.)
#[test]
fn run_without_config_is_the_embedded_single_node_default() {
    let dir = tempfile::tempdir().unwrap();
    let child = cli::command(BIN, dir.path())
        .args(["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(5680);
    assert_eq!(http_status(5681, "/meshes"), Some(200));
    assert!(dir.path().join("mosaic-data/global/raft").exists());
    // Raft on its new default port; the HTTPS API on Kuma's 5682, trusted through the CA the
    // global generated into its data dir.
    assert!(std::net::TcpStream::connect(("127.0.0.1", 5689)).is_ok());
    let ca = dir.path().join("mosaic-data/global/api-server-ca.pem");
    assert_eq!(
        https_status(&ca, "https://127.0.0.1:5682/meshes"),
        Ok(200),
        "{}",
        ca.display()
    );
    assert_eq!(https_status(&ca, "https://localhost:5682/"), Ok(200));
    let err = stop(child);
    assert!(!err.contains("HTTPS API is not served"), "{err}");

    // An older config: raft.listen on 5682, the HTTPS API's default address.
    let old = tempfile::tempdir().unwrap();
    fs::write(
        old.path().join("global.toml"),
        "[raft]\nlisten = \"127.0.0.1:5682\"\nadvertise = \"127.0.0.1:5682\"\n",
    )
    .unwrap();
    let child = cli::command(BIN, old.path())
        .args(["run", "--config", "global.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(5680);
    assert_eq!(http_status(5681, "/meshes"), Some(200));
    assert!(std::net::TcpStream::connect(("127.0.0.1", 5682)).is_ok());
    assert!(
        !old.path()
            .join("mosaic-data/global/api-server-ca.pem")
            .exists(),
        "no HTTPS API, no certificate"
    );
    let err = stop(child);
    assert!(
        err.contains("HTTPS API is not served") && err.contains("raft.listen"),
        "{err}"
    );
}

fn wait_ready(diag: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http_status(diag, "/ready") != Some(200) {
        assert!(
            std::time::Instant::now() < deadline,
            "never became ready on {diag}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// SIGTERM, then the exit code must be 0; returns stderr.
fn stop(child: std::process::Child) -> String {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    err
}

/// The status of `GET url` over HTTPS, trusting only the CA in `ca`.
fn https_status(ca: &std::path::Path, url: &str) -> Result<u16, String> {
    mosaic_runtime::tls::install_crypto_provider();
    let pem = fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .tls_certs_only(certs)
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client.get(url).send().await.map_err(|e| format!("{e:?}"))?;
        Ok(resp.status().as_u16())
    })
}
