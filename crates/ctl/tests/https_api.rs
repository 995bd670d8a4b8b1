//! The HTTP API over TLS on `api.https_listen` (Kuma's 5682) of a real global and a real zone:
//! with the certificate each generated into its data dir (clients trust `api-server-ca.pem`), and
//! with a configured `api.tls_cert`/`api.tls_key`; mosaicctl talks to both with `--ca-cert-file`
//! (or `ca_cert_file` in ctl.toml) and says what to do without it.

use std::{path::Path, process::Command, time::Duration};

use mosaic_testkit::{GlobalCluster, TestCa, join, workspace_binary};

fn ctl(args: &[&str], config_home: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mosaicctl"))
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("MOSAIC_API")
        .env_remove("MOSAIC_TOKEN")
        .env_remove("MOSAIC_CA_CERT_FILE")
        .output()
        .expect("run mosaicctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `GET url` trusting only the CA(s) in `ca_pem`: the status and body.
async fn https_get(ca_pem: &[u8], url: &str) -> anyhow::Result<(u16, String)> {
    mosaic_testkit::ensure_crypto_provider();
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca_pem)?)
        .timeout(Duration::from_secs(10))
        .build()?;
    let resp = client.get(url).send().await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

// Multi-threaded: this test's HTTP/2 client connections keep running (and close) while a
// blocking stop waits for the server to drain them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_and_zone_serve_the_api_over_https_with_generated_and_configured_certificates()
-> anyhow::Result<()> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    let (status, _) = cluster
        .put(0, "/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    assert!(status == 200 || status == 201, "{status}");
    let none = cluster.dir().join("no-config");

    // The global, generated certificate: the same API on https, trusted through its CA file.
    let ca = std::fs::read(cluster.api_ca_path(0))?;
    let (status, body) = https_get(&ca, &format!("{}/meshes", cluster.https_url(0))).await?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"default\""), "{body}");
    let (status, _) = https_get(&ca, &format!("{}/", cluster.https_url(0))).await?;
    assert_eq!(status, 200);
    // Plain HTTP stays on api.listen.
    let (status, _) = cluster.get(0, "/meshes").await?;
    assert_eq!(status, 200);

    // mosaicctl over https with --ca-cert-file; the loopback admin rule holds as on http.
    let https = cluster.https_url(0);
    let ca_path = cluster.api_ca_path(0);
    let ca_arg = ca_path.to_str().unwrap();
    let (code, out, err) = ctl(
        &["--api", &https, "--ca-cert-file", ca_arg, "get", "meshes"],
        &none,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.lines().any(|l| l.starts_with("default ")), "{out}");
    let template = cluster.dir().join("over-https.yaml");
    std::fs::write(&template, "type: Mesh\nname: {{ n }}\n")?;
    let (code, out, err) = ctl(
        &[
            "--api",
            &https,
            "--ca-cert-file",
            ca_arg,
            "apply",
            "-f",
            template.to_str().unwrap(),
            "-v",
            "n=over-https",
        ],
        &none,
    );
    assert_eq!(code, 0, "{out}{err}");
    let (status, _) = cluster.get(0, "/meshes/over-https").await?;
    assert_eq!(status, 200);
    // Or from ctl.toml.
    let home = cluster.dir().join("config-home");
    std::fs::create_dir_all(home.join("mosaic"))?;
    std::fs::write(
        home.join("mosaic/ctl.toml"),
        format!("api = \"{https}\"\nca_cert_file = \"{ca_arg}\"\n"),
    )?;
    let (code, out, err) = ctl(&["get", "meshes", "over-https"], &home);
    assert_eq!(code, 0, "{out}{err}");
    // Without the CA: a TLS failure that says what to do.
    let (code, _, err) = ctl(&["--api", &https, "get", "meshes"], &none);
    assert_eq!(code, 1);
    assert!(err.contains("--ca-cert-file"), "{err}");

    // A zone of this global: its own generated HTTPS certificate.
    let mut zone =
        join::joining_zone(&workspace_binary("mosaic-zone")?, &cluster, "zone-1", "24h").await?;
    zone.start()?;
    zone.wait_ready(Duration::from_secs(60)).await?;
    let zone_ca = std::fs::read(zone.api_ca_path())?;
    let url = format!("{}/meshes/default", zone.https_url());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = https_get(&zone_ca, &url).await?;
        if status == 200 {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the zone never served the Mesh over HTTPS: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The zone's CA is not the global's.
    assert!(https_get(&ca, &url).await.is_err());
    let zone_ca_path = zone.api_ca_path();
    let (code, out, err) = ctl(
        &[
            "--api",
            &zone.https_url(),
            "--ca-cert-file",
            zone_ca_path.to_str().unwrap(),
            "get",
            "meshes",
        ],
        &none,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.lines().any(|l| l.starts_with("default ")), "{out}");
    zone.stop()?;

    // Configured certificates (api.tls_cert/api.tls_key) on both, from an operator's CA.
    let operator = TestCa::new("operator CA")?;
    let pair = operator.server_cert(&["127.0.0.1", "localhost"])?;
    let files = cluster.dir().join("operator");
    std::fs::create_dir_all(&files)?;
    let (cert, key, op_ca) = (
        files.join("api.pem"),
        files.join("api-key.pem"),
        files.join("ca.pem"),
    );
    std::fs::write(&cert, &pair.cert_pem)?;
    std::fs::write(&key, &pair.key_pem)?;
    std::fs::write(&op_ca, operator.cert_pem())?;
    let (c, k) = (cert.clone(), key.clone());
    cluster.edit_config(move |_, g| {
        g.api.tls_cert = Some(c.clone());
        g.api.tls_key = Some(k.clone());
    });
    cluster.stop(0)?;
    cluster.start(0)?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    let op_pem = operator.cert_pem().as_bytes().to_vec();
    let (status, body) = https_get(&op_pem, &format!("{}/meshes", cluster.https_url(0))).await?;
    assert_eq!(status, 200, "{body}");
    assert!(
        https_get(&ca, &format!("{}/meshes", cluster.https_url(0)))
            .await
            .is_err(),
        "the generated certificate is no longer served"
    );
    let (code, out, err) = ctl(
        &[
            "--api",
            &https,
            "--ca-cert-file",
            op_ca.to_str().unwrap(),
            "get",
            "meshes",
        ],
        &none,
    );
    assert_eq!(code, 0, "{out}{err}");

    let (c, k) = (cert.clone(), key.clone());
    zone.edit_config(move |z| {
        z.api.tls_cert = Some(c.clone());
        z.api.tls_key = Some(k.clone());
    });
    zone.start()?;
    zone.wait_ready(Duration::from_secs(60)).await?;
    let (status, body) = https_get(&op_pem, &format!("{}/meshes", zone.https_url())).await?;
    assert_eq!(status, 200, "{body}");
    zone.stop()?;
    Ok(())
}
