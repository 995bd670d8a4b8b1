//! `mosaicctl apply` prints the notes a real `mosaic-global` admits a Mesh with (its `Warning`
//! headers) as `warning:` lines on stderr and still succeeds: here a Vault role (real OpenBao)
//! storing every certificate it issues (`no_store=false`); none once the role has
//! `no_store=true`.

mod support;

use support::ctl;

use std::time::Duration;

use base64::Engine as _;
use mosaic_testkit::{
    GlobalCluster, OpenBao, PkiVerb, SEED_MOUNT, SEED_ROLE, TokenSpec, pki_policy, workspace_binary,
};
use serde_json::json;

fn mesh_file(addr: &str, token: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(token);
    format!(
        r#"type: Mesh
name: default
mtls:
  enabledBackend: vault-1
  backends:
  - name: vault-1
    type: vault
    dpCert:
      rotation:
        expiration: 24h
    conf:
      fromCp:
        address: {addr}
        pki: {SEED_MOUNT}
        role: {SEED_ROLE}
        commonName: '{{{{ tag "kuma.io/service" }}}}.mesh'
        auth:
          token:
            secret: token-1
---
type: Secret
mesh: default
name: token-1
data: {b64}
"#
    )
}

#[tokio::test]
async fn apply_prints_the_no_store_warning_and_succeeds() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_role(SEED_MOUNT, SEED_ROLE, "default", json!({"no_store": false}))
        .await?;
    let policy = format!(
        "{}\npath \"{SEED_MOUNT}/roles/{SEED_ROLE}\" {{\n  capabilities = [\"read\"]\n}}\n",
        pki_policy(SEED_MOUNT, SEED_ROLE, &[PkiVerb::Issue])
    );
    bao.write_policy("issue-and-read-role", &policy).await?;
    let token = bao
        .create_token(&TokenSpec::new(&["issue-and-read-role"]))
        .await?;

    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    let file = cluster.dir().join("mesh.yaml");
    std::fs::write(&file, mesh_file(bao.addr(), &token))?;
    let file = file.to_string_lossy().into_owned();

    let (code, out, err) = ctl(&cluster.api(0), &["apply", "-f", &file]);
    assert_eq!(code, 0, "a warning never refuses: {out}{err}");
    assert!(out.contains("Mesh default created"), "{out}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    for want in [
        "warning: Mesh default: mtls.backends[0]: backend \"vault-1\": ",
        &format!("role \"{SEED_ROLE}\" of {SEED_MOUNT} has no_store=false"),
        "Vault stores every certificate issued",
        "50k-100k stored certificates become a problem",
        "500k in a day",
        &format!("vault write {SEED_MOUNT}/roles/{SEED_ROLE} no_store=true"),
    ] {
        assert!(warnings[0].contains(want), "{want:?} missing from {err}");
    }
    assert!(!err.contains(&token), "the token leaked: {err}");

    // The role fixed as the warning says: applied again, nothing to warn about.
    bao.create_role(SEED_MOUNT, SEED_ROLE, "default", json!({"no_store": true}))
        .await?;
    let (code, out, err) = ctl(&cluster.api(0), &["apply", "-f", &file]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Mesh default updated"), "{out}");
    assert!(!err.contains("warning:"), "{err}");
    Ok(())
}
