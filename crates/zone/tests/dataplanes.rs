//! Data planes end to end, every part a real process on loopback: OpenBao (`MOSAIC_BAO_BIN`), one
//! `mosaic-global`, `mosaic-zone`s connected to it with zone tokens and its KDS CA, and
//! `mosaic-dp` agents with dataplane tokens from the global. What a user would check: the files
//! the agents write (chains verify against the Vault root, the contract's SANs, EKU, CN, key mode),
//! where the zones' Vault calls went (OpenBao's audit log), the zone and global APIs (insights,
//! CA health, the dataplanes synced up), rotation pushed to the files, a Vault outage, a zone
//! restart served from its cache, and refusals.
//!
//! `mosaic-global` and `mosaic-dp` are other crates' binaries, found next to this test executable
//! ([`workspace_binary`]): build them first (`cargo build --workspace`, or a workspace-wide test
//! run, does).

use std::{
    os::unix::fs::PermissionsExt as _,
    path::Path,
    time::{Duration, Instant},
};

use base64::Engine as _;
use mosaic_ca::local::LocalCa;
use mosaic_core::ca::identity::inspect_pem;
use mosaic_testkit::{
    GlobalCluster, OpenBao, PkiVerb, SEED_MOUNT, SEED_POLICY_HCL, SEED_POLICY_NAME, SEED_ROLE,
    TokenSpec, pem_blocks, pki_policy, token_id, verify_chain,
};
use serde_json::{Value, json};

mod support;

use support::mosaic::{MESH, Mosaic, WAIT};
const ISSUE_PATH: &str = "kmesh-pki-default/issue/dataplane-proxies";

/// OpenBao with an audit log, set up as seed 000/001 says for the root layout: PKI mount, root CA,
/// the seed role and issue-only policy, and an orphan token with that policy. Returns the root.
async fn seed_vault() -> anyhow::Result<(OpenBao, String, String)> {
    let bao = OpenBao::start_with_audit(None).await?;
    let root = bao.setup_root_pki(SEED_MOUNT, MESH).await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    bao.write_policy(SEED_POLICY_NAME, SEED_POLICY_HCL).await?;
    let token = bao
        .create_token(&TokenSpec {
            orphan: true,
            ..TokenSpec::new(&[SEED_POLICY_NAME])
        })
        .await?;
    Ok((bao, root, token))
}

/// The seed's Vault Mesh (`mode: issue` unless `conf_extra` says otherwise), with its token in
/// Secret `vault-token`, enabled backend `vault-1`.
fn vault_mesh(addr: &str, dp_cert: Value, conf_extra: Value) -> String {
    let mut from_cp = json!({
        "address": addr,
        "pki": SEED_MOUNT,
        "role": SEED_ROLE,
        "commonName": "{{ tag \"kuma.io/service\" }}.mesh",
        "auth": {"token": {"secret": "vault-token"}}
    });
    if let (Some(obj), Value::Object(extra)) = (from_cp.as_object_mut(), conf_extra) {
        obj.extend(extra);
    }
    json!({"type": "Mesh", "name": MESH, "mtls": {
        "enabledBackend": "vault-1",
        "backends": [{"name": "vault-1", "type": "vault", "dpCert": dp_cert,
                      "conf": {"fromCp": from_cp}}]
    }})
    .to_string()
}

/// A global with `zones`, the Vault Mesh and its token Secret, the Mesh on every zone.
async fn vault_mosaic(
    zones: &[&str],
    bao: &OpenBao,
    token: &str,
    dp_cert: Value,
    conf_extra: Value,
) -> anyhow::Result<Mosaic> {
    let mosaic = Mosaic::start(zones).await?;
    mosaic.put_secret(MESH, "vault-token", token).await?;
    mosaic
        .put(
            &format!("/meshes/{MESH}"),
            &vault_mesh(bao.addr(), dp_cert, conf_extra),
        )
        .await?;
    mosaic.mesh_reached_zones(MESH).await?;
    Ok(mosaic)
}

fn normalized(pem: &str) -> Vec<String> {
    pem_blocks(pem)
        .iter()
        .map(|b| b.split_whitespace().collect())
        .collect()
}

/// Whether the bundle `ca_pem` holds `root` (PEM).
fn bundle_holds(ca_pem: &str, root: &str) -> bool {
    let root = normalized(root);
    !root.is_empty() && root.iter().all(|r| normalized(ca_pem).contains(r))
}

fn serial(cert_pem: &str) -> String {
    inspect_pem(cert_pem).expect("cert.pem parses").serial
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("file exists")
        .permissions()
        .mode()
        & 0o777
}

fn names(list: &Value) -> Vec<String> {
    GlobalCluster::names(list)
}

/// Lines of a file (0 when it does not exist).
fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[tokio::test]
async fn two_zones_issue_from_one_vault_address_root_layout() -> anyhow::Result<()> {
    let (bao, root, token) = seed_vault().await?;
    let mosaic = vault_mosaic(
        &["east", "west"],
        &bao,
        &token,
        json!({"rotation": {"expiration": "24h"}}),
        json!({}),
    )
    .await?;
    // Admitting the Mesh, the global issued (and discarded) one test certificate.
    assert_eq!(bao.count_audit_requests(ISSUE_PATH)?, 1);

    let tags = [("kuma.io/service", "backend"), ("version", "v1")];
    let mut agents = Vec::new();
    for (zone, name) in [(0, "backend-east"), (1, "backend-west")] {
        agents.push(mosaic.dataplane(zone, MESH, name, &tags).await?);
    }
    for agent in &mut agents {
        let files = mosaic.files(agent).await?;
        verify_chain(&files.cert, std::slice::from_ref(&root))?;
        assert!(
            bundle_holds(&files.ca, &root),
            "ca.pem holds the Vault root:\n{}",
            files.ca
        );
        let leaf = inspect_pem(&files.cert)?;
        let mut sans = leaf.uri_sans.clone();
        sans.sort();
        assert_eq!(
            sans,
            [
                "kuma://kuma.io/service/backend",
                "kuma://version/v1",
                "spiffe://default/backend"
            ],
            "{}",
            agent.name
        );
        assert!(leaf.server_auth && leaf.client_auth, "EKU: {leaf:?}");
        assert_eq!(leaf.common_name.as_deref(), Some("backend.mesh"));
        assert!(!leaf.is_ca);
        assert_eq!(mode(&agent.key_path()), 0o600, "key.pem is owner-only");
    }
    // Each zone asked the same Vault address once per dataplane: the audit log of the one OpenBao
    // shows the global's test issuance (counted above) plus one issue per dataplane, nothing
    // else; and each zone reports one certificate issued from vault-1.
    assert_eq!(bao.count_audit_requests(ISSUE_PATH)?, 3);
    for zone in ["east", "west"] {
        mosaic
            .wait_ca_health(zone, "vault-1", "one certificate issued, healthy", |h| {
                h["healthy"] == true && h["certificatesIssued"] == 1
            })
            .await?;
    }

    for (zone, agent) in mosaic.zones.iter().zip(&agents) {
        let cert = inspect_pem(&std::fs::read_to_string(agent.cert_path())?)?;
        let overview = zone
            .wait_for(
                &format!("/meshes/{MESH}/dataplanes/{}/_overview", agent.name),
                "the DataplaneInsight",
                WAIT,
                |o| o["dataplaneInsight"]["mTLS"]["issuedBackend"] == "vault-1",
            )
            .await?;
        let mtls = &overview["dataplaneInsight"]["mTLS"];
        let expiration = mtls["certificateExpirationTime"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no expiration: {overview}"))?;
        let expiration = time::OffsetDateTime::parse(
            expiration,
            &time::format_description::well_known::Rfc3339,
        )?;
        assert_eq!(expiration, cert.not_after, "{overview}");
        assert_eq!(mtls["certificateRegenerations"], 1);
    }
    // Both zones reported their Dataplane up to the global over KDS.
    mosaic
        .global
        .wait_for(
            0,
            &format!("/meshes/{MESH}/dataplanes"),
            "both dataplanes listed",
            WAIT,
            |l| {
                let n = names(l);
                n.contains(&"backend-east".to_string()) && n.contains(&"backend-west".to_string())
            },
        )
        .await?;
    for agent in &mut agents {
        assert!(agent.is_running(), "{}", agent.log());
    }
    assert_eq!(bao.count_audit_requests(ISSUE_PATH)?, 3);
    Ok(())
}

#[tokio::test]
async fn two_zones_intermediate_layout_in_sign_mode() -> anyhow::Result<()> {
    let bao = OpenBao::start_with_audit(None).await?;
    let pki = bao.setup_intermediate_pki("pki", SEED_MOUNT, MESH).await?;
    bao.create_role(
        SEED_MOUNT,
        "dp-sign",
        MESH,
        json!({"key_type": "ec", "key_bits": 256}),
    )
    .await?;
    bao.write_policy(
        "dp-sign",
        &pki_policy(SEED_MOUNT, "dp-sign", &[PkiVerb::Sign]),
    )
    .await?;
    let token = bao
        .create_token(&TokenSpec {
            orphan: true,
            ..TokenSpec::new(&["dp-sign"])
        })
        .await?;
    let mosaic = vault_mosaic(
        &["east", "west"],
        &bao,
        &token,
        json!({"rotation": {"expiration": "24h"}}),
        json!({"role": "dp-sign", "mode": "sign"}),
    )
    .await?;
    // Two zones, dataplanes of the same service, the one Vault address.
    let mut serials = Vec::new();
    for (zone, name) in [(0, "web-east"), (1, "web-west")] {
        let mut agent = mosaic
            .dataplane(zone, MESH, name, &[("kuma.io/service", "web")])
            .await?;
        let files = mosaic.files(&mut agent).await?;

        let chain = pem_blocks(&files.cert);
        assert_eq!(chain.len(), 2, "leaf + intermediate:\n{}", files.cert);
        assert_eq!(normalized(&chain[1]), normalized(&pki.intermediate_pem));
        verify_chain(&files.cert, std::slice::from_ref(&pki.root_pem))?;
        verify_chain(&files.cert, std::slice::from_ref(&files.ca))?;
        assert!(bundle_holds(&files.ca, &pki.root_pem), "{}", files.ca);
        let leaf = inspect_pem(&files.cert)?;
        assert_eq!(leaf.common_name.as_deref(), Some("web.mesh"));
        assert!(leaf.uri_sans.contains(&"spiffe://default/web".to_string()));
        assert!(
            leaf.server_auth && leaf.client_auth,
            "EKU serverAuth+clientAuth"
        );
        // The zone made the key (EC P-256) and sent Vault only a CSR.
        let key = rcgen::KeyPair::from_pem(&files.key)?;
        assert!(key.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256));
        serials.push(leaf.serial);
    }
    assert_ne!(serials[0], serials[1]);
    assert_eq!(
        bao.count_audit_requests(&format!("{SEED_MOUNT}/issue/dp-sign"))?,
        0
    );
    // The global's admission test and one certificate per zone.
    assert_eq!(
        bao.count_audit_requests(&format!("{SEED_MOUNT}/sign/dp-sign"))?,
        3
    );
    Ok(())
}

#[tokio::test]
async fn builtin_and_provided_backends_serve_data_planes() -> anyhow::Result<()> {
    let mosaic = Mosaic::start(&["east"]).await?;
    // builtin: the global generates the CA into two Secrets of the mesh.
    mosaic.put_builtin_mesh().await?;
    let (status, secret) = mosaic
        .global
        .get(0, "/meshes/default/secrets/default.ca-builtin-cert-ca-1")
        .await?;
    assert_eq!(status, 200, "{secret}");
    let builtin_ca = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"].as_str().unwrap_or_default())?,
    )?;
    // provided: the user's CA in two Secrets, named by the backend's conf.
    let (ca_cert, ca_key) = LocalCa::generate_root(
        "payments",
        "Payments CA",
        Duration::from_secs(10 * 365 * 24 * 3600),
    )?;
    mosaic
        .put_secret("payments", "payments-ca-cert", &ca_cert)
        .await?;
    mosaic
        .put_secret("payments", "payments-ca-key", ca_key.expose())
        .await?;
    mosaic
        .put(
            "/meshes/payments",
            &json!({"type": "Mesh", "name": "payments", "mtls": {"enabledBackend": "ca-p",
                "backends": [{"name": "ca-p", "type": "provided", "conf": {
                    "cert": {"secret": "payments-ca-cert"},
                    "key": {"secret": "payments-ca-key"}}}]}})
            .to_string(),
        )
        .await?;
    mosaic.mesh_reached_zones("default").await?;
    mosaic.mesh_reached_zones("payments").await?;

    for (mesh, name, service, ca) in [
        ("default", "web-1", "web", &builtin_ca),
        ("payments", "pay-1", "payments", &ca_cert),
    ] {
        let mut agent = mosaic
            .dataplane(0, mesh, name, &[("kuma.io/service", service)])
            .await?;
        let files = mosaic.files(&mut agent).await?;
        verify_chain(&files.cert, std::slice::from_ref(&files.ca))?;
        assert!(
            bundle_holds(&files.ca, ca),
            "{mesh}: ca.pem is the mesh's CA:\n{}",
            files.ca
        );
        verify_chain(&files.cert, std::slice::from_ref(ca))?;
        let leaf = inspect_pem(&files.cert)?;
        assert_eq!(leaf.uri_sans[0], format!("spiffe://{mesh}/{service}"));
        assert!(leaf.server_auth && leaf.client_auth);
        assert_eq!(mode(&agent.key_path()), 0o600);
        let backend = if mesh == "default" { "ca-1" } else { "ca-p" };
        mosaic.zones[0]
            .wait_for(
                &format!("/meshes/{mesh}/dataplanes/{name}/_overview"),
                "the DataplaneInsight",
                WAIT,
                |o| o["dataplaneInsight"]["mTLS"]["issuedBackend"] == backend,
            )
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn rotation_is_pushed_to_the_agent_files() -> anyhow::Result<()> {
    let (bao, root, token) = seed_vault().await?;
    let mosaic = vault_mosaic(
        &["east"],
        &bao,
        &token,
        json!({"rotation": {"expiration": "20s"}}),
        json!({}),
    )
    .await?;
    let token = mosaic
        .dataplane_token(MESH, "web-1", &[("kuma.io/service", "web")])
        .await?;
    let mut agent = mosaic.agent(
        0,
        |o| o.exec_on_rotate("echo \"$(date +%s) $MOSAIC_DP_CERT_FILE\" >> rotations.log"),
        MESH,
        "web-1",
        &token,
        &[("kuma.io/service", "web")],
    )?;
    let hook_log = agent.dir().join("rotations.log");
    let first = mosaic.files(&mut agent).await?;
    let first_leaf = inspect_pem(&first.cert)?;
    let lifetime = first_leaf.not_after - time::OffsetDateTime::now_utc();
    assert!(
        lifetime <= time::Duration::seconds(21),
        "a 20s certificate: {lifetime}"
    );
    agent
        .wait_until("the hook ran for the first files", WAIT, |_| {
            line_count(&hook_log) >= 1
        })
        .await?;

    // At 80% of the 20 s lifetime the zone rotates and pushes; the agent rewrites the files.
    agent
        .wait_until("a new certificate in cert.pem", WAIT, |a| {
            a.files()
                .is_some_and(|f| serial(&f.cert) != first_leaf.serial)
        })
        .await?;
    agent
        .wait_until("the hook ran after the rotation", WAIT, |_| {
            line_count(&hook_log) >= 2
        })
        .await?;
    let second = agent.files().expect("files");
    assert_ne!(second.key, first.key, "key.pem rewritten");
    verify_chain(&second.cert, std::slice::from_ref(&root))?;
    let second_leaf = inspect_pem(&second.cert)?;
    assert!(second_leaf.not_after > first_leaf.not_after);
    assert!(
        std::fs::read_to_string(&hook_log)?.contains(&agent.cert_path().display().to_string()),
        "the hook is told where cert.pem is"
    );
    mosaic.zones[0]
        .wait_for(
            &format!("/meshes/{MESH}/dataplanes/web-1/_overview"),
            "two certificate generations recorded",
            WAIT,
            |o| {
                o["dataplaneInsight"]["mTLS"]["certificateRegenerations"]
                    .as_u64()
                    .is_some_and(|n| n >= 2)
            },
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn vault_outage_keeps_certificates_and_reports_health() -> anyhow::Result<()> {
    let (bao, root, token) = seed_vault().await?;
    let mosaic = vault_mosaic(
        &["east"],
        &bao,
        &token,
        json!({"rotation": {"expiration": "24h"}, "requestTimeout": "2s"}),
        json!({}),
    )
    .await?;
    let mut first = mosaic
        .dataplane(0, MESH, "web-1", &[("kuma.io/service", "web")])
        .await?;
    let first_files = mosaic.files(&mut first).await?;
    mosaic
        .wait_ca_health("east", "vault-1", "a healthy vault-1", |h| {
            h["healthy"] == true
        })
        .await?;

    bao.pause()?;
    let second_token = mosaic
        .dataplane_token(MESH, "web-2", &[("kuma.io/service", "web")])
        .await?;
    let mut second = mosaic.agent(
        0,
        |o| o,
        MESH,
        "web-2",
        &second_token,
        &[("kuma.io/service", "web")],
    )?;
    let health = mosaic
        .wait_ca_health("east", "vault-1", "vault-1 reported unhealthy", |h| {
            h["healthy"] == false
        })
        .await?;
    let last_error = health["lastError"].as_str().unwrap_or_default();
    assert!(
        last_error.contains("Vault") && last_error.contains("2s"),
        "the error says Vault did not answer in time: {health}"
    );
    // While Vault is away: no files for the new dataplane; the first one keeps running with its
    // certificate on disk.
    assert!(!second.has_any_file(), "{}", second.log());
    assert!(second.is_running(), "{}", second.log());
    assert!(first.is_running(), "{}", first.log());
    assert_eq!(first.files().as_ref(), Some(&first_files));

    bao.resume()?;
    let second_files = mosaic.files(&mut second).await?;
    verify_chain(&second_files.cert, std::slice::from_ref(&root))?;
    let health = mosaic
        .wait_ca_health("east", "vault-1", "vault-1 healthy again", |h| {
            h["healthy"] == true
        })
        .await?;
    assert!(health.get("lastError").is_none(), "{health}");
    assert_eq!(first.files().as_ref(), Some(&first_files));
    Ok(())
}

#[tokio::test]
async fn a_restarted_zone_reuses_cached_certificates_without_vault_calls() -> anyhow::Result<()> {
    let (bao, _root, token) = seed_vault().await?;
    let mut mosaic = vault_mosaic(
        &["east"],
        &bao,
        &token,
        json!({"rotation": {"expiration": "24h"}}),
        json!({}),
    )
    .await?;
    let dp_token = mosaic
        .dataplane_token(MESH, "web-1", &[("kuma.io/service", "web")])
        .await?;
    let mut agent = mosaic.agent(
        0,
        |o| {
            o.exec_on_rotate("echo rotated >> rotations.log")
                .log_filter("info,mosaic_dp=debug")
        },
        MESH,
        "web-1",
        &dp_token,
        &[("kuma.io/service", "web")],
    )?;
    let hook_log = agent.dir().join("rotations.log");
    let files = mosaic.files(&mut agent).await?;
    let served = serial(&files.cert);
    agent
        .wait_until("the first ACK", WAIT, |a| a.log().contains("ACK sent"))
        .await?;
    let issued = bao.count_audit_requests(ISSUE_PATH)?;
    assert_eq!(issued, 2, "the global's test issuance and web-1's");
    let count = |text: &str, needle: &str| text.matches(needle).count();
    let streams = count(&agent.log(), "connected to the zone");
    let acks = count(&agent.log(), "ACK sent");

    // Restarted the way systemd or Kubernetes restart it: SIGTERM (the zone makes its store and
    // certificate cache durable), then a new process on the same data dir.
    let zone = &mut mosaic.zones[0];
    zone.stop()?;
    zone.start()?;
    zone.wait_ready(WAIT).await?;
    let zone = &mosaic.zones[0];
    // The agent opens a new stream to the restarted zone, which serves the cached certificate;
    // the agent ACKs it.
    agent
        .wait_until("a new stream, ACKed", WAIT, |a| {
            let log = a.log();
            count(&log, "connected to the zone") > streams && count(&log, "ACK sent") > acks
        })
        .await?;
    // The restarted process (its log starts at its last "zone store open") opened the stream and
    // pushed the very certificate the agent already had.
    let start = Instant::now();
    loop {
        let log = zone.log();
        let restarted = log.rsplit_once("zone store open").map_or("", |(_, l)| l);
        let opened = restarted.contains("SDS stream opened");
        let pushed = restarted
            .lines()
            .any(|l| l.contains("secrets pushed") && l.contains(&served));
        if opened && pushed {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "the restarted zone never served {served} on a new stream; log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(agent.files().as_ref(), Some(&files), "files unchanged");
    assert_eq!(
        line_count(&hook_log),
        1,
        "no rotation, so no second hook run"
    );
    let (_, overview) = zone
        .get(&format!("/meshes/{MESH}/dataplanes/web-1/_overview"))
        .await?;
    assert_eq!(
        overview["dataplaneInsight"]["mTLS"]["certificateRegenerations"], 1,
        "the same certificate as before the restart: {overview}"
    );
    assert_eq!(
        bao.count_audit_requests(ISSUE_PATH)?,
        issued,
        "no Vault call"
    );
    assert!(agent.is_running());
    Ok(())
}

#[tokio::test]
async fn refused_agents_exit_with_a_clear_message() -> anyhow::Result<()> {
    let mosaic = Mosaic::start(&["east"]).await?;
    mosaic.put_builtin_mesh().await?;
    mosaic.mesh_reached_zones(MESH).await?;
    let web = [("kuma.io/service", "web"), ("version", "v1")];

    // A token for another dataplane.
    let other = mosaic.dataplane_token(MESH, "web-1", &web).await?;
    let mut impostor = mosaic.agent(0, |o| o, MESH, "web-2", &other, &web)?;
    // A Dataplane claiming a tag value its token does not allow.
    let token = mosaic.dataplane_token(MESH, "web-3", &web).await?;
    let mut greedy = mosaic.agent(
        0,
        |o| o,
        MESH,
        "web-3",
        &token,
        &[("kuma.io/service", "web"), ("version", "v2")],
    )?;

    for (agent, reason) in [
        (
            &mut impostor,
            "the dataplane token is for \"web-1\", not \"web-2\"",
        ),
        (&mut greedy, "version=v2 (the token allows version=v1)"),
    ] {
        let status = agent.wait_exit(WAIT).await?;
        assert_eq!(status.code(), Some(1), "{}", agent.log());
        let log = agent.log();
        let line = error_line(&log);
        assert!(
            line.contains(&format!(
                "error: the zone refused dataplane default.{}:",
                agent.name
            )) && line.contains(reason),
            "{log}"
        );
        assert!(!agent.has_any_file());
        let (status, body) = mosaic.zones[0]
            .get(&format!("/meshes/default/dataplanes/{}", agent.name))
            .await?;
        assert_eq!(status, 404, "nothing registered: {body}");
    }
    Ok(())
}

/// What an operator does when a token leaks (Kuma's way): list its id in
/// `dataplane-token-revocations-<mesh>` on the global. The running agent is cut off and exits
/// with the reason; a data plane with another token keeps its certificate.
#[tokio::test]
async fn a_revoked_dataplane_token_cuts_off_its_running_agent() -> anyhow::Result<()> {
    let mosaic = Mosaic::start(&["east"]).await?;
    mosaic.put_builtin_mesh().await?;
    mosaic.mesh_reached_zones(MESH).await?;
    let web = [("kuma.io/service", "web")];
    let leaked = mosaic.dataplane_token(MESH, "web-1", &web).await?;
    let mut cut = mosaic.agent(0, |o| o, MESH, "web-1", &leaked, &web)?;
    let mut kept = mosaic.dataplane(0, MESH, "web-2", &web).await?;
    mosaic.files(&mut cut).await?;
    let kept_files = mosaic.files(&mut kept).await?;

    let id = token_id(&leaked);
    assert_eq!(id.len(), 32, "a token id: {id:?}");
    mosaic
        .put_secret(
            MESH,
            "dataplane-token-revocations-default",
            &format!("some-other-id,{id}"),
        )
        .await?;
    let status = cut.wait_exit(WAIT).await?;
    assert_eq!(status.code(), Some(1), "{}", cut.log());
    let log = cut.log();
    let line = error_line(&log);
    assert!(
        line.contains("error: the zone refused dataplane default.web-1:")
            && line.contains("revoked")
            && line.contains(&id)
            && line.contains("dataplane-token-revocations-default"),
        "{log}"
    );
    assert!(!log.contains(&leaked), "the token never reaches a log");

    // The other data plane is untouched, and the leaked token cannot come back.
    assert!(kept.exit_status().is_none(), "{}", kept.log());
    assert_eq!(kept.files().as_ref(), Some(&kept_files));
    let mut again = mosaic.agent(0, |o| o, MESH, "web-1", &leaked, &web)?;
    assert_eq!(again.wait_exit(WAIT).await?.code(), Some(1));
    assert!(again.log().contains("revoked"), "{}", again.log());
    Ok(())
}

/// The `error: ...` line an agent that exits 1 prints (empty if none).
fn error_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default()
}

/// `mosaicctl` against the global, as a user runs it: exit code, stdout, stderr.
fn mosaicctl(mosaic: &Mosaic, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    mosaic.ctl(args)
}

/// A fresh 2048-bit RSA key as Kuma keeps its signing keys (PEM `RSA PRIVATE KEY`), made by the
/// openssl command line (scripts/setup-test-env.sh installs it).
fn kuma_signing_key_pem() -> anyhow::Result<String> {
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .stderr(std::process::Stdio::null())
        .output()?;
    anyhow::ensure!(out.status.success(), "openssl genrsa failed");
    Ok(String::from_utf8(out.stdout)?)
}

/// A dataplane token exactly as Kuma 2.14 issues it: RS256, kid "1", claims `Name`, `Mesh`,
/// `Tags`, `Type`, `Workload`, `jti`, `iat`, `nbf` (5 minutes back), `exp`.
fn kuma_dataplane_token(pem: &str, name: &str, service: &str) -> anyhow::Result<String> {
    use mosaic_core::token::kuma::{KumaDataplaneClaims, KumaSigningKey, RegisteredClaims};
    let key = KumaSigningKey::from_secret_value(1, pem.as_bytes())?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    let claims = KumaDataplaneClaims {
        name: name.to_string(),
        mesh: MESH.to_string(),
        tags: Some([("kuma.io/service".to_string(), vec![service.to_string()])].into()),
        proxy_type: String::new(),
        workload: String::new(),
        registered: RegisteredClaims {
            jti: Some("0e4b1fd6-1d0c-4c35-9a8a-1b6a9c1f5e21".into()),
            iat: Some(now),
            nbf: Some(now - 300.0),
            exp: Some(now + 3600.0),
        },
    };
    Ok(key.sign(&claims)?.into_inner())
}

/// Kuma's quickstart flow verbatim: `generate dataplane-token --mesh default --name web-1 --tag
/// kuma.io/service=web` for a Dataplane whose inbound also has `version: v1`. The certificate
/// names every tag (as Kuma's does); a zone with `dataplane_tokens.require_all_tags = true`
/// refuses the same token and Dataplane, naming the option.
#[tokio::test]
async fn kuma_quickstart_token_with_only_the_service_tag() -> anyhow::Result<()> {
    let mosaic = Mosaic::start_with(&["east", "strict"], |name, zone| {
        if name == "strict" {
            zone.edit_config(|c| c.dataplane_tokens.require_all_tags = true);
        }
    })
    .await?;
    mosaic.put_builtin_mesh().await?;
    mosaic.mesh_reached_zones(MESH).await?;
    let tags = [("kuma.io/service", "web"), ("version", "v1")];

    let mut tokens = Vec::new();
    for name in ["web-1", "web-2"] {
        let (code, token, err) = mosaicctl(
            &mosaic,
            &[
                "generate",
                "dataplane-token",
                "--mesh",
                "default",
                "--name",
                name,
                "--tag",
                "kuma.io/service=web",
            ],
        )?;
        assert_eq!(code, 0, "{err}");
        tokens.push(token.trim().to_string());
    }

    let mut agent = mosaic.agent(0, |o| o, MESH, "web-1", &tokens[0], &tags)?;
    let files = mosaic.files(&mut agent).await?;
    verify_chain(&files.cert, std::slice::from_ref(&files.ca))?;
    let leaf = inspect_pem(&files.cert)?;
    for san in [
        "spiffe://default/web",
        "kuma://kuma.io/service/web",
        "kuma://version/v1",
    ] {
        assert!(
            leaf.uri_sans.contains(&san.to_string()),
            "{san} in {:?}",
            leaf.uri_sans
        );
    }

    let mut strict = mosaic.agent(1, |o| o, MESH, "web-2", &tokens[1], &tags)?;
    let status = strict.wait_exit(WAIT).await?;
    assert_eq!(status.code(), Some(1), "{}", strict.log());
    let log = strict.log();
    let line = error_line(&log);
    assert!(
        line.contains("error: the zone refused dataplane default.web-2:")
            && line.contains("version=v1 (the token does not name version")
            && line.contains("dataplane_tokens.require_all_tags"),
        "{log}"
    );
    assert!(!strict.has_any_file());
    Ok(())
}

/// A fleet moving from Kuma: Kuma's dataplane-token signing key, applied to the global as the
/// Secret `dataplane-token-signing-key-default-1` exactly as Kuma keeps it, makes the RS256 tokens
/// Kuma issued work on a zone; a Kuma token signed by another key is refused, naming the key.
#[tokio::test]
async fn kuma_rs256_dataplane_tokens_work_with_the_imported_signing_key() -> anyhow::Result<()> {
    let mosaic = Mosaic::start(&["east"]).await?;
    mosaic.put_builtin_mesh().await?;
    mosaic.mesh_reached_zones(MESH).await?;
    let pem = kuma_signing_key_pem()?;
    // `kumactl get secret dataplane-token-signing-key-default-1 --mesh default -o yaml`, applied.
    let data = base64::engine::general_purpose::STANDARD.encode(&pem);
    mosaic
        .put(
            "/meshes/default/secrets/dataplane-token-signing-key-default-1",
            &format!(
                "type: Secret\nname: dataplane-token-signing-key-default-1\nmesh: default\ndata: {data}\n"
            ),
        )
        .await?;
    let web = [("kuma.io/service", "web"), ("version", "v1")];
    let token = kuma_dataplane_token(&pem, "web-1", "web")?;

    // The key reaches the zone as a public key over KDS; until then the zone refuses the token
    // as signed by a key it does not have, so the agent is started again until it is served.
    let deadline = Instant::now() + WAIT;
    let files = loop {
        let mut agent = mosaic.agent(0, |o| o, MESH, "web-1", &token, &web)?;
        match agent.wait_for_files(WAIT).await {
            Ok(files) => break files,
            Err(e) => {
                let log = agent.log();
                anyhow::ensure!(
                    agent.exit_status().is_some()
                        && Instant::now() < deadline
                        && log.contains("which this control plane does not have"),
                    "the Kuma token was not accepted: {e}\n{}",
                    mosaic.logs()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let leaf = inspect_pem(&files.cert)?;
    assert!(
        leaf.uri_sans.contains(&"kuma://version/v1".to_string()),
        "{:?}",
        leaf.uri_sans
    );
    assert_eq!(leaf.uri_sans[0], "spiffe://default/web");

    // Signed by another key under the same serial (another Kuma control plane's).
    let forged = kuma_dataplane_token(&kuma_signing_key_pem()?, "web-2", "web")?;
    let mut refused = mosaic.agent(0, |o| o, MESH, "web-2", &forged, &web)?;
    let status = refused.wait_exit(WAIT).await?;
    assert_eq!(status.code(), Some(1), "{}", refused.log());
    let log = refused.log();
    assert!(
        error_line(&log).contains("does not verify with the imported Kuma signing key 1")
            && error_line(&log).contains("dataplane-token-signing-key-default-1"),
        "{log}"
    );
    assert!(!refused.has_any_file());
    Ok(())
}
