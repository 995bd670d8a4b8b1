//! Command-line behaviour of the `mosaic-zone` binary: flags, exit codes, config errors.

use std::process::Command;

use mosaic_testkit::cli;

const BIN: &str = env!("CARGO_BIN_EXE_mosaic-zone");

mosaic_testkit::control_plane_cli_tests!(BIN, "mosaic-zone");

#[test]
fn unknown_key_exits_1_naming_it() {
    // `raft` belongs to the global's configuration, not the zone's.
    let text = "zone = \"east\"\n[raft]\nnode_id = 1\n";
    cli::assert_config_refused(BIN, "zone.toml", text, &["`raft`", "zone.toml"]);
}

#[test]
fn bad_zone_name_exits_1() {
    let env = [("MOSAIC_ZONE", "East_1")];
    cli::assert_env_refused(BIN, &env, &["MOSAIC_ZONE", "DNS-1035"]);
}

/// The configuration is logged before the refusal, which names the missing key.
#[test]
fn tls_address_without_ca_cert_exits_1_naming_the_key() {
    let env = [
        ("MOSAIC_ZONE", "east"),
        ("MOSAIC_GLOBAL__ADDRESS", "grpcs://global.example:5685"),
    ];
    let names = [
        "effective configuration",
        "east",
        "error: ",
        "global.ca_cert",
    ];
    cli::assert_env_refused(BIN, &env, &names);
}

/// `GET path` on loopback; the status code and body, or `None` while nothing listens.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    cli::http_get(port, path, std::time::Duration::from_secs(10))
}

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn env_only_run_serves_from_its_store_while_the_global_is_away_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ports = mosaic_testkit::free_ports(3).unwrap();
    let (api, diag, global) = (ports[0], ports[1], ports[2]);
    // What an earlier run received from the global.
    {
        use mosaic_kds::assemble::Assembled;
        use mosaic_zone::{kds::receive, store::ZoneStore};
        let store = ZoneStore::open(&dir.path().join("data")).unwrap();
        let mesh = mosaic_proto::kds::Resource {
            r#type: "Mesh".into(),
            mesh: String::new(),
            name: "default".into(),
            version: 42,
            json: br#"{"type":"Mesh","name":"default"}"#.to_vec(),
        };
        let response = Assembled {
            type_url: "Mesh".into(),
            nonce: "n".into(),
            authoritative: true,
            resources: vec![mesh],
            ..Assembled::default()
        };
        let kind = mosaic_core::resource::ResourceType::Mesh.into();
        let plan = receive::plan(&store, kind, &response, None).unwrap();
        store.apply_sync(&plan.batch).unwrap();
    }
    let child = cli::command(BIN, dir.path())
        .env("MOSAIC_ZONE", "east")
        .env(
            "MOSAIC_GLOBAL__ADDRESS",
            format!("grpc://127.0.0.1:{global}"),
        )
        .env("MOSAIC_STORE__DATA_DIR", dir.path().join("data"))
        .env("MOSAIC_API__LISTEN", format!("127.0.0.1:{api}"))
        .env("MOSAIC_DIAGNOSTICS__LISTEN", format!("127.0.0.1:{diag}"))
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let (code, body) = poll("diagnostics /ready", || http_get(diag, "/ready"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"connected\":false"), "{body}");
    let (code, body) = poll("the zone API", || http_get(api, "/"));
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"mode\":\"zone\"") && body.contains("\"zone\":\"east\""),
        "{body}"
    );
    let (code, body) = http_get(api, "/meshes/default").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"version\":42"), "{body}");
    let (_, metrics) = poll("the KDS gauge", || {
        http_get(diag, "/metrics").filter(|(_, m)| m.contains("mosaic_zone_kds_connected"))
    });
    assert!(metrics.contains("mosaic_zone_kds_connected 0"), "{metrics}");
    poll("a failed KDS attempt", || {
        http_get(diag, "/ready").filter(|(_, b)| b.contains("cannot connect"))
    });

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("SIGTERM received"), "{err}");
    assert!(err.contains("not encrypted"), "{err}");
    assert!(err.contains("KDS connection failed"), "{err}");
}
