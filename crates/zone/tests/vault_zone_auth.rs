//! Per-zone Vault auth (seed 002) against a real OpenBao set up as seed 002 writes it: root `pki`
//! and intermediate `pki_int`, the sign role, Kubernetes auth per cluster at `auth/<cluster>` with
//! a fake TokenReview API per zone that accepts only that zone's service-account token. One Mesh
//! whose backend says `mountPath: "{{ zone }}"` serves both zones; a zone presenting the other
//! zone's token is refused with Vault's message quoted. The role exactly as the seed writes it
//! (key_type rsa by default) gives RSA-2048 leaves. A zone holding its own credentials
//! (`[[vault_auth]]`: a token file) issues for a Mesh that sets no `auth`. Seed 002 with a Vault
//! MeshIdentity through the zone's issuer here; as processes (global, zone, `mosaic-dp`) in
//! `workload_identity.rs`.

use std::{path::Path, sync::Arc};

use mosaic_core::{ca::identity, resource::parse::from_value, template::Tags};
use mosaic_runtime::config::LoadConfig as _;
use mosaic_testkit::{
    FakeKubernetesApi, OpenBao, SEED002_AUTH_ROLE, SEED002_PKI, SEED002_POLICY, SEED002_ROLE,
    SEED002_SA_NAMESPACE, SEED002_SERVICE_ACCOUNT, TokenSpec, ensure_crypto_provider, verify_chain,
};
use mosaic_zone::{
    config::{VaultAuthConfig, ZoneConfig},
    issuer::{Issuer, IssuerSettings, ZoneVault},
    store::{KdsItem, SyncBatch, ZoneStore},
};
use serde_json::{Value, json};

const MESH: &str = "default";
/// The Mesh's classic SANs, which the role must allow (seed 002's own value is its trust domain).
const URI_SANS: &str = "spiffe://default/*,kuma://*";

fn put(store: &ZoneStore, value: Value) {
    let resource = from_value(value).expect("valid resource");
    store
        .apply_sync(&SyncBatch {
            upserts: vec![KdsItem::from_resource(&resource, 1)],
            removes: vec![],
        })
        .expect("sync applied");
}

/// Mesh `default` with one enabled vault backend `vault-1` (seed 002: the sign endpoint of
/// `pki_int/sign/example-dot-com`), its `conf.fromCp.auth` as given (`None`: not set).
fn put_mesh(store: &ZoneStore, addr: &str, auth: Option<Value>) {
    let mut from_cp = json!({
        "address": addr,
        "pki": SEED002_PKI,
        "role": SEED002_ROLE,
        "mode": "sign",
        "commonName": "{{ tag \"kuma.io/service\" }}.svc",
    });
    if let Some(a) = auth {
        from_cp["auth"] = a;
    }
    put(
        store,
        json!({"type": "Mesh", "name": MESH, "mtls": {"enabledBackend": "vault-1", "backends": [
            {"name": "vault-1", "type": "vault", "dpCert": {"rotation": {"expiration": "24h"}},
             "conf": {"fromCp": from_cp}}
        ]}}),
    );
}

fn tags(service: &str) -> Tags {
    let mut t = Tags::new();
    t.entry("kuma.io/service".into())
        .or_default()
        .insert(service.into());
    t
}

/// The issuer of zone `zone` over its own store in `dir`, bringing `vault`.
fn zone_issuer(dir: &Path, vault: ZoneVault) -> anyhow::Result<(Arc<ZoneStore>, Issuer)> {
    let store = Arc::new(ZoneStore::open(dir)?);
    let settings = IssuerSettings {
        vault,
        ..IssuerSettings::default()
    };
    let issuer = Issuer::new(store.clone(), None, settings);
    Ok((store, issuer))
}

fn named(zone: &str) -> ZoneVault {
    ZoneVault {
        zone: Some(zone.to_string()),
        ..ZoneVault::default()
    }
}

#[tokio::test]
async fn seed_002_two_zones_log_in_at_their_own_kubernetes_mount() -> anyhow::Result<()> {
    ensure_crypto_provider();
    let bao = OpenBao::start().await?;
    // The seed's role as written (key_type rsa by default: the zones read it and make RSA keys).
    let pki = bao.setup_seed002_pki(URI_SANS, Value::Null).await?;
    // One Kubernetes API per cluster, each accepting only its own service account's token.
    let east_kube = FakeKubernetesApi::start(SEED002_SA_NAMESPACE, SEED002_SERVICE_ACCOUNT).await?;
    let west_kube = FakeKubernetesApi::start(SEED002_SA_NAMESPACE, SEED002_SERVICE_ACCOUNT).await?;
    assert_ne!(east_kube.jwt(), west_kube.jwt());
    bao.enable_seed002_cluster("east", &east_kube.addr())
        .await?;
    bao.enable_seed002_cluster("west", &west_kube.addr())
        .await?;

    // Each zone's pod sees its own service-account token at the same path; here the zones take
    // turns at one file (a zone reads it when it logs in).
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("token");
    let auth = json!({"kubernetes": {
        "mountPath": "{{ zone }}",
        "role": SEED002_AUTH_ROLE,
        "serviceAccountTokenFile": token_file.to_string_lossy(),
    }});

    let mut certs = Vec::new();
    for (zone, kube) in [("east", &east_kube), ("west", &west_kube)] {
        std::fs::write(&token_file, kube.jwt())?;
        let dir = tempfile::tempdir()?;
        let (store, issuer) = zone_issuer(dir.path(), named(zone))?;
        put_mesh(&store, bao.addr(), Some(auth.clone()));
        let cert = issuer.certificate(MESH, "web-1", &tags("web")).await?;
        // Leaf + pki_int's intermediate, verifying to the seed's root (CA_cert.crt).
        verify_chain(&cert.chain_pem, std::slice::from_ref(&pki.root_pem))?;
        let info = identity::inspect_pem(&cert.chain_pem)?;
        assert!(
            info.uri_sans.contains(&"spiffe://default/web".to_string()),
            "{zone}: {:?}",
            info.uri_sans
        );
        assert_eq!(info.common_name.as_deref(), Some("web.svc"));
        let bundle = issuer.trust_bundle(MESH).await;
        assert!(
            bundle.iter().any(|p| p.trim() == pki.root_pem.trim()),
            "{zone}: the trust bundle holds the seed's root"
        );
        certs.push((dir, store, issuer, cert));
    }
    assert!(east_kube.review_count() >= 1, "east logged in at auth/east");
    assert!(west_kube.review_count() >= 1, "west logged in at auth/west");
    assert_ne!(certs[0].3.serial, certs[1].3.serial);

    // Zone east presenting west's token: its mount asks east's API, which does not know it.
    std::fs::write(&token_file, west_kube.jwt())?;
    let dir = tempfile::tempdir()?;
    let (store, issuer) = zone_issuer(dir.path(), named("east"))?;
    put_mesh(&store, bao.addr(), Some(auth.clone()));
    let err = issuer
        .certificate(MESH, "web-2", &tags("web"))
        .await
        .expect_err("west's token is not east's")
        .to_string();
    assert!(
        err.contains("log in with kubernetes auth at auth/east") && err.contains("HTTP 403"),
        "{err}"
    );
    assert!(
        err.contains("permission denied"),
        "Vault's message quoted: {err}"
    );
    assert!(!err.contains(west_kube.jwt()), "the token leaked: {err}");

    // Outside a zone, `{{ zone }}` cannot expand: the error names the field.
    let dir = tempfile::tempdir()?;
    let (store, issuer) = zone_issuer(dir.path(), ZoneVault::default())?;
    put_mesh(&store, bao.addr(), Some(auth));
    let err = issuer
        .certificate(MESH, "web-3", &tags("web"))
        .await
        .expect_err("no zone")
        .to_string();
    assert!(
        err.contains("conf.fromCp.auth.kubernetes.mountPath: {{ zone }} expands to a zone's name"),
        "{err}"
    );
    Ok(())
}

/// The leaf's public-key algorithm and size in bits.
fn leaf_key(chain_pem: &str) -> anyhow::Result<(String, usize)> {
    use x509_parser::{prelude::FromDer as _, public_key::PublicKey};
    let der = identity::pem_to_ders(chain_pem)?.remove(0);
    let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(&der)?;
    Ok(match leaf.public_key().parsed()? {
        PublicKey::RSA(k) => ("rsa".to_string(), k.key_size()),
        PublicKey::EC(p) => ("ec".to_string(), p.key_size()),
        other => (format!("{other:?}"), 0),
    })
}

#[tokio::test]
async fn seed_002_role_as_written_gives_the_zone_an_rsa_leaf_that_verifies_to_the_seed_root()
-> anyhow::Result<()> {
    ensure_crypto_provider();
    let bao = OpenBao::start().await?;
    // The role exactly as the seed writes it: key_type stays Vault's default, rsa (2048 bits).
    let pki = bao.setup_seed002_pki(URI_SANS, Value::Null).await?;
    let kube = FakeKubernetesApi::start(SEED002_SA_NAMESPACE, SEED002_SERVICE_ACCOUNT).await?;
    bao.enable_seed002_cluster("east", &kube.addr()).await?;
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, kube.jwt())?;
    let dir = tempfile::tempdir()?;
    let (store, issuer) = zone_issuer(dir.path(), named("east"))?;
    put_mesh(
        &store,
        bao.addr(),
        Some(
            json!({"kubernetes": {"mountPath": "{{ zone }}", "role": SEED002_AUTH_ROLE,
            "serviceAccountTokenFile": token_file.to_string_lossy()}}),
        ),
    );
    // The seed's policy reads `pki_int*`, so the zone reads the role and makes the RSA-2048
    // key it asks for; the key never leaves the zone.
    let cert = issuer.certificate(MESH, "web-1", &tags("web")).await?;
    verify_chain(&cert.chain_pem, std::slice::from_ref(&pki.root_pem))?;
    assert_eq!(leaf_key(&cert.chain_pem)?, ("rsa".to_string(), 2048));
    let key = rcgen::KeyPair::from_pem(cert.key_pem.expose())?;
    assert!(key.is_compatible(&rcgen::PKCS_RSA_SHA256));
    use rcgen::PublicKeyData as _;
    let leaf_der = identity::pem_to_ders(&cert.chain_pem)?.remove(0);
    assert_eq!(
        identity::spki_of(&leaf_der)?,
        key.subject_public_key_info(),
        "the zone's key is the leaf's"
    );
    let info = identity::inspect_pem(&cert.chain_pem)?;
    assert!(
        info.uri_sans.contains(&"spiffe://default/web".to_string()),
        "{:?}",
        info.uri_sans
    );
    assert_eq!(info.common_name.as_deref(), Some("web.svc"));
    assert!(kube.review_count() >= 1, "east logged in at auth/east");

    // A token whose policy may sign but not read the role: the zone cannot learn the key type,
    // sends an EC P-256 CSR as before, and Vault's refusal comes with the hint.
    bao.write_policy(
        "sign-only",
        &format!(
            "path \"{SEED002_PKI}/sign/{SEED002_ROLE}\" {{ capabilities = [\"create\", \"update\"] }}\n"
        ),
    )
    .await?;
    let token = bao.create_token(&TokenSpec::new(&["sign-only"])).await?;
    let token_file = secrets.path().join("vault-token");
    std::fs::write(&token_file, &token)?;
    let dir = tempfile::tempdir()?;
    let (store, issuer) = zone_issuer(dir.path(), named("east"))?;
    put_mesh(
        &store,
        bao.addr(),
        Some(json!({"token": {"file": token_file.to_string_lossy()}})),
    );
    let err = issuer
        .certificate(MESH, "web-1", &tags("web"))
        .await
        .expect_err("the role wants rsa keys and the token cannot read it")
        .to_string();
    assert!(
        err.contains("role requires keys of type rsa")
            && err.contains("set key_type=ec (or any)")
            && err.contains(&format!(
                "grant [\"read\"] on {SEED002_PKI}/roles/{SEED002_ROLE}"
            )),
        "{err}"
    );
    assert!(!err.contains(&token), "the token leaked: {err}");
    Ok(())
}

#[tokio::test]
async fn seed_002_verbatim_with_a_vault_meshidentity_gives_domain_name_identities()
-> anyhow::Result<()> {
    ensure_crypto_provider();
    let bao = OpenBao::start().await?;
    // Seed 002 step 1b word for word, the role's allowed_uri_sans included.
    let pki = bao
        .setup_seed002_pki("spiffe://domain.name/*", Value::Null)
        .await?;
    let kube = FakeKubernetesApi::start(SEED002_SA_NAMESPACE, SEED002_SERVICE_ACCOUNT).await?;
    bao.enable_seed002_cluster("east", &kube.addr()).await?;
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, kube.jwt())?;
    let dir = tempfile::tempdir()?;
    let (store, issuer) = zone_issuer(dir.path(), named("east"))?;
    put(&store, json!({"type": "Mesh", "name": MESH}));
    put(
        &store,
        json!({"type": "MeshIdentity", "name": "domain-name", "mesh": MESH, "spec": {
            "selector": {"dataplane": {"matchLabels": {}}},
            "spiffeID": {"trustDomain": "domain.name", "path": "/ns/default/sa/web"},
            "provider": {"type": "Vault", "vault": {
                "address": bao.addr(),
                "pki": SEED002_PKI,
                "role": SEED002_ROLE,
                "mode": "sign",
                "auth": {"kubernetes": {"mountPath": "{{ zone }}", "role": SEED002_AUTH_ROLE,
                    "serviceAccountTokenFile": token_file.to_string_lossy()}},
            }},
        }}),
    );
    let cert = issuer.certificate(MESH, "web-1", &tags("web")).await?;
    verify_chain(&cert.chain_pem, std::slice::from_ref(&pki.root_pem))?;
    let info = identity::inspect_pem(&cert.chain_pem)?;
    assert_eq!(
        info.uri_sans,
        ["spiffe://domain.name/ns/default/sa/web"],
        "the SPIFFE ID is the only URI SAN"
    );
    assert_eq!(leaf_key(&cert.chain_pem)?, ("rsa".to_string(), 2048));
    let bundle = issuer.trust_bundle(MESH).await;
    assert!(
        bundle.iter().any(|p| p.trim() == pki.root_pem.trim()),
        "the trust bundle holds the seed's root: {bundle:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_zone_holding_its_own_token_file_issues_for_a_mesh_without_auth() -> anyhow::Result<()> {
    ensure_crypto_provider();
    let bao = OpenBao::start().await?;
    let pki = bao.setup_seed002_pki(URI_SANS, Value::Null).await?;
    let token = bao.create_token(&TokenSpec::new(&[SEED002_POLICY])).await?;
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("vault-token");
    std::fs::write(&token_file, format!("{token}\n"))?;

    // The zone's config, as an operator writes it.
    let toml = format!(
        "zone = \"east\"\n[[vault_auth]]\nmesh = \"default\"\nbackend = \"vault-1\"\ntoken_file = {:?}\n",
        token_file.to_string_lossy()
    );
    let config_file = secrets.path().join("zone.toml");
    std::fs::write(&config_file, toml)?;
    let config = ZoneConfig::load_from(Some(&config_file), Vec::new())?;
    assert_eq!(
        config.vault_auth,
        [VaultAuthConfig {
            mesh: "default".into(),
            backend: "vault-1".into(),
            token_file: Some(token_file.clone()),
            approle: None,
            kubernetes: None,
        }]
    );
    let dir = tempfile::tempdir()?;
    let (store, issuer) = zone_issuer(dir.path(), ZoneVault::from_config(&config))?;
    put_mesh(&store, bao.addr(), None);
    let cert = issuer.certificate(MESH, "web-1", &tags("web")).await?;
    verify_chain(&cert.chain_pem, std::slice::from_ref(&pki.root_pem))?;

    // The Mesh the zone received holds no credential at all.
    let mesh = store
        .get(&mosaic_zone::store::StoreKey::mesh(MESH))?
        .expect("mesh stored");
    let stored = serde_json::to_string(&mesh.to_resource()?.to_universal())?;
    assert!(
        !stored.contains(&token) && !stored.contains("auth"),
        "{stored}"
    );

    // A zone without its own credentials says what to add.
    let dir = tempfile::tempdir()?;
    let (store, issuer) = zone_issuer(dir.path(), named("west"))?;
    put_mesh(&store, bao.addr(), None);
    let err = issuer
        .certificate(MESH, "web-1", &tags("web"))
        .await
        .expect_err("west holds no credentials")
        .to_string();
    assert!(
        err.contains("zone \"west\"'s config holds no credentials")
            && err
                .contains("[[vault_auth]] entry with mesh = \"default\" and backend = \"vault-1\""),
        "{err}"
    );

    // A token file that cannot be read is named as the zone's setting, never the Mesh's.
    let mut broken = config.clone();
    broken.vault_auth[0].token_file = Some("/nonexistent/vault-token".into());
    let dir = tempfile::tempdir()?;
    let (store, issuer) = zone_issuer(dir.path(), ZoneVault::from_config(&broken))?;
    put_mesh(&store, bao.addr(), None);
    let err = issuer
        .certificate(MESH, "web-1", &tags("web"))
        .await
        .expect_err("no such file")
        .to_string();
    assert!(
        err.contains("the zone's [[vault_auth]] token_file")
            && err.contains("/nonexistent/vault-token"),
        "{err}"
    );
    Ok(())
}
