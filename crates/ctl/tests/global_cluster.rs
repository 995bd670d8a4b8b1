//! mosaicctl against a real 3-replica mosaic-global: `apply -f` of the seed-000 Universal Mesh
//! (address and token filled in, OpenBao set up as the seed says) and `get meshes` from every
//! replica; then get/delete/inspect/generate.

mod support;

use support::ctl;

use std::{path::Path, time::Duration};

use base64::Engine as _;
use mosaic_testkit::{GlobalCluster, OpenBao, SEED_MOUNT, SEED_ROLE, workspace_binary};

fn seed_000_mesh(addr: &str, token: &str) -> String {
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
        expiration: 24h # must be lower than max_ttl in Vault role
    conf:
      fromCp:
        address: {addr}
        agentAddress: "" # optional
        namespace: "" # optional
        pki: {SEED_MOUNT} # name of the configured PKI
        role: {SEED_ROLE} # name of the role that will be used to generate data plane proxy certificates
        commonName: '{{{{ tag "kuma.io/service" }}}}.mesh' # optional
        tls:
          skipVerify: false
          serverName: ""
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
async fn apply_the_seed_mesh_to_three_replicas_and_read_it_from_each() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    let token = bao.seed_policy_and_token().await?;

    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 3, 10_000)?;
    cluster.start_all()?;
    for i in 0..3 {
        cluster.wait_ready(i, Duration::from_secs(60)).await?;
    }
    let file = cluster.dir().join("mesh.yaml");
    std::fs::write(&file, seed_000_mesh(bao.addr(), &token))?;
    let file = file.to_string_lossy().into_owned();

    // Applied through a follower or the leader alike. A Secret needs its Mesh and the Mesh's
    // vault backend needs the Secret: the new Mesh is created without mtls first (said so), then
    // the Secret, then the whole Mesh (admitted after a test issuance with that token).
    let (code, out, err) = ctl(&cluster.api(1), &["apply", "-f", &file]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("Mesh default created without mtls"),
        "{out}"
    );
    assert_eq!(
        lines[1..],
        ["Secret default/token-1 created", "Mesh default created"],
        "{out}"
    );
    // Applied again, the Mesh exists: its mtls is never taken away, the Secret comes first.
    let (code, out, err) = ctl(&cluster.api(0), &["apply", "-f", &file]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["Secret default/token-1 updated", "Mesh default updated"],
        "{out}"
    );
    for i in 0..3 {
        let (code, out, err) = ctl(&cluster.api(i), &["get", "meshes"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("default") && out.contains("vault/vault-1"),
            "replica {}: {out}",
            i + 1
        );
    }
    let (code, out, _) = ctl(&cluster.api(2), &["get", "meshes", "default", "-o", "json"]);
    assert_eq!(code, 0);
    let mesh: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(
        mesh["mtls"]["backends"][0]["conf"]["fromCp"]["pki"],
        SEED_MOUNT
    );
    assert!(
        !out.contains(&token),
        "the Mesh names the secret, never the token"
    );

    // A wrong token is refused with Vault's words and field path; nothing changes.
    let bad = cluster.dir().join("bad.yaml");
    std::fs::write(
        &bad,
        seed_000_mesh(bao.addr(), "s.wrong").replace("token-1", "token-2"),
    )?;
    let (code, out, err) = ctl(&cluster.api(0), &["apply", "-f", &bad.to_string_lossy()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("mtls.backends[0]") && err.contains("permission denied"),
        "{err}"
    );

    // Secrets in use cannot go; the Mesh can.
    let (code, _, err) = ctl(
        &cluster.api(0),
        &["delete", "secret", "token-1", "--mesh", "default"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("used by Mesh \"default\""), "{err}");
    let (code, out, err) = ctl(
        &cluster.api(0),
        &[
            "generate",
            "zone-token",
            "--zone",
            "east",
            "--valid-for",
            "720h",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim().split('.').count(), 3, "a JWT: {out}");
    let (code, out, err) = ctl(&cluster.api(0), &["delete", "mesh", "default"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = ctl(&cluster.api(2), &["get", "meshes"]);
    assert_eq!(code, 0);
    assert!(!out.contains("default"), "{out}");
    let _ = Path::new(&file);
    Ok(())
}
