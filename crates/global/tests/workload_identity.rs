//! MeshIdentity and MeshTrust on a real mosaic-global: the contract's documents are stored and
//! read back at Kuma's paths (item and list), an invalid one is refused with Kuma's 400 body
//! naming the field, and both are deleted; a Vault provider is tested by a real issuance against
//! OpenBao (seed 002's role as written), a self-signed Bundled CA needs insecureAllowSelfSigned.

use std::time::Duration;

use base64::Engine as _;
use mosaic_testkit::{
    GlobalCluster, OpenBao, SEED002_PKI, SEED002_POLICY, SEED002_ROLE, TokenSpec, workspace_binary,
};

const IDENTITY: &str = r#"type: MeshIdentity
name: identity
mesh: default
spec:
  selector: { dataplane: { matchLabels: { app: web } } }
  spiffeID:
    trustDomain: "{{ .Mesh }}.{{ .Zone }}.mesh.local"
    path: "/workload/{{ .Workload }}"
  provider:
    type: Bundled
    bundled: { meshTrustCreation: Enabled, insecureAllowSelfSigned: true, certificateParameters: { expiry: 24h },
               autogenerate: { enabled: true } }
"#;

fn ca_pem() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).expect("cert").pem()
}

#[tokio::test]
async fn meshidentities_and_meshtrusts_are_stored_read_back_refused_and_deleted()
-> anyhow::Result<()> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    let (status, body) = cluster
        .put(0, "/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    assert!(status == 200 || status == 201, "{status} {body}");

    // The contract's MeshIdentity, as written.
    let (status, body) = cluster
        .put(0, "/meshes/default/meshidentities/identity", IDENTITY)
        .await?;
    assert_eq!(status, 201, "{body}");
    let (status, item) = cluster
        .get(0, "/meshes/default/meshidentities/identity")
        .await?;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["type"], "MeshIdentity");
    assert_eq!(item["mesh"], "default");
    assert_eq!(item["name"], "identity");
    assert_eq!(item["spec"]["provider"]["type"], "Bundled");
    assert_eq!(
        item["spec"]["provider"]["bundled"]["certificateParameters"]["expiry"],
        "24h"
    );
    assert_eq!(
        item["spec"]["selector"]["dataplane"]["matchLabels"]["app"],
        "web"
    );
    assert!(item["creationTime"].is_string(), "{item}");

    // The contract's MeshTrust, its PEM placeholder filled with a CA certificate.
    let pem = ca_pem();
    let trust = format!(
        "type: MeshTrust\nname: domain-name\nmesh: default\nspec: {{ trustDomain: domain.name, caBundles: [ {{ type: Pem, pem: {{ value: {} }} }} ] }}\n",
        serde_json::to_string(&pem)?
    );
    let (status, body) = cluster
        .put(0, "/meshes/default/meshtrusts/domain-name", &trust)
        .await?;
    assert_eq!(status, 201, "{body}");
    let (status, item) = cluster
        .get(0, "/meshes/default/meshtrusts/domain-name")
        .await?;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["spec"]["trustDomain"], "domain.name");
    assert_eq!(item["spec"]["caBundles"][0]["pem"]["value"], pem.as_str());

    // Kuma's list shape, per mesh and across meshes.
    for path in ["/meshes/default/meshidentities", "/meshidentities"] {
        let (status, list) = cluster.get(0, path).await?;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["total"], 1, "{path}: {list}");
        assert_eq!(GlobalCluster::names(&list), ["identity"], "{path}");
        assert!(list.get("next").is_some(), "{path}: {list}");
    }
    let (_, list) = cluster.get(0, "/meshes/default/meshtrusts").await?;
    assert_eq!(GlobalCluster::names(&list), ["domain-name"]);

    // Refused with Kuma's 400 body, the field named; nothing stored.
    let bad = IDENTITY
        .replace("name: identity", "name: bad")
        .replace("meshTrustCreation: Enabled", "meshTrustCreation: Sometimes");
    let (status, body) = cluster
        .put(0, "/meshes/default/meshidentities/bad", &bad)
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["status"], 400, "Kuma's error body: {body}");
    let fields: Vec<&str> = body["invalid_parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["spec.provider.bundled.meshTrustCreation"],
        "{body}"
    );
    let (status, _) = cluster.get(0, "/meshes/default/meshidentities/bad").await?;
    assert_eq!(status, 404);
    let bad_trust = trust.replace(
        &serde_json::to_string(&pem)?,
        "\"-----BEGIN CERTIFICATE-----...\"",
    );
    let (status, body) = cluster
        .put(0, "/meshes/default/meshtrusts/domain-name", &bad_trust)
        .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("spec.caBundles[0].pem.value"),
        "{body}"
    );

    // Deleted.
    for path in [
        "/meshes/default/meshidentities/identity",
        "/meshes/default/meshtrusts/domain-name",
    ] {
        let (status, body) = cluster.delete(0, path).await?;
        assert_eq!(status, 200, "{path}: {body}");
        let (status, _) = cluster.get(0, path).await?;
        assert_eq!(status, 404, "{path}");
    }
    let (_, list) = cluster.get(0, "/meshes/default/meshidentities").await?;
    assert_eq!(list["total"], 0, "{list}");
    Ok(())
}

fn vault_identity(name: &str, addr: &str, trust_domain: &str) -> String {
    serde_json::json!({
        "type": "MeshIdentity", "name": name, "mesh": "default",
        "spec": {
            "selector": {"dataplane": {"matchLabels": {}}},
            "spiffeID": {"trustDomain": trust_domain},
            "provider": {"type": "Vault", "vault": {
                "address": addr, "pki": SEED002_PKI, "role": SEED002_ROLE, "mode": "sign",
                "commonName": "{{ tag \"kuma.io/service\" }}.svc",
                "auth": {"token": {"secret": "vault-token"}}
            }}
        }
    })
    .to_string()
}

/// A Vault provider is admitted only after Vault issued a certificate for a SPIFFE ID of the
/// identity's trust domain (seed 002's role as written signs `spiffe://domain.name/*` only); one
/// that cannot issue is refused quoting Vault, and nothing is stored.
#[tokio::test]
async fn a_vault_provider_is_tested_by_issuing_its_own_kind_of_certificate() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    bao.setup_seed002_pki("spiffe://domain.name/*", serde_json::Value::Null)
        .await?;
    let token = bao
        .create_token(&TokenSpec {
            orphan: true,
            ..TokenSpec::new(&[SEED002_POLICY])
        })
        .await?;
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    cluster
        .put(0, "/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    let data = base64::engine::general_purpose::STANDARD.encode(&token);
    let (status, body) = cluster
        .put(
            0,
            "/meshes/default/secrets/vault-token",
            &format!("data: {data}\n"),
        )
        .await?;
    assert!(status == 200 || status == 201, "{status} {body}");

    let (status, body) = cluster
        .put(
            0,
            "/meshes/default/meshidentities/domain-name",
            &vault_identity("domain-name", bao.addr(), "domain.name"),
        )
        .await?;
    assert_eq!(status, 201, "{body}");

    // Another trust domain: the role refuses its SPIFFE ID; Vault's words come back, with the
    // field, and nothing is stored.
    let (status, body) = cluster
        .put(
            0,
            "/meshes/default/meshidentities/elsewhere",
            &vault_identity("elsewhere", bao.addr(), "elsewhere.example"),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    let text = body.to_string();
    assert!(text.contains("spec.provider.vault"), "{text}");
    assert!(
        text.contains("spiffe://elsewhere.example/workload/mosaic-validation"),
        "{text}"
    );
    assert!(
        text.contains("pki_int/sign/example-dot-com"),
        "Vault's path: {text}"
    );
    let (status, _) = cluster
        .get(0, "/meshes/default/meshidentities/elsewhere")
        .await?;
    assert_eq!(status, 404, "nothing stored");
    Ok(())
}

/// Kuma's rule: a self-signed Bundled CA needs insecureAllowSelfSigned: true; the CA's Secrets
/// must exist and load.
#[tokio::test]
async fn a_self_signed_bundled_ca_needs_insecure_allow_self_signed() -> anyhow::Result<()> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    cluster
        .put(0, "/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    let identity = |allow: bool| {
        format!(
            "type: MeshIdentity\nname: provided\nmesh: default\nspec:\n  selector: {{ dataplane: {{ matchLabels: {{}} }} }}\n  provider:\n    type: Bundled\n    bundled:\n      insecureAllowSelfSigned: {allow}\n      ca:\n        certificate: {{ type: Secret, secretRef: {{ kind: Secret, name: ca-cert }} }}\n        privateKey: {{ type: Secret, secretRef: {{ kind: Secret, name: ca-key }} }}\n"
        )
    };
    // The Secrets are missing: named.
    let (status, body) = cluster
        .put(
            0,
            "/meshes/default/meshidentities/provided",
            &identity(true),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("\\\"ca-cert\\\" not found"),
        "{body}"
    );
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key)?.pem();
    for (name, value) in [("ca-cert", cert.clone()), ("ca-key", key.serialize_pem())] {
        let data = base64::engine::general_purpose::STANDARD.encode(value);
        cluster
            .put(
                0,
                &format!("/meshes/default/secrets/{name}"),
                &format!("data: {data}\n"),
            )
            .await?;
    }
    let (status, body) = cluster
        .put(
            0,
            "/meshes/default/meshidentities/provided",
            &identity(false),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("spec.provider.bundled.insecureAllowSelfSigned")
            && text.contains("self-signed certificates are not allowed"),
        "{text}"
    );
    let (status, body) = cluster
        .put(
            0,
            "/meshes/default/meshidentities/provided",
            &identity(true),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    Ok(())
}
