//! The Vault backend against real OpenBao servers set up as seed 000 says: issue and sign modes,
//! root and intermediate layouts, and validation by test issuance with clear, quoted errors.

mod support;

use std::time::Duration;

use mosaic_core::{
    ca::identity::{inspect_pem, pem_to_ders},
    datasource::StaticSecrets,
};
use mosaic_testkit::{
    OpenBao, PkiVerb, SEED_MOUNT, SEED_POLICY_NAME, SEED_ROLE, SEED002_PKI, SEED002_POLICY,
    SEED002_ROLE, TokenSpec, pki_policy,
};
use serde_json::json;
use support::*;

const DAY: Duration = Duration::from_secs(86_400);

/// A seed-000 root-layout OpenBao with the seed role, policy and a token for it.
async fn seed_root() -> anyhow::Result<(OpenBao, String, String)> {
    let bao = OpenBao::start().await?;
    let root = bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    let token = bao.seed_policy_and_token().await?;
    Ok((bao, root, token))
}

fn vault_conf(addr: &str, token: &str) -> serde_json::Value {
    json!({"fromCp": {
        "address": addr,
        "pki": SEED_MOUNT,
        "role": SEED_ROLE,
        "commonName": "{{ tag \"kuma.io/service\" | replace \"_\" \"-\" }}.mesh",
        "auth": {"token": {"secret": "token-1"}}
    }})
    .as_object()
    .map(|o| {
        let _ = token;
        serde_json::Value::Object(o.clone())
    })
    .unwrap_or_default()
}

fn secrets(token: &str) -> StaticSecrets {
    StaticSecrets::new().with("default", "token-1", token)
}

#[tokio::test]
async fn root_layout_issue_mode_gives_the_contract_certificate() -> anyhow::Result<()> {
    let (bao, root, token) = seed_root().await?;
    let b = backend("vault-1", "vault", vault_conf(bao.addr(), &token), "24h");
    let ca = build(&b, secrets(&token)).await?;
    ca.validate().await?;

    let req = request(
        "my_backend",
        &[("version", "v1"), ("kuma.io/zone", "east")],
        DAY,
    );
    let cert = ca.issue(&req).await?;
    let info = inspect_pem(&cert.chain_pem)?;
    assert_eq!(
        info.common_name.as_deref(),
        Some("my-backend.mesh"),
        "commonName template with replace"
    );
    let mut want = expected_sans("default", &req.tags);
    let mut got = info.uri_sans.clone();
    want.sort();
    got.sort();
    assert_eq!(
        got, want,
        "URI SANs are spiffe://<mesh>/<service> and kuma://<tag>/<value>"
    );
    assert!(
        info.dns_sans.is_empty(),
        "the CN is not copied into DNS SANs: {:?}",
        info.dns_sans
    );
    assert!(
        info.server_auth && info.client_auth,
        "EKU serverAuth+clientAuth"
    );
    assert!(!info.is_ca);
    let lifetime = info.not_after - time::OffsetDateTime::now_utc();
    assert!(
        lifetime > time::Duration::hours(23)
            && lifetime <= time::Duration::hours(24) + time::Duration::minutes(1),
        "{lifetime}"
    );
    assert!(
        cert.key_pem.expose().contains("BEGIN PRIVATE KEY"),
        "issue mode returns Vault's PKCS#8 key"
    );
    assert_eq!(
        pem_to_ders(&cert.chain_pem)?.len(),
        1,
        "root layout: the chain is the leaf alone"
    );

    let roots = ca.root_certs().await?;
    assert_eq!(roots.len(), 1);
    assert_eq!(
        pem_to_ders(&roots[0])?,
        pem_to_ders(&root)?,
        "the trust bundle is Vault's root"
    );
    verify(&cert, &roots);
    assert!(
        !format!("{ca:?}").contains(&token),
        "Debug must not print the token"
    );
    Ok(())
}

#[tokio::test]
async fn intermediate_layout_returns_the_chain_up_to_the_root() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    let pki = bao
        .setup_intermediate_pki("pki", SEED_MOUNT, "default")
        .await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    let token = bao.seed_policy_and_token().await?;
    let b = backend("vault-1", "vault", vault_conf(bao.addr(), &token), "1d");
    let ca = build(&b, secrets(&token)).await?;
    let cert = ca.issue(&request("web", &[], DAY)).await?;

    let chain = pem_to_ders(&cert.chain_pem)?;
    assert_eq!(chain.len(), 2, "leaf + intermediate");
    assert_eq!(chain[1], pem_to_ders(&pki.intermediate_pem)?[0]);
    let roots = ca.root_certs().await?;
    let bundle: Vec<Vec<u8>> = roots
        .iter()
        .flat_map(|r| pem_to_ders(r).unwrap_or_default())
        .collect();
    assert_eq!(
        bundle,
        [
            pem_to_ders(&pki.intermediate_pem)?[0].clone(),
            pem_to_ders(&pki.root_pem)?[0].clone()
        ]
    );
    // Envoy trusts the organisation root alone and still accepts the chain.
    verify(&cert, std::slice::from_ref(&pki.root_pem));
    verify(&cert, &roots);
    Ok(())
}

#[tokio::test]
async fn sign_mode_makes_the_key_here_and_sends_only_a_csr() -> anyhow::Result<()> {
    let bao = OpenBao::start_with_audit(None).await?;
    let root = bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_role(
        SEED_MOUNT,
        "dp-sign",
        "default",
        json!({"key_type": "ec", "key_bits": 256}),
    )
    .await?;
    bao.write_policy(
        "sign-only",
        &pki_policy(SEED_MOUNT, "dp-sign", &[PkiVerb::Sign]),
    )
    .await?;
    let token = bao.create_token(&TokenSpec::new(&["sign-only"])).await?;
    let mut conf = vault_conf(bao.addr(), &token);
    conf["fromCp"]["role"] = json!("dp-sign");
    conf["fromCp"]["mode"] = json!("sign");
    let ca = build(&backend("vault-1", "vault", conf, "24h"), secrets(&token)).await?;
    ca.validate().await?;
    let cert = ca.issue(&request("web", &[], DAY)).await?;
    verify(&cert, &[root]);
    let key = rcgen::KeyPair::from_pem(cert.key_pem.expose())?;
    assert!(
        key.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256),
        "sign mode uses an EC P-256 key"
    );
    let info = inspect_pem(&cert.chain_pem)?;
    assert_eq!(info.common_name.as_deref(), Some("web.mesh"));
    // Nothing went to Vault's issue endpoint: the key was never made or seen there.
    assert_eq!(
        bao.count_audit_requests(&format!("{SEED_MOUNT}/issue/dp-sign"))?,
        0
    );
    assert!(bao.count_audit_requests(&format!("{SEED_MOUNT}/sign/dp-sign"))? >= 2);
    Ok(())
}

/// The leaf's public-key algorithm and size in bits, as a data plane's peer sees them.
fn leaf_key(cert: &mosaic_core::ca::IssuedCert) -> anyhow::Result<(String, usize)> {
    use x509_parser::{prelude::FromDer as _, public_key::PublicKey};
    let der = pem_to_ders(&cert.chain_pem)?.remove(0);
    let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(&der)?;
    Ok(match leaf.public_key().parsed()? {
        PublicKey::RSA(k) => ("rsa".to_string(), k.key_size()),
        PublicKey::EC(p) => ("ec".to_string(), p.key_size()),
        other => (format!("{other:?}"), 0),
    })
}

#[tokio::test]
async fn sign_mode_makes_the_key_the_role_asks_for_reading_the_role_once() -> anyhow::Result<()> {
    let bao = OpenBao::start_with_audit(None).await?;
    let root = bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_role(
        SEED_MOUNT,
        "dp-rsa",
        "default",
        json!({"key_type": "rsa", "key_bits": 2048}),
    )
    .await?;
    bao.create_role(
        SEED_MOUNT,
        "dp-ec",
        "default",
        json!({"key_type": "ec", "key_bits": 384}),
    )
    .await?;
    // Sign, and read the roles (as seed 002's `path "pki_int*" { ["read", "list"] }` grants).
    let mut policy = String::new();
    for role in ["dp-rsa", "dp-ec"] {
        policy.push_str(&pki_policy(SEED_MOUNT, role, &[PkiVerb::Sign]));
        policy.push_str(&format!(
            "\npath \"{SEED_MOUNT}/roles/{role}\" {{\n  capabilities = [\"read\"]\n}}\n"
        ));
    }
    bao.write_policy("sign-and-read", &policy).await?;
    let token = bao
        .create_token(&TokenSpec::new(&["sign-and-read"]))
        .await?;

    for (role, want, alg) in [
        ("dp-rsa", ("rsa", 2048), &rcgen::PKCS_RSA_SHA256),
        ("dp-ec", ("ec", 384), &rcgen::PKCS_ECDSA_P384_SHA384),
    ] {
        let mut conf = vault_conf(bao.addr(), &token);
        conf["fromCp"]["role"] = json!(role);
        conf["fromCp"]["mode"] = json!("sign");
        let ca = build(&backend("vault-1", "vault", conf, "24h"), secrets(&token)).await?;
        ca.validate().await?;
        let first = ca.issue(&request("web", &[], DAY)).await?;
        let second = ca.issue(&request("web", &[], DAY)).await?;
        for cert in [&first, &second] {
            verify(cert, std::slice::from_ref(&root));
            let (kind, bits) = leaf_key(cert)?;
            assert_eq!((kind.as_str(), bits), want, "{role}: the leaf's key");
            let key = rcgen::KeyPair::from_pem(cert.key_pem.expose())?;
            assert!(key.is_compatible(alg), "{role}: {:?}", key.algorithm());
            assert!(
                !format!("{:?}", cert.key_pem).contains("PRIVATE KEY"),
                "the key stays redacted"
            );
        }
        assert_ne!(first.key_pem.expose(), second.key_pem.expose());
        // One read of the role for the backend's validation and both issuances.
        let role_path = format!("{SEED_MOUNT}/roles/{role}");
        let reads = bao
            .audit_entries()?
            .iter()
            .filter(|e| {
                e["type"] == "request"
                    && e["request"]["path"] == role_path.as_str()
                    && e["request"]["operation"] == "read"
            })
            .count();
        assert_eq!(reads, 1, "{role}: the role is read once per backend");
        assert_eq!(
            bao.count_audit_requests(&format!("{SEED_MOUNT}/issue/{role}"))?,
            0,
            "{role}: the key is never made by Vault"
        );
    }

    // An operator changes the role the backend already read: Vault refuses the old key type,
    // the role is read again, and the CSR is made anew with the new key.
    let mut conf = vault_conf(bao.addr(), &token);
    conf["fromCp"]["role"] = json!("dp-ec");
    conf["fromCp"]["mode"] = json!("sign");
    let ca = build(&backend("vault-1", "vault", conf, "24h"), secrets(&token)).await?;
    assert_eq!(
        leaf_key(&ca.issue(&request("web", &[], DAY)).await?)?,
        ("ec".into(), 384)
    );
    bao.create_role(
        SEED_MOUNT,
        "dp-ec",
        "default",
        json!({"key_type": "rsa", "key_bits": 3072}),
    )
    .await?;
    let cert = ca.issue(&request("web", &[], DAY)).await?;
    verify(&cert, std::slice::from_ref(&root));
    assert_eq!(leaf_key(&cert)?, ("rsa".into(), 3072));
    Ok(())
}

#[tokio::test]
async fn seed_002_verbatim_gives_a_vault_meshidentity_domain_name_identities_in_sign_mode()
-> anyhow::Result<()> {
    // Seed 002 step 1b word for word: the role's allowed_uri_sans is the trust domain and its
    // key_type Vault's default (rsa); the policy is the seed's.
    let bao = OpenBao::start().await?;
    let pki = bao
        .setup_seed002_pki("spiffe://domain.name/*", serde_json::Value::Null)
        .await?;
    let token = bao.create_token(&TokenSpec::new(&[SEED002_POLICY])).await?;
    // A MeshIdentity with a Vault provider in mode sign and trust domain domain.name.
    let resource = mosaic_core::resource::parse::from_value(json!({
        "type": "MeshIdentity", "name": "domain-name", "mesh": "default",
        "spec": {
            "selector": {"dataplane": {"matchLabels": {}}},
            "spiffeID": {"trustDomain": "domain.name"},
            "provider": {"type": "Vault", "vault": {
                "address": bao.addr(),
                "pki": SEED002_PKI,
                "role": SEED002_ROLE,
                "mode": "sign",
                "auth": {"token": {"secret": "token-1"}},
            }},
        },
    }))?;
    let mosaic_core::resource::Spec::MeshIdentity(identity) = resource.spec else {
        anyhow::bail!("not a MeshIdentity: {:?}", resource.spec);
    };
    let provider = identity
        .spec
        .provider
        .and_then(|p| p.vault)
        .ok_or_else(|| anyhow::anyhow!("no provider.vault"))?;
    let (backend, conf) = mosaic_ca::identity::vault_parts("domain-name", &provider, DAY);
    let secrets: std::sync::Arc<dyn mosaic_core::datasource::SecretSource> =
        std::sync::Arc::new(secrets(&token));
    let ca = mosaic_ca::vault::VaultCa::new("default", &backend, &conf, secrets).await?;
    use mosaic_core::ca::{CaBackend as _, IssueRequest};
    let id = "spiffe://domain.name/workload/web";
    ca.validate_with(&IssueRequest::for_identity(id, DAY))
        .await?;
    let cert = ca.issue(&IssueRequest::for_identity(id, DAY)).await?;
    verify(&cert, std::slice::from_ref(&pki.root_pem));
    let info = inspect_pem(&cert.chain_pem)?;
    assert_eq!(info.uri_sans, [id], "the SPIFFE ID is the only URI SAN");
    assert_eq!(leaf_key(&cert)?, ("rsa".into(), 2048));
    // Outside the trust domain the seed's role refuses, and Vault is quoted.
    let err = ca
        .issue(&IssueRequest::for_identity(
            "spiffe://other.domain/workload/web",
            DAY,
        ))
        .await
        .expect_err("not domain.name")
        .to_string();
    assert!(
        err.contains(&format!("{SEED002_PKI}/sign/{SEED002_ROLE}")) && err.contains("HTTP 400"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn sign_mode_names_a_role_key_it_cannot_make() -> anyhow::Result<()> {
    let (bao, _root, _token) = seed_root().await?;
    bao.create_role(
        SEED_MOUNT,
        "dp-p521",
        "default",
        json!({"key_type": "ec", "key_bits": 521}),
    )
    .await?;
    let policy = format!(
        "{}\npath \"{SEED_MOUNT}/roles/dp-p521\" {{\n  capabilities = [\"read\"]\n}}\n",
        pki_policy(SEED_MOUNT, "dp-p521", &[PkiVerb::Sign])
    );
    bao.write_policy("p521", &policy).await?;
    let token = bao.create_token(&TokenSpec::new(&["p521"])).await?;
    let mut conf = vault_conf(bao.addr(), &token);
    conf["fromCp"]["role"] = json!("dp-p521");
    conf["fromCp"]["mode"] = json!("sign");
    let ca = build(&backend("vault-1", "vault", conf, "24h"), secrets(&token)).await?;
    let err = ca.validate().await.expect_err("no P-521 CSRs").to_string();
    assert!(
        err.contains(&format!("role {SEED_MOUNT}/roles/dp-p521"))
            && err.contains("EC keys of 521 bits")
            && err.contains("mode issue"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn validation_refuses_what_cannot_issue_and_quotes_vault() -> anyhow::Result<()> {
    let (bao, _root, token) = seed_root().await?;
    let check = |conf: serde_json::Value, secrets: StaticSecrets, expiration: &'static str| async move {
        let b = backend("vault-1", "vault", conf, expiration);
        let ca = build(&b, secrets).await?;
        anyhow::Ok(ca.validate().await)
    };
    // Right token, role and policy: accepted.
    check(vault_conf(bao.addr(), &token), secrets(&token), "24h").await??;

    let mut cases: Vec<(&str, serde_json::Value, StaticSecrets, &str, Vec<&str>)> = Vec::new();
    // A wrong token.
    cases.push((
        "wrong token",
        vault_conf(bao.addr(), ""),
        secrets("s.not-a-real-token"),
        "24h",
        vec!["permission denied", "HTTP 403"],
    ));
    // The role does not exist.
    bao.write_policy(
        "no-role",
        &pki_policy(SEED_MOUNT, "no-such-role", &[PkiVerb::Issue]),
    )
    .await?;
    let no_role = bao.create_token(&TokenSpec::new(&["no-role"])).await?;
    let mut c = vault_conf(bao.addr(), &no_role);
    c["fromCp"]["role"] = json!("no-such-role");
    cases.push((
        "missing role",
        c,
        secrets(&no_role),
        "24h",
        vec!["no-such-role", "HTTP 400", "create the role"],
    ));
    // A policy without the issue path.
    bao.write_policy(
        "read-only",
        "path \"kmesh-pki-default/cert/*\" { capabilities = [\"read\"] }",
    )
    .await?;
    let weak = bao.create_token(&TokenSpec::new(&["read-only"])).await?;
    cases.push((
        "policy lacks issue",
        vault_conf(bao.addr(), &weak),
        secrets(&weak),
        "24h",
        vec![
            "permission denied",
            "kmesh-pki-default/issue/dataplane-proxies",
        ],
    ));
    // A role that does not allow this mesh's URI SANs.
    bao.create_role(SEED_MOUNT, "other-mesh", "other", json!({}))
        .await?;
    bao.write_policy(
        "other",
        &pki_policy(SEED_MOUNT, "other-mesh", &[PkiVerb::Issue]),
    )
    .await?;
    let other = bao.create_token(&TokenSpec::new(&["other"])).await?;
    let mut c = vault_conf(bao.addr(), &other);
    c["fromCp"]["role"] = json!("other-mesh");
    cases.push((
        "URI SAN not allowed",
        c,
        secrets(&other),
        "24h",
        vec![
            "HTTP 400",
            "URI Subject Alternative Names",
            "allowed_uri_sans must allow spiffe://default/* and kuma://*",
        ],
    ));
    // An expiration beyond the role's max_ttl (720h).
    cases.push((
        "TTL beyond max_ttl",
        vault_conf(bao.addr(), &token),
        secrets(&token),
        "1000h",
        vec![
            "valid for 30d instead of the 1000h",
            "longer than permitted maxTTL",
            "max_ttl",
        ],
    ));
    // Nothing listening.
    let dead = format!("http://127.0.0.1:{}", mosaic_testkit::free_port()?);
    cases.push((
        "connection refused",
        vault_conf(&dead, &token),
        secrets(&token),
        "24h",
        vec!["could not reach Vault", "onnection refused", "reachable"],
    ));

    for (what, conf, secrets, expiration, needles) in cases {
        let err = check(conf, secrets, expiration)
            .await?
            .expect_err(what)
            .to_string();
        assert!(
            err.starts_with("mesh \"default\", backend \"vault-1\": "),
            "{what}: {err}"
        );
        for n in needles {
            assert!(err.contains(n), "{what}: {err:?} should contain {n:?}");
        }
        assert!(
            !err.contains(&token) && !err.contains(&weak) && !err.contains(&other),
            "{what}: a token leaked into {err}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_service_tag_or_template_tag_is_a_clear_error() -> anyhow::Result<()> {
    let (bao, _root, token) = seed_root().await?;
    let mut conf = vault_conf(bao.addr(), &token);
    conf["fromCp"]["commonName"] = json!("{{ tag \"team\" }}.mesh");
    let ca = build(&backend("vault-1", "vault", conf, "24h"), secrets(&token)).await?;
    let err = ca
        .issue(&request("web", &[], DAY))
        .await
        .expect_err("no team tag")
        .to_string();
    assert!(
        err.contains("tag \"team\" used by the commonName template is not set"),
        "{err}"
    );
    let empty = mosaic_core::ca::IssueRequest {
        tags: Default::default(),
        ttl: DAY,
        spiffe_id: None,
    };
    let err = ca.issue(&empty).await.expect_err("no service").to_string();
    assert!(err.contains("no kuma.io/service tag"), "{err}");
    Ok(())
}

#[tokio::test]
async fn seed_policy_cannot_sign_and_says_so() -> anyhow::Result<()> {
    let (bao, _root, token) = seed_root().await?;
    let mut conf = vault_conf(bao.addr(), &token);
    conf["fromCp"]["mode"] = json!("sign");
    let ca = build(&backend("vault-1", "vault", conf, "24h"), secrets(&token)).await?;
    let err = ca
        .validate()
        .await
        .expect_err("seed policy only grants issue")
        .to_string();
    assert!(
        err.contains("kmesh-pki-default/sign/dataplane-proxies")
            && err.contains("permission denied"),
        "{err}"
    );
    let _ = SEED_POLICY_NAME;
    Ok(())
}

#[tokio::test]
async fn sign_mode_with_the_seed_rsa_role_explains_the_key_type() -> anyhow::Result<()> {
    let (bao, _root, _token) = seed_root().await?;
    bao.write_policy(
        "sign-seed",
        &pki_policy(SEED_MOUNT, SEED_ROLE, &[PkiVerb::Sign]),
    )
    .await?;
    let token = bao.create_token(&TokenSpec::new(&["sign-seed"])).await?;
    let mut conf = vault_conf(bao.addr(), &token);
    conf["fromCp"]["mode"] = json!("sign");
    let ca = build(&backend("vault-1", "vault", conf, "24h"), secrets(&token)).await?;
    let err = ca
        .validate()
        .await
        .expect_err("rsa role, EC CSR")
        .to_string();
    assert!(
        err.contains("HTTP 400") && err.contains("key_type=ec"),
        "{err}"
    );
    // The token may not read the role, so the CSR was EC P-256; the hint says how to let the
    // key follow the role.
    assert!(
        err.contains("role requires keys of type rsa")
            && err.contains(&format!(
                "grant [\"read\"] on {SEED_MOUNT}/roles/{SEED_ROLE} to the token's policy"
            )),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_silent_vault_times_out_after_request_timeout() -> anyhow::Result<()> {
    // A listener that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = format!("http://{}", listener.local_addr()?);
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            open.push(sock);
        }
    });
    let mut b = backend("vault-1", "vault", vault_conf(&addr, "t"), "24h");
    if let Some(dp) = b.dp_cert.as_mut() {
        dp.request_timeout = Some("1s".parse()?);
    }
    let ca = build(&b, secrets("s.token")).await?;
    let err = ca.validate().await.expect_err("no answer").to_string();
    assert!(
        err.contains("could not reach Vault") && err.contains("no answer within 1s"),
        "{err}"
    );
    hold.abort();
    Ok(())
}

/// Vault's documented root rotation makes the new root first (`root/rotate/internal`) and the
/// default later: the backend's roots hold every issuer of the mount that can sign (has a key)
/// from the start, so every zone's bundle trusts the new root before anything it signs is
/// served; a CA imported without its key (it cannot sign in the mount) is not trusted.
#[tokio::test]
async fn the_roots_are_every_signing_issuer_of_the_mount() -> anyhow::Result<()> {
    let (bao, root, token) = seed_root().await?;
    let b = backend("vault-1", "vault", vault_conf(bao.addr(), &token), "24h");
    let ca = build(&b, secrets(&token)).await?;
    assert_eq!(ca.root_certs().await?.len(), 1);

    let next = bao
        .write(
            &format!("{SEED_MOUNT}/root/rotate/internal"),
            json!({"common_name": "next root", "issuer_name": "next"}),
        )
        .await?;
    let next_pem = next["data"]["certificate"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no certificate: {next}"))?
        .to_string();
    let (other, _) = mosaic_ca::local::LocalCa::generate_root(
        "other",
        "imported without its key",
        Duration::from_secs(3600),
    )?;
    bao.write(
        &format!("{SEED_MOUNT}/issuers/import/cert"),
        json!({"pem_bundle": other}),
    )
    .await?;

    let roots: Vec<Vec<Vec<u8>>> = ca
        .root_certs()
        .await?
        .iter()
        .map(|p| pem_to_ders(p))
        .collect::<Result<_, _>>()?;
    assert_eq!(roots.len(), 2, "the default root and the next one");
    assert_eq!(
        roots[0],
        pem_to_ders(&root)?,
        "the default issuer's chain first"
    );
    assert!(roots.contains(&pem_to_ders(&next_pem)?), "the next root");
    assert!(
        !roots.contains(&pem_to_ders(&other)?),
        "not the key-less import"
    );
    Ok(())
}
