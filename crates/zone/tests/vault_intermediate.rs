//! Vault as each zone's intermediate CA (seed 004, `mode: intermediate`) with real processes: one
//! global, zones `east` and `west`, `mosaic-dp` agents, and a real OpenBao set up as seed 004
//! writes it (openssl root loaded with `pki/config/ca`, `pki_int`, policy `gen-int-ca-istio`,
//! Kubernetes auth role `gen-int-ca-istio`), once with the seed's `csrPath` (Vault makes the key)
//! and once with zone-made keys.
//!
//! What a user checks: the global admits the Mesh by signing a test intermediate; each zone signs
//! its data planes' certificates with its own intermediate (CA, path length 0, named after mesh
//! and zone), which verify to the seed's root; OpenBao's audit log shows one intermediate per zone
//! and no per-certificate issue or sign call; the zone's data dir holds no copy of the
//! intermediate's key (searched for by its public key and, when Vault made it, by its bytes);
//! Vault's copies of the keys it made are gone; a restarted zone serves its cached certificates
//! with zero Vault calls; with OpenBao killed, a new data plane still gets a certificate; the
//! zone reports the intermediate (expiry, outage budget) in its CA health and metrics.

use std::{path::Path, time::Duration};

use mosaic_testkit::{
    AgentOptions, DataplaneAgent, FakeKubernetesApi, GlobalCluster, OpenBao, SEED004_CA_PATH,
    SEED004_CSR_PATH, SEED004_ROLE, SEED004_SA_NAMESPACE, SEED004_SERVICE_ACCOUNT, ZoneProcess,
    dataplane_yaml,
    join::{joining_zone, wait_for_kds_ca},
    keyscan, verify_chain, workspace_binary,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
const MESH: &str = "default";

fn mesh_yaml(addr: &str, token_file: &Path, csr_path: Option<&str>) -> String {
    let csr = csr_path
        .map(|p| format!("          csrPath: {p}\n"))
        .unwrap_or_default();
    format!(
        "type: Mesh\nname: {MESH}\nmtls:\n  enabledBackend: vault-1\n  backends:\n  - name: vault-1\n    type: vault\n    dpCert:\n      rotation:\n        expiration: 24h\n    conf:\n      fromCp:\n        address: {addr}\n        mode: intermediate\n        pki: pki\n        intermediate:\n          caPath: {SEED004_CA_PATH}\n{csr}          ttl: 720h\n        auth:\n          kubernetes:\n            role: {SEED004_ROLE}\n            serviceAccountTokenFile: {}\n",
        token_file.display()
    )
}

/// Requests in the audit log whose path is `path` or, with `prefix`, starts with it.
fn audit_requests(bao: &OpenBao, path: &str, prefix: bool) -> anyhow::Result<Vec<Value>> {
    Ok(bao
        .audit_entries()?
        .into_iter()
        .filter(|e| e["type"] == "request")
        .filter(|e| {
            let p = e["request"]["path"].as_str().unwrap_or_default();
            if prefix {
                p.starts_with(path)
            } else {
                p == path
            }
        })
        .collect())
}

fn pems(bundle: &str) -> Vec<String> {
    mosaic_core::ca::identity::split_pem(bundle).unwrap_or_default()
}

async fn dp_token(cluster: &GlobalCluster, name: &str) -> anyhow::Result<String> {
    let (status, token) = cluster
        .post(
            0,
            "/tokens/dataplane",
            &json!({"mesh": MESH, "name": name, "tags": {"kuma.io/service": ["web"]}, "validFor": "1h"}),
        )
        .await?;
    anyhow::ensure!(status == 200, "dataplane token: {status} {token}");
    Ok(token.trim().to_string())
}

async fn start_dp(
    cluster: &GlobalCluster,
    zone: &ZoneProcess,
    name: &str,
) -> anyhow::Result<DataplaneAgent> {
    let token = dp_token(cluster, name).await?;
    let options = AgentOptions::new(
        zone,
        MESH,
        name,
        &token,
        &dataplane_yaml(MESH, name, &[("kuma.io/service", "web")]),
    );
    let mut agent =
        DataplaneAgent::start(&workspace_binary("mosaic-dp")?, cluster.dir(), &options)?;
    agent.wait_for_files(WAIT).await?;
    Ok(agent)
}

async fn zone(cluster: &GlobalCluster, name: &str) -> anyhow::Result<ZoneProcess> {
    let mut z = joining_zone(
        Path::new(env!("CARGO_BIN_EXE_mosaic-zone")),
        cluster,
        name,
        "24h",
    )
    .await?;
    z.start()?;
    z.wait_ready(WAIT).await?;
    z.wait_for("/meshes/default", "the Mesh arrives", WAIT, |m| {
        m["mtls"]["enabledBackend"] == "vault-1"
    })
    .await?;
    Ok(z)
}

/// The intermediate of an agent's `cert.pem` (leaf, then intermediate), checked for what the
/// contract says it is: a CA with path length 0 naming mesh and zone, URI SAN `spiffe://<mesh>`.
fn intermediate_of(cert_pem: &str, zone: &str) -> anyhow::Result<String> {
    let chain = pems(cert_pem);
    anyhow::ensure!(
        chain.len() == 2,
        "leaf + intermediate, got {} certificates",
        chain.len()
    );
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain[1].as_bytes())?;
    let cert = pem.parse_x509()?;
    let bc = cert
        .basic_constraints()?
        .ok_or_else(|| anyhow::anyhow!("the intermediate has no basicConstraints"))?
        .value;
    assert!(bc.ca, "the intermediate is a CA");
    assert_eq!(bc.path_len_constraint, Some(0), "path length 0");
    let subject = cert.subject().to_string();
    assert!(
        subject.contains(MESH) && subject.contains(zone),
        "its name says mesh and zone: {subject}"
    );
    let sans = mosaic_core::ca::identity::inspect_pem(&chain[1])?.uri_sans;
    assert_eq!(sans, ["spiffe://default"]);
    Ok(chain[1].clone())
}

async fn seed_004_two_zones(csr_path: Option<&str>) -> anyhow::Result<()> {
    mosaic_testkit::ensure_crypto_provider();
    let mut bao = OpenBao::start_with_raw_audit().await?;
    let kube = FakeKubernetesApi::start(SEED004_SA_NAMESPACE, SEED004_SERVICE_ACCOUNT).await?;
    let work = tempfile::tempdir()?;
    let seed = bao.setup_seed004(work.path(), &kube.addr()).await?;
    let token_file = work.path().join("sa-token");
    std::fs::write(&token_file, kube.jwt())?;

    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, WAIT).await?;
    wait_for_kds_ca(&cluster, 0, WAIT).await?;

    // Admission signs a short-lived test intermediate (and verifies a test leaf to the root).
    let (status, body) = cluster
        .put(
            0,
            "/meshes/default",
            &mesh_yaml(bao.addr(), &token_file, csr_path),
        )
        .await?;
    anyhow::ensure!(status == 201, "PUT mesh: {status} {body}");
    assert_eq!(audit_requests(&bao, SEED004_CA_PATH, false)?.len(), 1);

    // Keys in pki_int before the zones start: one east made for an intermediate that has expired
    // (left by a crash between making and deleting it), one still in use by another replica of
    // east (its expiry ahead), and an operator's own. Only the first may go.
    if csr_path.is_some() {
        for name in [
            "mosaic_default_east_1000",
            "mosaic_default_east_99999999999",
            "operator-key",
        ] {
            bao.write(
                "pki_int/keys/generate/internal",
                json!({"key_name": name, "key_type": "ec", "key_bits": 256}),
            )
            .await?;
        }
    }
    let east = zone(&cluster, "east").await?;
    let west = zone(&cluster, "west").await?;
    let east_1 = start_dp(&cluster, &east, "web-1").await?;
    let west_1 = start_dp(&cluster, &west, "web-2").await?;
    let east_2 = start_dp(&cluster, &east, "web-3").await?;
    let east_3 = start_dp(&cluster, &east, "web-4").await?;

    let mut intermediates = Vec::new();
    for (agent, zone) in [
        (&east_1, "east"),
        (&west_1, "west"),
        (&east_2, "east"),
        (&east_3, "east"),
    ] {
        let files = agent.files().ok_or_else(|| anyhow::anyhow!("no files"))?;
        verify_chain(&files.cert, std::slice::from_ref(&seed.root_pem))?;
        assert!(
            pems(&files.ca)
                .iter()
                .any(|p| p.trim() == seed.root_pem.trim()),
            "{zone}: the trust bundle holds the seed's root"
        );
        intermediates.push(intermediate_of(&files.cert, zone)?);
    }
    // One intermediate per zone: east's three data planes share one, west has its own.
    assert_eq!(intermediates[0], intermediates[2]);
    assert_eq!(intermediates[0], intermediates[3]);
    assert_ne!(intermediates[0], intermediates[1]);

    // Vault: one intermediate per zone (+ admission's), no per-certificate call.
    assert_eq!(audit_requests(&bao, SEED004_CA_PATH, false)?.len(), 3);
    for path in [
        "pki/issue/",
        "pki/sign/",
        "pki_int/issue/",
        "pki_int/sign/",
        "pki/sign-verbatim",
    ] {
        assert!(
            audit_requests(&bao, path, true)?.is_empty(),
            "no request to {path}*"
        );
    }

    // The intermediates' keys: never on the zone's disk; Vault's copies (csrPath) deleted.
    let mut vault_keys = Vec::new();
    if let Some(csr) = csr_path {
        assert_eq!(audit_requests(&bao, csr, false)?.len(), 3);
        for e in bao.audit_entries()? {
            if e["type"] == "response"
                && e["request"]["path"] == csr
                && let Some(k) = e["response"]["data"]["private_key"].as_str()
            {
                vault_keys.push(k.to_string());
            }
        }
        assert_eq!(
            vault_keys.len(),
            3,
            "the raw audit log shows each key Vault made"
        );
        assert_eq!(
            audit_requests(&bao, "pki_int/key/", true)?.len(),
            4,
            "each deleted at once, and the expired leftover swept"
        );
        let left = bao
            .api("LIST", "pki_int/keys", None)
            .await
            .unwrap_or(Value::Null);
        let mut names: Vec<String> = left["data"]["key_info"]
            .as_object()
            .map(|o| {
                o.values()
                    .filter_map(|k| k["key_name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        assert!(
            names == ["mosaic_default_east_99999999999", "operator-key"],
            "only the operator's key and the one still in use are left in pki_int: {names:?}"
        );
    }
    for (z, intermediate) in [(&east, &intermediates[0]), (&west, &intermediates[1])] {
        let public = keyscan::cert_public_key(intermediate)?;
        let on_disk = keyscan::private_keys_under(z.dir())?;
        assert!(
            !on_disk.is_empty(),
            "{}: the scan finds the cached leaf keys, so it would find the intermediate's",
            z.name
        );
        let copies: Vec<_> = on_disk.iter().filter(|k| k.public_key == public).collect();
        assert!(
            copies.is_empty(),
            "{}: the intermediate's key is on disk: {copies:?}",
            z.name
        );
        for key in &vault_keys {
            let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &body)?;
            for needle in [
                body.as_bytes(),
                der.as_slice(),
                key.lines().nth(1).unwrap_or("x").as_bytes(),
            ] {
                let hits = keyscan::files_containing(z.dir(), needle)?;
                assert!(
                    hits.is_empty(),
                    "{}: a Vault-made key's bytes in {hits:?}",
                    z.name
                );
            }
        }
    }

    // CA health on the global and the zone's metrics show the intermediate and its budget.
    let start = std::time::Instant::now();
    loop {
        let (_, overview) = cluster.get(0, "/zones/_overview").await?;
        let with_intermediate = overview["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|z| {
                        z["caHealth"].as_array().is_some_and(|h| {
                            h.iter().any(|b| {
                                b["intermediate"]["expiry"].is_string()
                                    && b["intermediate"]["signsUntil"].is_string()
                            })
                        })
                    })
                    .count()
            })
            .unwrap_or(0);
        if with_intermediate == 2 {
            break;
        }
        anyhow::ensure!(start.elapsed() < WAIT, "overview: {overview}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let metrics = reqwest::get(format!("{}/metrics", east.diag_url()))
        .await?
        .text()
        .await?;
    let budget = metrics
        .lines()
        .find(|l| l.starts_with("mosaic_vault_intermediate_outage_budget_seconds{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no outage budget series:\n{metrics}"))?;
    // 720h intermediate, 24h certificates: about 696h of signing left without Vault.
    assert!(
        (695.0 * 3600.0..=696.0 * 3600.0).contains(&budget),
        "budget {budget}"
    );

    // A restarted zone serves its cached certificates with zero Vault calls.
    let mut east = east;
    let before = bao.audit_entries()?.len();
    let cert_before = east_1.files().map(|f| f.cert).unwrap_or_default();
    let pushed = |z: &ZoneProcess| {
        z.log()
            .lines()
            .filter(|l| l.contains("dataplane=web-1}") && l.contains("secrets pushed"))
            .count()
    };
    let pushes = pushed(&east);
    east.kill();
    east.start()?;
    east.wait_ready(WAIT).await?;
    let start = std::time::Instant::now();
    while pushed(&east) <= pushes {
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "the restarted zone did not serve web-1; log:\n{}",
            east.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        east_1.files().map(|f| f.cert).unwrap_or_default(),
        cert_before,
        "web-1 keeps its certificate"
    );
    let after: Vec<String> = bao.audit_entries()?[before..]
        .iter()
        .filter(|e| e["type"] == "request")
        .map(|e| format!("{} {}", e["request"]["operation"], e["request"]["path"]))
        .collect();
    assert!(
        after.is_empty(),
        "no Vault call after the restart: {after:?}"
    );

    // With OpenBao gone, a new data plane still gets a certificate from west's intermediate.
    bao.stop();
    let west_2 = start_dp(&cluster, &west, "web-5").await?;
    let files = west_2.files().ok_or_else(|| anyhow::anyhow!("no files"))?;
    verify_chain(&files.cert, std::slice::from_ref(&seed.root_pem))?;
    assert_eq!(intermediate_of(&files.cert, "west")?, intermediates[1]);
    Ok(())
}

#[tokio::test]
async fn seed_004_with_vault_made_keys_at_csr_path() -> anyhow::Result<()> {
    seed_004_two_zones(Some(SEED004_CSR_PATH)).await
}

#[tokio::test]
async fn seed_004_with_keys_made_in_the_zone() -> anyhow::Result<()> {
    seed_004_two_zones(None).await
}
