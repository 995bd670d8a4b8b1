//! Workload identity end to end (issue #15), every part a real process on loopback: one
//! `mosaic-global`, `mosaic-zone`s joined to it, `mosaic-dp` agents, OpenBao. What a user would
//! check: the SPIFFE ID in the files the agents write (the only URI SAN), chains verifying to the
//! identity's CA, each data plane's trust bundle verifying the other's certificate (across zones,
//! and at every moment of a migration), and the MeshTrusts the zones make as the global shows them.
//!
//! Build the binaries first (`cargo build --workspace --bins`).

mod support;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use mosaic_ca::local::LocalCa;
use mosaic_core::ca::identity::inspect_pem;
use mosaic_testkit::{
    DataplaneAgent, OpenBao, PkiVerb, SEED002_PKI, SEED002_POLICY, SEED002_ROLE, TokenSpec,
    pem_blocks, pki_policy, verify_chain,
};
use serde_json::{Value, json};
use support::mosaic::{MESH, Mosaic, WAIT};

/// Seed 003's Universal MeshIdentity ("Option 4: Provided (Modern Identity Mode)") as the docs
/// render it (the `{% raw %}` markers are the site's, not the document's).
const SEED003_UNIVERSAL: &str = r#"type: MeshIdentity
name: flight-operations-id
mesh: default
spec:
  provider:
    type: Bundled
    bundled:
      insecureAllowSelfSigned: true # Required for self-signed CAs
      ca:
        certificate:
          type: Secret
          secretRef:
            kind: Secret
            name: flight-ops-ca-cert
        privateKey:
          type: Secret
          secretRef:
            kind: Secret
            name: flight-ops-ca-key
  selector:
    dataplane:
      matchLabels:
        app: flight-control
  spiffeID:
    path: /{{ .Namespace }}/{{ .Workload }}
    trustDomain: internal.kongair.com
"#;

/// The same MeshIdentity in seed 003's Kubernetes form.
const SEED003_KUBERNETES: &str = r#"apiVersion: kuma.io/v1alpha1
kind: MeshIdentity
metadata:
  name: flight-operations-id
  namespace: kong-mesh-system
  labels:
    kuma.io/mesh: default
spec:
  provider:
    type: Bundled
    bundled:
      insecureAllowSelfSigned: true # Required for self-signed CAs
      ca:
        certificate:
          type: Secret
          secretRef:
            kind: Secret
            name: flight-ops-ca-cert
        privateKey:
          type: Secret
          secretRef:
            kind: Secret
            name: flight-ops-ca-key
  selector:
    dataplane:
      matchLabels:
        app: flight-control
  spiffeID:
    path: /{{ .Namespace }}/{{ .Workload }}
    trustDomain: internal.kongair.com
"#;

const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A Universal Dataplane of `mesh` with one inbound of `service` and `labels`.
fn dataplane(mesh: &str, name: &str, service: &str, labels: &[(&str, &str)]) -> String {
    let mut yaml = format!("type: Dataplane\nmesh: {mesh}\nname: {name}\n");
    if !labels.is_empty() {
        yaml.push_str("labels:\n");
        for (k, v) in labels {
            yaml.push_str(&format!("  {k}: {v}\n"));
        }
    }
    yaml.push_str(&format!(
        "networking:\n  address: 127.0.0.1\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: {service}\n"
    ));
    yaml
}

/// An agent on zone `zone` for `name` (service `name` too) with `labels`, its token bound to its
/// `kuma.io/workload` label when it has one.
async fn agent(
    mosaic: &Mosaic,
    zone: usize,
    name: &str,
    labels: &[(&str, &str)],
) -> anyhow::Result<DataplaneAgent> {
    // Bound to the workload, as Kuma requires when the identity derives from that label.
    let workload = labels
        .iter()
        .find(|(k, _)| *k == "kuma.io/workload")
        .map(|(_, v)| *v);
    let token = mosaic
        .dataplane_token_for(MESH, name, &[("kuma.io/service", name)], workload)
        .await?;
    mosaic.agent_yaml(
        zone,
        MESH,
        name,
        &token,
        &dataplane(MESH, name, name, labels),
    )
}

fn uri_sans(cert_pem: &str) -> Vec<String> {
    inspect_pem(cert_pem)
        .map(|i| i.uri_sans)
        .unwrap_or_default()
}

fn normalized(pem: &str) -> Vec<String> {
    pem_blocks(pem)
        .iter()
        .map(|b| b.split_whitespace().collect())
        .collect()
}

/// Whether the bundle `ca_pem` holds every certificate of `pem`.
fn bundle_holds(ca_pem: &str, pem: &str) -> bool {
    let wanted = normalized(pem);
    let have = normalized(ca_pem);
    !wanted.is_empty() && wanted.iter().all(|r| have.contains(r))
}

/// Whether `cert_pem` verifies against the bundle `ca_pem` (as the peer's Envoy would check it).
fn verifies(cert_pem: &str, ca_pem: &str) -> bool {
    verify_chain(cert_pem, &pem_blocks(ca_pem)).is_ok()
}

/// The files of the agent whose out dir is `dir`, when all are there.
fn read_files(dir: &std::path::Path) -> Option<(String, String)> {
    let cert = std::fs::read_to_string(dir.join("cert.pem")).ok()?;
    let ca = std::fs::read_to_string(dir.join("ca.pem")).ok()?;
    Some((cert, ca))
}

/// Watches two agents' files every 20 ms until stopped: whenever both have files, each one's
/// served certificate must verify against the other's served trust bundle (a handshake between
/// them would succeed). Counts the moments it would not, with what was seen.
struct HandshakeWatch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Vec<String>)>,
}

impl HandshakeWatch {
    fn start(a: PathBuf, b: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut checks = 0usize;
            let mut failures = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let (Some((a_cert, a_ca)), Some((b_cert, b_ca))) =
                    (read_files(&a), read_files(&b))
                {
                    checks += 1;
                    if !verifies(&a_cert, &b_ca) {
                        failures.push(format!(
                            "b's bundle does not verify a's certificate {:?}",
                            uri_sans(&a_cert)
                        ));
                    }
                    if !verifies(&b_cert, &a_ca) {
                        failures.push(format!(
                            "a's bundle does not verify b's certificate {:?}",
                            uri_sans(&b_cert)
                        ));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (checks, failures)
        });
        Self { stop, task }
    }

    async fn finish(self) -> anyhow::Result<(usize, Vec<String>)> {
        self.stop.store(true, Ordering::Relaxed);
        Ok(self.task.await?)
    }
}

#[tokio::test]
async fn seed_003_meshidentity_is_accepted_in_both_forms_and_issues_spiffe_ids()
-> anyhow::Result<()> {
    let mosaic = Mosaic::start(&["east"]).await?;
    // The operator's self-signed CA in the two Secrets the seed names.
    let (ca_cert, ca_key) = LocalCa::generate_root(
        "internal.kongair.com",
        "Kong Air flight operations",
        TEN_YEARS,
    )?;
    mosaic
        .put_secret(MESH, "flight-ops-ca-cert", &ca_cert)
        .await?;
    mosaic
        .put_secret(MESH, "flight-ops-ca-key", ca_key.expose())
        .await?;
    mosaic
        .put(
            "/meshes/default/meshidentities/flight-operations-id",
            SEED003_UNIVERSAL,
        )
        .await?;
    let (status, universal) = mosaic
        .global
        .get(0, "/meshes/default/meshidentities/flight-operations-id")
        .await?;
    assert_eq!(status, 200, "{universal}");

    // A data plane the selector picks: its only URI SAN is the SPIFFE ID the templates render.
    let mut flight = agent(
        &mosaic,
        0,
        "flight-1",
        &[
            ("app", "flight-control"),
            ("kuma.io/workload", "flight-control"),
            ("k8s.kuma.io/namespace", "kong-air"),
        ],
    )
    .await?;
    let files = mosaic.files(&mut flight).await?;
    assert_eq!(
        uri_sans(&files.cert),
        ["spiffe://internal.kongair.com/kong-air/flight-control"]
    );
    verify_chain(&files.cert, std::slice::from_ref(&ca_cert))?;
    assert!(bundle_holds(&files.ca, &ca_cert), "ca.pem:\n{}", files.ca);
    let leaf = inspect_pem(&files.cert)?;
    assert!(leaf.server_auth && leaf.client_auth);

    // The zone made a MeshTrust from it; the global keeps it, named for the zone.
    let trust = mosaic
        .global
        .wait_for(
            0,
            "/meshes/default/meshtrusts/flight-operations-id.east",
            "the MeshTrust zone east made from flight-operations-id",
            WAIT,
            |t| t["spec"]["trustDomain"] == "internal.kongair.com",
        )
        .await
        .map_err(|e| e.context(mosaic.logs()))?;
    let pem = trust["spec"]["caBundles"][0]["pem"]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(bundle_holds(pem, &ca_cert), "{trust}");
    assert!(
        trust["status"]["origin"]["kri"]
            .as_str()
            .is_some_and(|k| k.contains("flight-operations-id")),
        "{trust}"
    );

    // Data planes rely on it: deleting it answers 409 naming who, unless forced; a user's write
    // over it answers 409 (the zone keeps it).
    mosaic
        .global
        .wait_for(
            0,
            "/meshes/default/dataplanes/flight-1",
            "flight-1 synced to the global",
            WAIT,
            |d| d["labels"]["kuma.io/zone"] == "east",
        )
        .await?;
    let path = "/meshes/default/meshtrusts/flight-operations-id.east";
    let (status, body) = mosaic.global.delete(0, path).await?;
    assert_eq!(status, 409, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("flight-operations-id")
            && text.contains("flight-1")
            && text.contains("?force=true"),
        "{text}"
    );
    let (status, body) = mosaic
        .global
        .put(0, path, &serde_json::to_string(&trust)?)
        .await?;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("kept for zone"), "{body}");
    let (status, _) = mosaic.global.get(0, path).await?;
    assert_eq!(status, 200, "still there");

    // The Kubernetes form, applied as a Kubernetes user would with mosaicctl, is the same
    // MeshIdentity: accepted, stored with the same spec, and the data plane keeps its identity.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("meshidentity.yaml");
    std::fs::write(&file, SEED003_KUBERNETES)?;
    let (code, out, err) = mosaic.ctl(&["apply", "-f", &file.to_string_lossy()])?;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let (status, kubernetes) = mosaic
        .global
        .get(0, "/meshes/default/meshidentities/flight-operations-id")
        .await?;
    assert_eq!(status, 200, "{kubernetes}");
    assert_eq!(kubernetes["spec"], universal["spec"]);
    assert_eq!(
        uri_sans(&flight.files().map(|f| f.cert).unwrap_or_default()),
        ["spiffe://internal.kongair.com/kong-air/flight-control"]
    );

    // An operator's MeshTrust (a partner's CA) reaches the data plane's bundle at once, and
    // leaves it when deleted (no data plane relies on its trust domain).
    let (partner, _) = LocalCa::generate_root("partner.example", "Partner CA", TEN_YEARS)?;
    mosaic
        .put(
            "/meshes/default/meshtrusts/partner",
            &json!({"type": "MeshTrust", "name": "partner", "mesh": MESH, "spec": {
                "trustDomain": "partner.example",
                "caBundles": [{"type": "Pem", "pem": {"value": partner}}]}})
            .to_string(),
        )
        .await?;
    flight
        .wait_until("the partner CA reaches ca.pem", WAIT, |a| {
            a.files().is_some_and(|f| bundle_holds(&f.ca, &partner))
        })
        .await?;
    let (status, body) = mosaic
        .global
        .delete(0, "/meshes/default/meshtrusts/partner")
        .await?;
    assert_eq!(status, 200, "{body}");
    flight
        .wait_until("the partner CA leaves ca.pem", WAIT, |a| {
            a.files()
                .is_some_and(|f| !bundle_holds(&f.ca, &partner) && bundle_holds(&f.ca, &ca_cert))
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn zones_on_default_trust_domains_trust_each_other_and_a_removed_zone_is_withdrawn()
-> anyhow::Result<()> {
    let mut mosaic = Mosaic::start(&["east", "west"]).await?;
    mosaic
        .put("/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    // One MeshIdentity for every data plane, each zone generating its own CA, on Kuma's default
    // trust domain `{{ .Mesh }}.{{ .Zone }}.mesh.local`: nobody copies a MeshTrust by hand.
    mosaic
        .put(
            "/meshes/default/meshidentities/identity",
            "type: MeshIdentity\nname: identity\nmesh: default\nspec:\n  selector:\n    dataplane:\n      matchLabels: {}\n  provider:\n    type: Bundled\n    bundled:\n      insecureAllowSelfSigned: true\n      autogenerate:\n        enabled: true\n",
        )
        .await?;
    let mut a = agent(&mosaic, 0, "a", &[("kuma.io/workload", "a")]).await?;
    let mut b = agent(&mosaic, 1, "b", &[("kuma.io/workload", "b")]).await?;
    let a_files = mosaic.files(&mut a).await?;
    let b_files = mosaic.files(&mut b).await?;
    assert_eq!(
        uri_sans(&a_files.cert),
        ["spiffe://default.east.mesh.local/workload/a"]
    );
    assert_eq!(
        uri_sans(&b_files.cert),
        ["spiffe://default.west.mesh.local/workload/b"]
    );
    // Each zone's MeshTrust went up to the global and down to the other zone.
    for (zone, domain) in [
        ("east", "default.east.mesh.local"),
        ("west", "default.west.mesh.local"),
    ] {
        mosaic
            .global
            .wait_for(
                0,
                &format!("/meshes/default/meshtrusts/identity.{zone}"),
                &format!("zone {zone}'s MeshTrust on the global"),
                WAIT,
                |t| t["spec"]["trustDomain"] == domain && t["labels"]["kuma.io/zone"] == zone,
            )
            .await
            .map_err(|e| e.context(mosaic.logs()))?;
    }
    // Zone east holds west's MeshTrust, as its API shows (read-only, as Kuma's zone API).
    mosaic.zones[0]
        .wait_for(
            "/meshes/default/meshtrusts/identity.west",
            "west's MeshTrust in zone east",
            WAIT,
            |t| t["spec"]["trustDomain"] == "default.west.mesh.local",
        )
        .await
        .map_err(|e| e.context(mosaic.logs()))?;
    a.wait_until("a's bundle verifies b's certificate", WAIT, |a| {
        a.files().is_some_and(|f| {
            b.files()
                .is_some_and(|g| verifies(&g.cert, &f.ca) && verifies(&f.cert, &g.ca))
        })
    })
    .await
    .map_err(|e| e.context(mosaic.logs()))?;

    // Zone west goes away: its trust domain leaves the global and east's data planes.
    let west_root = {
        let (_, t) = mosaic
            .global
            .get(0, "/meshes/default/meshtrusts/identity.west")
            .await?;
        t["spec"]["caBundles"][0]["pem"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(bundle_holds(
        &a.files().map(|f| f.ca).unwrap_or_default(),
        &west_root
    ));
    b.kill();
    mosaic.zones[1].stop()?;
    let (status, body) = mosaic.global.delete(0, "/zones/west").await?;
    assert_eq!(status, 200, "{body}");
    mosaic
        .global
        .wait_for(
            0,
            "/meshes/default/meshtrusts",
            "west's MeshTrust withdrawn",
            WAIT,
            |list| {
                let names: Vec<&str> = list["items"]
                    .as_array()
                    .map(|i| i.iter().filter_map(|t| t["name"].as_str()).collect())
                    .unwrap_or_default();
                names.contains(&"identity.east") && !names.contains(&"identity.west")
            },
        )
        .await?;
    a.wait_until("west's CA leaves a's bundle", WAIT, |a| {
        a.files()
            .is_some_and(|f| !bundle_holds(&f.ca, &west_root) && verifies(&f.cert, &f.ca))
    })
    .await
    .map_err(|e| e.context(mosaic.logs()))?;
    Ok(())
}

/// OpenBao with seed 000's root layout for mesh `default`, a role for SPIFFE IDs of trust domain
/// `domain` and a token that may issue from it.
async fn identity_vault(domain: &str) -> anyhow::Result<(OpenBao, String, String)> {
    let bao = OpenBao::start().await?;
    let root = bao.setup_root_pki("pki", MESH).await?;
    bao.write(
        "pki/roles/identities",
        json!({
            "allow_any_name": true,
            "require_cn": false,
            "allowed_uri_sans": format!("spiffe://{domain}/*"),
            "key_type": "ec",
            "key_bits": 256,
            "max_ttl": "720h",
        }),
    )
    .await?;
    bao.write_policy(
        "identities",
        &pki_policy("pki", "identities", &[PkiVerb::Issue]),
    )
    .await?;
    let token = bao
        .create_token(&TokenSpec {
            orphan: true,
            ..TokenSpec::new(&["identities"])
        })
        .await?;
    Ok((bao, root, token))
}

fn vault_identity(addr: &str, matches: &Value) -> String {
    json!({
        "type": "MeshIdentity", "name": "vault-id", "mesh": MESH,
        "spec": {
            "selector": {"dataplane": {"matchLabels": matches}},
            "spiffeID": {"trustDomain": "default.mesh.local"},
            "provider": {"type": "Vault", "vault": {
                "address": addr, "pki": "pki", "role": "identities", "mode": "issue",
                "auth": {"token": {"secret": "vault-token"}},
                "certificateParameters": {"expiry": "1h"}
            }}
        }
    })
    .to_string()
}

#[tokio::test]
async fn seed_003_migration_from_builtin_to_a_vault_meshidentity_fails_no_handshake()
-> anyhow::Result<()> {
    let (bao, vault_root, token) = identity_vault("default.mesh.local").await?;
    let mosaic = Mosaic::start(&["east"]).await?;
    mosaic.put_secret(MESH, "vault-token", &token).await?;
    mosaic.put_builtin_mesh().await?;
    mosaic.mesh_reached_zones(MESH).await?;
    let mut a = agent(&mosaic, 0, "a", &[("app", "a"), ("kuma.io/workload", "a")]).await?;
    let mut b = agent(&mosaic, 0, "b", &[("app", "b"), ("kuma.io/workload", "b")]).await?;
    mosaic.files(&mut a).await?;
    mosaic.files(&mut b).await?;
    assert_eq!(
        uri_sans(&a.files().map(|f| f.cert).unwrap_or_default())[0],
        "spiffe://default/a"
    );
    let watch = HandshakeWatch::start(a.out_dir(), b.out_dir());

    // Steps 1 and 2: a MeshIdentity for a only; its MeshTrust (made by the zone) puts the Vault
    // root into every bundle before a's first Vault certificate is served.
    mosaic
        .put(
            "/meshes/default/meshidentities/vault-id",
            &vault_identity(bao.addr(), &json!({"app": "a"})),
        )
        .await?;
    a.wait_until("a moves to its Vault identity", WAIT, |a| {
        a.files()
            .is_some_and(|f| uri_sans(&f.cert) == ["spiffe://default.mesh.local/workload/a"])
    })
    .await
    .map_err(|e| e.context(mosaic.logs()))?;
    let a_files = a.files().unwrap_or_else(|| unreachable!("checked above"));
    verify_chain(&a_files.cert, std::slice::from_ref(&vault_root))?;
    let b_files = b.files().unwrap_or_else(|| unreachable!("written before"));
    assert_eq!(
        uri_sans(&b_files.cert)[0],
        "spiffe://default/b",
        "b has not moved"
    );
    assert!(verifies(&a_files.cert, &b_files.ca) && verifies(&b_files.cert, &a_files.ca));
    mosaic
        .global
        .wait_for(
            0,
            "/meshes/default/meshtrusts/vault-id.east",
            "the MeshTrust of vault-id",
            WAIT,
            |t| t["spec"]["trustDomain"] == "default.mesh.local",
        )
        .await?;

    // Steps 3 and 4: every data plane on the new identity, then the old backend removed.
    mosaic
        .put(
            "/meshes/default/meshidentities/vault-id",
            &vault_identity(bao.addr(), &json!({})),
        )
        .await?;
    b.wait_until("b moves to its Vault identity", WAIT, |b| {
        b.files()
            .is_some_and(|f| uri_sans(&f.cert) == ["spiffe://default.mesh.local/workload/b"])
    })
    .await
    .map_err(|e| e.context(mosaic.logs()))?;
    mosaic
        .put("/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    let builtin_gone = |f: &mosaic_testkit::AgentFiles| {
        normalized(&f.ca).len() == normalized(&vault_root).len() && bundle_holds(&f.ca, &vault_root)
    };
    for agent in [&mut a, &mut b] {
        agent
            .wait_until("the builtin root leaves the bundle", WAIT, |x| {
                x.files().is_some_and(|f| builtin_gone(&f))
            })
            .await
            .map_err(|e| e.context(mosaic.logs()))?;
    }
    let (checks, failures) = watch.finish().await?;
    assert!(
        checks > 10,
        "the watch saw both agents' files {checks} times"
    );
    assert!(
        failures.is_empty(),
        "{} failed moments: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let (a_files, b_files) = (a.files(), b.files());
    let (Some(a_files), Some(b_files)) = (a_files, b_files) else {
        anyhow::bail!("files vanished");
    };
    assert!(verifies(&a_files.cert, &b_files.ca) && verifies(&b_files.cert, &a_files.ca));
    Ok(())
}

#[tokio::test]
async fn seed_002_vault_set_up_as_written_gives_identities_of_its_trust_domain()
-> anyhow::Result<()> {
    // Seed 002 step 1b verbatim: root `pki`, intermediate `pki_int`, the policy, and the sign
    // role `example-dot-com` with allowed_uri_sans="spiffe://domain.name/*" (Vault's defaults
    // for the rest: key_type rsa).
    let bao = OpenBao::start().await?;
    let pki = bao
        .setup_seed002_pki("spiffe://domain.name/*", Value::Null)
        .await?;
    let token = bao
        .create_token(&TokenSpec {
            orphan: true,
            ..TokenSpec::new(&[SEED002_POLICY])
        })
        .await?;
    let mosaic = Mosaic::start(&["east"]).await?;
    mosaic.put_secret(MESH, "vault-token", &token).await?;
    mosaic
        .put(
            "/meshes/default/meshidentities/domain-name",
            &json!({
                "type": "MeshIdentity", "name": "domain-name", "mesh": MESH,
                "spec": {
                    "selector": {"dataplane": {"matchLabels": {}}},
                    "spiffeID": {"trustDomain": "domain.name"},
                    "provider": {"type": "Vault", "vault": {
                        "address": bao.addr(), "pki": SEED002_PKI, "role": SEED002_ROLE,
                        "mode": "sign", "commonName": "{{ tag \"kuma.io/service\" }}.svc",
                        "auth": {"token": {"secret": "vault-token"}}
                    }}
                }
            })
            .to_string(),
        )
        .await?;
    let mut web = agent(&mosaic, 0, "web", &[("kuma.io/workload", "web")]).await?;
    let files = mosaic.files(&mut web).await?;
    // The role signs it because its only URI SAN is in the seed's trust domain.
    assert_eq!(uri_sans(&files.cert), ["spiffe://domain.name/workload/web"]);
    verify_chain(&files.cert, std::slice::from_ref(&pki.root_pem))?;
    assert!(verifies(&files.cert, &files.ca), "ca.pem:\n{}", files.ca);
    let leaf = inspect_pem(&files.cert)?;
    assert!(leaf.server_auth && leaf.client_auth);
    assert_eq!(
        leaf.common_name.as_deref(),
        Some("web.svc"),
        "the commonName template"
    );
    // The zone's MeshTrust for the domain carries the chain Vault gave, up to the seed's root.
    let trust = mosaic
        .global
        .wait_for(
            0,
            "/meshes/default/meshtrusts/domain-name.east",
            "the MeshTrust of domain-name",
            WAIT,
            |t| t["spec"]["trustDomain"] == "domain.name",
        )
        .await?;
    let bundle: String = trust["spec"]["caBundles"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|c| c["pem"]["value"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    assert!(verifies(&files.cert, &bundle), "{trust}");
    Ok(())
}
