//! A CA rotation under running data planes never breaks trust (the failure of consul#8681,
//! istio-csr#137, istio#22993). Real processes on loopback: OpenBao (`MOSAIC_BAO_BIN`), one
//! `mosaic-global`, one `mosaic-zone`, three `mosaic-dp` agents writing their files. OpenBao's
//! root is rotated (`pki/root/rotate/internal`, then the new issuer made the default with
//! `pki/config/issuers`, after which `{pki}/cert/ca_chain` answers only the new root) while the
//! agents' 20 s certificates keep rotating. Watching the files at every change they show, what a
//! user checks: every data plane's `ca.pem` verifies every other data plane's `cert.pem` at every
//! moment; in the end every certificate is signed by the new root, and the old root is still
//! trusted while a certificate it signed has not expired.
//!
//! `mosaic-global` and `mosaic-dp` are other crates' binaries, found next to this test executable
//! ([`workspace_binary`]): build them first (`cargo build --workspace --bins`).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use base64::Engine as _;
use mosaic_core::ca::identity::inspect_pem;
use mosaic_testkit::{
    AgentOptions, DataplaneAgent, GlobalCluster, OpenBao, SEED_MOUNT, SEED_POLICY_HCL,
    SEED_POLICY_NAME, SEED_ROLE, TokenSpec, ZoneProcess, dataplane_yaml,
    join::{joining_zone, wait_for_kds_ca},
    pem_blocks, verify_chain, workspace_binary,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(60);
const MESH: &str = "default";
const DATAPLANES: [&str; 3] = ["web-1", "web-2", "backend-1"];

/// Whether the bundle `ca_pem` holds the certificate `root`.
fn holds(ca_pem: &str, root: &str) -> bool {
    let norm = |p: &str| -> Vec<String> {
        pem_blocks(p)
            .iter()
            .map(|b| b.split_whitespace().collect())
            .collect()
    };
    let bundle = norm(ca_pem);
    norm(root).iter().all(|r| bundle.contains(r))
}

/// What the files of every agent said at one moment: each `cert.pem` read first, then each
/// `ca.pem` (bundles only grow while certificates of a root live, so a certificate read earlier
/// must verify against a bundle read later).
struct Moment {
    certs: Vec<String>,
    bundles: Vec<String>,
}

fn observe(agents: &[DataplaneAgent]) -> Option<Moment> {
    let certs = agents
        .iter()
        .map(|a| std::fs::read_to_string(a.cert_path()).ok())
        .collect::<Option<Vec<_>>>()?;
    let bundles = agents
        .iter()
        .map(|a| std::fs::read_to_string(a.ca_path()).ok())
        .collect::<Option<Vec<_>>>()?;
    Some(Moment { certs, bundles })
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[tokio::test]
async fn rotating_vaults_root_under_running_data_planes_never_breaks_trust() -> anyhow::Result<()> {
    // OpenBao as seed 000 sets it up (root layout), the seed's issue-only token.
    let bao = OpenBao::start().await?;
    let old_root = bao.setup_root_pki(SEED_MOUNT, MESH).await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    bao.write_policy(SEED_POLICY_NAME, SEED_POLICY_HCL).await?;
    let token = bao
        .create_token(&TokenSpec {
            orphan: true,
            ..TokenSpec::new(&[SEED_POLICY_NAME])
        })
        .await?;

    // One global, one zone, the Vault Mesh with 20 s certificates.
    let mut global = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    global.start_all()?;
    global.wait_ready(0, WAIT).await?;
    wait_for_kds_ca(&global, 0, WAIT).await?;
    let mut zone: ZoneProcess = joining_zone(
        Path::new(env!("CARGO_BIN_EXE_mosaic-zone")),
        &global,
        "east",
        "24h",
    )
    .await?;
    zone.start()?;
    zone.wait_ready(WAIT).await?;
    let put = |path: String, body: String| {
        let global = &global;
        async move {
            let (status, answer) = global.put(0, &path, &body).await?;
            anyhow::ensure!(
                status == 200 || status == 201,
                "PUT {path}: {status} {answer}"
            );
            anyhow::Ok(())
        }
    };
    put(
        format!("/meshes/{MESH}"),
        format!("type: Mesh\nname: {MESH}\n"),
    )
    .await?;
    let data = base64::engine::general_purpose::STANDARD.encode(&token);
    put(
        format!("/meshes/{MESH}/secrets/vault-token"),
        format!("data: {data}\n"),
    )
    .await?;
    let mesh = json!({"type": "Mesh", "name": MESH, "mtls": {
        "enabledBackend": "vault-1",
        "backends": [{"name": "vault-1", "type": "vault",
            "dpCert": {"rotation": {"expiration": "20s"}},
            "conf": {"fromCp": {
                "address": bao.addr(), "pki": SEED_MOUNT, "role": SEED_ROLE,
                "commonName": "{{ tag \"kuma.io/service\" }}.mesh",
                "auth": {"token": {"secret": "vault-token"}}}}}]
    }});
    put(format!("/meshes/{MESH}"), mesh.to_string()).await?;
    let (_, stored) = global.get(0, &format!("/meshes/{MESH}")).await?;
    zone.wait_for(
        &format!("/meshes/{MESH}"),
        "the Vault Mesh arrives",
        WAIT,
        |m| m["mtls"] == stored["mtls"],
    )
    .await?;

    // Three data planes with their files.
    let dp_binary = workspace_binary("mosaic-dp")?;
    let mut agents = Vec::new();
    for name in DATAPLANES {
        let service = name.split('-').next().unwrap_or(name);
        let (status, dp_token) = global
            .post(
                0,
                "/tokens/dataplane",
                &json!({"mesh": MESH, "name": name,
                        "tags": {"kuma.io/service": [service]}, "validFor": "24h"}),
            )
            .await?;
        anyhow::ensure!(
            status == 200,
            "dataplane token for {name}: {status} {dp_token}"
        );
        let opts = AgentOptions::new(
            &zone,
            MESH,
            name,
            dp_token.trim(),
            &dataplane_yaml(MESH, name, &[("kuma.io/service", service)]),
        );
        agents.push(DataplaneAgent::start(&dp_binary, global.dir(), &opts)?);
    }
    for agent in &mut agents {
        let files = agent
            .wait_for_files(WAIT)
            .await
            .map_err(|e| e.context(format!("zone log:\n{}", tail(&zone.log(), 40))))?;
        verify_chain(&files.cert, std::slice::from_ref(&old_root))?;
    }

    // The rotation: a new root, made the default issuer (the role follows issuer_ref=default).
    let rotated = bao
        .client()
        .write(
            &format!("{SEED_MOUNT}/root/rotate/internal"),
            json!({"common_name": format!("Mosaic Mesh {MESH} (rotated)"),
                   "uri_sans": format!("spiffe://{MESH}"), "ttl": "87600h",
                   "issuer_name": "rotated"}),
        )
        .await?;
    let new_root = rotated["data"]["certificate"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no certificate in {rotated}"))?
        .to_string();
    let new_issuer = rotated["data"]["issuer_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no issuer_id in {rotated}"))?
        .to_string();
    bao.client()
        .write(
            &format!("{SEED_MOUNT}/config/issuers"),
            json!({"default": new_issuer}),
        )
        .await?;
    let chain: Value = bao
        .client()
        .read(&format!("{SEED_MOUNT}/cert/ca_chain"))
        .await?;
    let served = chain["data"]["ca_chain"].to_string() + &chain["data"]["certificate"].to_string();
    assert!(
        !served.contains(old_root.lines().nth(1).unwrap_or("-")),
        "Vault now publishes only the new root's chain: {chain}"
    );

    // Watch every change the files show until every certificate is signed by the new root.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last: Option<(Vec<String>, Vec<String>)> = None;
    let mut moments = 0usize;
    // The latest expiry of a certificate signed by the old root seen so far.
    let mut old_leaves_until: Option<OffsetDateTime> = None;
    loop {
        let context = || {
            let agents_logs: Vec<String> = agents
                .iter()
                .map(|a| format!("agent {}:\n{}", a.name, tail(&a.log(), 10)))
                .collect();
            format!(
                "zone log:\n{}\n{}",
                tail(&zone.log(), 60),
                agents_logs.join("\n")
            )
        };
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every data plane got a certificate of the new root in time\n{}",
            context()
        );
        let Some(now) = observe(&agents) else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let key = (now.certs.clone(), now.bundles.clone());
        if last.as_ref() == Some(&key) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        last = Some(key);
        moments += 1;
        let at = OffsetDateTime::now_utc();
        for (j, cert) in now.certs.iter().enumerate() {
            if verify_chain(cert, std::slice::from_ref(&old_root)).is_ok() {
                let not_after = inspect_pem(cert)?.not_after;
                old_leaves_until = old_leaves_until.max(Some(not_after));
            }
            for (i, bundle) in now.bundles.iter().enumerate() {
                if let Err(e) = verify_chain(cert, std::slice::from_ref(bundle)) {
                    anyhow::bail!(
                        "at moment {moments}, {}'s ca.pem does not verify {}'s cert.pem: {e}\n{}",
                        DATAPLANES[i],
                        DATAPLANES[j],
                        context()
                    );
                }
            }
        }
        if old_leaves_until.is_some_and(|until| until > at + time::Duration::seconds(1)) {
            for (i, bundle) in now.bundles.iter().enumerate() {
                anyhow::ensure!(
                    holds(bundle, &old_root),
                    "{}'s ca.pem dropped the old root while a certificate it signed is valid\n{}",
                    DATAPLANES[i],
                    context()
                );
            }
        }
        let all_new = now
            .certs
            .iter()
            .all(|c| verify_chain(c, std::slice::from_ref(&new_root)).is_ok());
        if all_new {
            for (i, bundle) in now.bundles.iter().enumerate() {
                assert!(holds(bundle, &new_root), "{}: {bundle}", DATAPLANES[i]);
                assert!(
                    holds(bundle, &old_root),
                    "{}'s ca.pem still holds the old root: certificates it signed were served moments ago",
                    DATAPLANES[i]
                );
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        moments >= 2,
        "the rotation was observed ({moments} moments)"
    );
    assert!(
        old_leaves_until.is_some(),
        "certificates of the old root were seen after the rotation"
    );
    // The zone noticed the new root before serving its first certificate, and said so.
    assert!(
        zone.log().contains("new CA root in the trust bundle"),
        "{}",
        tail(&zone.log(), 40)
    );
    Ok(())
}
