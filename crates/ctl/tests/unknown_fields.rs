//! Unknown fields and mosaicctl: `validate` and `apply` ignore them as Kuma does, with one
//! `warning:` line on stderr per field (and `apply` sends the document without them); with
//! `--strict` they are refused and nothing is sent.

use std::{path::Path, time::Duration};

use mosaic_testkit::{GlobalCluster, cli, workspace_binary};
use serde_json::json;

/// kumactl's `app/kumactl/cmd/apply/testdata/golden/apply-mesh.input.yaml` (Kuma 2.14.3).
const KUMACTL_MESH: &str = "type: Mesh\nname: sample\nmtls:\n  ca:\n    builtin:\n";

const WARNING: &str = "warning: Mesh sample: unknown field mtls.ca ignored (Kuma ignores it too; use --strict to refuse it)\n";

fn ctl(args: &[&str], file: &Path) -> (i32, String, String) {
    let mut cmd = cli::command(env!("CARGO_BIN_EXE_mosaicctl"), Path::new("/"));
    cmd.env("XDG_CONFIG_HOME", "/nonexistent/mosaic-test-config")
        .args(args)
        .arg("-f")
        .arg(file);
    cli::output(&mut cmd).expect("run mosaicctl")
}

fn fixture(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("apply-mesh.input.yaml");
    std::fs::write(&file, KUMACTL_MESH).expect("write the fixture");
    file
}

#[test]
fn validate_warns_of_ignored_fields_and_strict_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let (code, out, err) = ctl(&["validate"], &file);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "Mesh sample: valid\n");
    assert_eq!(err, WARNING);

    let (code, out, err) = ctl(&["validate", "--strict"], &file);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("document 1: invalid\n  mtls.ca: unknown field `ca`"),
        "{out}"
    );
    assert!(!err.contains("warning"), "{err}");
    assert!(err.contains("did not validate"), "{err}");
}

#[test]
fn apply_strict_refuses_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    // The API address is unreachable: the run must fail on the document, not the connection.
    let (code, out, err) = ctl(&["apply", "--strict", "--api", "http://127.0.0.1:1"], &file);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with(
            "error: document 1 is invalid; nothing was applied\n  mtls.ca: unknown field `ca`"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn apply_sends_the_document_without_the_ignored_field() -> anyhow::Result<()> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start(0)?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    let file = fixture(cluster.dir());
    let api = cluster.api(0);
    let (code, out, err) = ctl(&["apply", "--api", &api], &file);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "Mesh sample created\n");
    assert_eq!(err, WARNING);
    let (status, stored) = cluster.get(0, "/meshes/sample").await?;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["mtls"], json!({}), "{stored}");
    cluster.stop(0)?;
    Ok(())
}
