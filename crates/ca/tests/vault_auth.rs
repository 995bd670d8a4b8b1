//! Every OpenBao-supported way of reaching and authenticating to Vault: AppRole, TLS client
//! certificate over TLS with serverName, Kubernetes service account, a Vault Agent, namespaces,
//! caCert/serverName/skipVerify, and the token lifecycle (renewal, re-login at max TTL).

mod support;

use std::time::{Duration, Instant};

use mosaic_ca::vault::VaultCa;
use mosaic_core::{
    ca::CaBackend,
    datasource::StaticSecrets,
    resource::mesh::{BackendConf, MtlsBackend},
};
use mosaic_testkit::{
    FakeKubernetesApi, KubernetesAuth, OpenBao, PkiVerb, SEED_MOUNT, SEED_POLICY_HCL,
    SEED_POLICY_NAME, SEED_ROLE, TLS_SERVER_NAME, TestCa, TlsListener, TokenSpec, pki_policy,
};
use serde_json::{Value, json};
use support::*;

const HOUR: Duration = Duration::from_secs(3600);

async fn seed_pki(bao: &OpenBao) -> anyhow::Result<String> {
    let root = bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    bao.write_policy(SEED_POLICY_NAME, SEED_POLICY_HCL).await?;
    Ok(root)
}

fn conf(address: &str, auth: Value) -> Value {
    json!({"fromCp": {"address": address, "pki": SEED_MOUNT, "role": SEED_ROLE, "auth": auth}})
}

/// Builds the Vault backend directly, to read its token status.
async fn vault_ca(b: &MtlsBackend, secrets: StaticSecrets) -> anyhow::Result<VaultCa> {
    let BackendConf::Vault(c) = b.typed_conf()? else {
        anyhow::bail!("not vault")
    };
    Ok(VaultCa::new("default", b, &c, std::sync::Arc::new(secrets)).await?)
}

async fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn approle_login_issues_and_logs_in_again_at_max_ttl() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    let root = seed_pki(&bao).await?;
    let creds = bao
        .enable_approle("approle", &[SEED_POLICY_NAME], "4s", "8s")
        .await?;
    let auth =
        json!({"approle": {"roleId": creds.role_id, "secretId": {"secret": "approle-secret"}}});
    let b = backend("vault-1", "vault", conf(bao.addr(), auth), "1h");
    let ca = vault_ca(
        &b,
        StaticSecrets::new().with("default", "approle-secret", creds.secret_id.clone()),
    )
    .await?;
    let cert = ca.issue(&request("web", &[], HOUR)).await?;
    verify(&cert, std::slice::from_ref(&root));
    assert_eq!(ca.token_status().logins, 1);
    // The token is renewed until it reaches token_max_ttl, then replaced by a new login.
    wait_for("a second login at max TTL", Duration::from_secs(60), || {
        ca.token_status().logins >= 2
    })
    .await;
    let status = ca.token_status();
    assert!(status.renewals >= 1, "{status:?}");
    assert_eq!(status.method, "approle");
    assert!(status.last_error.is_none(), "{status:?}");
    verify(&ca.issue(&request("web", &[], HOUR)).await?, &[root]);
    Ok(())
}

#[tokio::test]
async fn renewable_token_is_renewed_before_it_expires() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    let root = seed_pki(&bao).await?;
    let token = bao
        .create_token(&TokenSpec {
            ttl: Some("6s".into()),
            explicit_max_ttl: Some("1h".into()),
            ..TokenSpec::new(&[SEED_POLICY_NAME])
        })
        .await?;
    let auth = json!({"token": {"inlineString": token}});
    let ca = vault_ca(
        &backend("vault-1", "vault", conf(bao.addr(), auth), "1h"),
        StaticSecrets::new(),
    )
    .await?;
    ca.issue(&request("web", &[], HOUR)).await?;
    let first = ca.token_status();
    assert!(
        first.renewable
            && first
                .ttl_remaining()
                .is_some_and(|t| t <= Duration::from_secs(6)),
        "{first:?}"
    );
    wait_for("two renewals", Duration::from_secs(60), || {
        ca.token_status().renewals >= 2
    })
    .await;
    // Well past the original 6s TTL, the same token still works.
    let cert = ca.issue(&request("web", &[], HOUR)).await?;
    verify(&cert, &[root]);
    let status = ca.token_status();
    assert_eq!(
        status.logins, 1,
        "a static token is never replaced: {status:?}"
    );
    assert!(status.ttl_remaining().is_some_and(|t| t > Duration::ZERO));
    Ok(())
}

#[tokio::test]
async fn cert_auth_over_tls_with_server_name_and_ca_cert() -> anyhow::Result<()> {
    let test_ca = TestCa::new("Mosaic test CA")?;
    let bao = OpenBao::start_with_tls(TlsListener::from_test_ca(&test_ca)?).await?;
    let root = seed_pki(&bao).await?;
    bao.enable_cert_auth(test_ca.cert_pem(), &[SEED_POLICY_NAME])
        .await?;
    let client = test_ca.client_cert("mosaic-zone")?;
    let tls_addr = bao
        .tls_addr()
        .ok_or_else(|| anyhow::anyhow!("no TLS listener"))?;
    let mut c = conf(
        &tls_addr,
        json!({"tls": {"clientCert": {"inlineString": client.cert_pem}, "clientKey": {"secret": "client-key"}}}),
    );
    c["fromCp"]["tls"] =
        json!({"caCert": {"inlineString": test_ca.cert_pem()}, "serverName": TLS_SERVER_NAME});
    let secrets = StaticSecrets::new().with("default", "client-key", client.key_pem.clone());
    let ca = vault_ca(
        &backend("vault-1", "vault", c.clone(), "1h"),
        secrets.clone(),
    )
    .await?;
    verify(
        &ca.issue(&request("web", &[], HOUR)).await?,
        std::slice::from_ref(&root),
    );
    assert_eq!(ca.token_status().method, "cert");

    // Dialled by IP without serverName: Vault's certificate does not name 127.0.0.1.
    let mut no_name = c.clone();
    no_name["fromCp"]["tls"]["serverName"] = json!("");
    let err = build(
        &backend("vault-1", "vault", no_name.clone(), "1h"),
        secrets.clone(),
    )
    .await?
    .validate()
    .await
    .expect_err("name mismatch")
    .to_string();
    assert!(
        err.contains("could not reach Vault") && err.contains("serverName"),
        "{err}"
    );
    // A CA that did not sign Vault's certificate.
    let other = TestCa::new("Someone else")?;
    let mut wrong_ca = c.clone();
    wrong_ca["fromCp"]["tls"]["caCert"] = json!({"inlineString": other.cert_pem()});
    let err = build(
        &backend("vault-1", "vault", wrong_ca, "1h"),
        secrets.clone(),
    )
    .await?
    .validate()
    .await
    .expect_err("unknown issuer")
    .to_string();
    assert!(err.contains("tls.caCert"), "{err}");
    // skipVerify connects whatever the certificate says (development only).
    let mut skip = no_name;
    skip["fromCp"]["tls"] = json!({"skipVerify": true});
    build(&backend("vault-1", "vault", skip, "1h"), secrets.clone())
        .await?
        .validate()
        .await?;
    // A client certificate Vault does not trust is refused at login, quoting Vault.
    let stranger = other.client_cert("intruder")?;
    let mut bad_client = c;
    bad_client["fromCp"]["auth"]["tls"]["clientCert"] = json!({"inlineString": stranger.cert_pem});
    let secrets = StaticSecrets::new().with("default", "client-key", stranger.key_pem.clone());
    let err = build(&backend("vault-1", "vault", bad_client, "1h"), secrets)
        .await?
        .validate()
        .await
        .expect_err("untrusted client")
        .to_string();
    assert!(
        err.contains("log in with cert auth at auth/cert") && err.contains("HTTP"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn kubernetes_service_account_login() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    let root = seed_pki(&bao).await?;
    let kube = FakeKubernetesApi::start("mesh-system", "mosaic-zone").await?;
    bao.enable_kubernetes_auth(&KubernetesAuth::new(
        &kube.addr(),
        &[SEED_POLICY_NAME],
        "mesh-system",
        "mosaic-zone",
    ))
    .await?;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, kube.jwt())?;
    let auth = json!({"kubernetes": {"role": "mosaic", "serviceAccountTokenFile": token_file.to_string_lossy()}});
    let ca = vault_ca(
        &backend("vault-1", "vault", conf(bao.addr(), auth.clone()), "1h"),
        StaticSecrets::new(),
    )
    .await?;
    verify(&ca.issue(&request("web", &[], HOUR)).await?, &[root]);
    assert!(
        kube.review_count() >= 1,
        "Vault asked Kubernetes to review the token"
    );

    // A wrong role and a missing token file are clear errors.
    let mut wrong = auth.clone();
    wrong["kubernetes"]["role"] = json!("nope");
    let err = build(
        &backend("vault-1", "vault", conf(bao.addr(), wrong), "1h"),
        StaticSecrets::new(),
    )
    .await?
    .validate()
    .await
    .expect_err("role")
    .to_string();
    assert!(
        err.contains("auth/kubernetes") && err.contains("HTTP"),
        "{err}"
    );
    let mut missing = auth;
    missing["kubernetes"]["serviceAccountTokenFile"] = json!("/nonexistent/token");
    let err = build(
        &backend("vault-1", "vault", conf(bao.addr(), missing), "1h"),
        StaticSecrets::new(),
    )
    .await?
    .validate()
    .await
    .expect_err("file")
    .to_string();
    assert!(
        err.contains("serviceAccountTokenFile") && err.contains("/nonexistent/token"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_vault_agent_holds_the_token() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    let root = seed_pki(&bao).await?;
    let token = bao.seed_policy_and_token().await?;
    let agent = bao.start_agent(&token).await?;
    let c = json!({"fromCp": {"address": bao.addr(), "agentAddress": agent.addr(), "pki": SEED_MOUNT, "role": SEED_ROLE}});
    let ca = vault_ca(&backend("vault-1", "vault", c, "1h"), StaticSecrets::new()).await?;
    let cert = ca.issue(&request("web", &[], HOUR)).await?;
    verify(&cert, &[root]);
    assert_eq!(ca.token_status().method, "agent");
    Ok(())
}

#[tokio::test]
async fn namespace_is_sent_on_login_and_pki_calls() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    bao.create_namespace("team-a").await?;
    let ns = bao.with_namespace("team-a");
    let root = ns.setup_root_pki(SEED_MOUNT, "default").await?;
    ns.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    ns.write_policy(SEED_POLICY_NAME, SEED_POLICY_HCL).await?;
    let creds = ns
        .enable_approle("approle", &[SEED_POLICY_NAME], "1h", "2h")
        .await?;
    let auth = json!({"approle": {"roleId": creds.role_id, "secretId": {"inlineString": creds.secret_id}}});
    let mut c = conf(bao.addr(), auth);
    c["fromCp"]["namespace"] = json!("team-a");
    let ca = build(
        &backend("vault-1", "vault", c.clone(), "1h"),
        StaticSecrets::new(),
    )
    .await?;
    verify(&ca.issue(&request("web", &[], HOUR)).await?, &[root]);
    assert_eq!(ca.root_certs().await?.len(), 1);
    // Without the namespace, neither the AppRole nor the PKI mount exist.
    c["fromCp"]["namespace"] = json!("");
    let err = build(&backend("vault-1", "vault", c, "1h"), StaticSecrets::new())
        .await?
        .validate()
        .await
        .expect_err("no namespace")
        .to_string();
    assert!(err.contains("auth/approle"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_revoked_login_token_is_replaced_transparently() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    seed_pki(&bao).await?;
    bao.write_policy(
        "both",
        &pki_policy(SEED_MOUNT, SEED_ROLE, &[PkiVerb::Issue]),
    )
    .await?;
    let creds = bao.enable_approle("approle", &["both"], "1h", "2h").await?;
    let auth = json!({"approle": {"roleId": creds.role_id, "secretId": {"inlineString": creds.secret_id}}});
    let ca = vault_ca(
        &backend("vault-1", "vault", conf(bao.addr(), auth), "1h"),
        StaticSecrets::new(),
    )
    .await?;
    ca.issue(&request("web", &[], HOUR)).await?;
    // Revoke every token of the AppRole (as an operator would after a leak).
    bao.write("sys/leases/revoke-prefix/auth/approle/login", json!({}))
        .await?;
    ca.issue(&request("web", &[], HOUR)).await?;
    assert_eq!(ca.token_status().logins, 2);
    Ok(())
}
