//! `mosaicctl validate --issue` against a real OpenBao set up as seed 000 says: the Mesh and its
//! token Secret in one file, a test certificate issued, and Vault's refusal quoted when it fails.

use std::process::Command;

use base64::Engine as _;
use mosaic_testkit::{OpenBao, SEED_MOUNT, SEED_ROLE};

fn mesh_file(dir: &std::path::Path, addr: &str, token: &str) -> std::path::PathBuf {
    let b64 = base64::engine::general_purpose::STANDARD.encode(token);
    let doc = format!(
        "type: Secret\nmesh: default\nname: token-1\ndata: {b64}\n---\ntype: Mesh\nname: default\nmtls:\n  enabledBackend: vault-1\n  backends:\n  - name: vault-1\n    type: vault\n    dpCert:\n      rotation:\n        expiration: 24h\n    conf:\n      fromCp:\n        address: {addr}\n        pki: {SEED_MOUNT}\n        role: {SEED_ROLE}\n        commonName: '{{{{ tag \"kuma.io/service\" }}}}.mesh'\n        auth:\n          token:\n            secret: token-1\n"
    );
    let path = dir.join("mesh.yaml");
    std::fs::write(&path, doc).expect("write mesh.yaml");
    path
}

fn validate(path: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mosaicctl"))
        .args(["validate", "--issue", "-f"])
        .arg(path)
        .output()
        .expect("run mosaicctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn validate_issue_proves_a_vault_backend() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    let token = bao.seed_policy_and_token().await?;
    let dir = tempfile::tempdir()?;

    let (code, out, err) = validate(&mesh_file(dir.path(), bao.addr(), &token));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Secret default/token-1: valid"), "{out}");
    assert!(out.contains("Mesh default: valid"), "{out}");
    assert!(
        out.contains("backend vault-1 (vault): test certificate issued: spiffe://default/mosaic-validation issuer \"CN="),
        "{out}"
    );
    assert!(!out.contains(&token) && !err.contains(&token));

    let (code, out, err) = validate(&mesh_file(dir.path(), bao.addr(), "s.wrong"));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("backend vault-1 (vault): FAILED") && out.contains("permission denied"),
        "{out}"
    );
    assert!(err.contains("did not validate"), "{err}");
    Ok(())
}
