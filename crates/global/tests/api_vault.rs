//! A Mesh with a vault backend PUT through the API (over a REAL single-replica raft store) against
//! a REAL OpenBao (seed 000 layout):
//! accepted when token, policy and role are right; a 400 naming `mtls.backends[i]` and quoting
//! Vault otherwise; `skipValidation` skips the test issuance. Needs `MOSAIC_BAO_BIN` (or
//! ./scripts/setup-test-env.sh).

mod support;

use axum::{Router, http::StatusCode};
use base64::Engine as _;
use mosaic_testkit::{OpenBao, PkiVerb, SEED_MOUNT, SEED_ROLE, TokenSpec, pki_policy};
use serde_json::{Value, json};
use support::*;

/// A vault backend named `name` authenticating with Secret `secret`.
fn backend(name: &str, addr: &str, role: &str, secret: &str) -> Value {
    json!({"name": name, "type": "vault",
    "dpCert": {"rotation": {"expiration": "24h"}, "requestTimeout": "10s"},
    "conf": {"fromCp": {
        "address": addr, "pki": SEED_MOUNT, "role": role,
        "commonName": "{{ tag \"kuma.io/service\" }}.mesh",
        "auth": {"token": {"secret": secret}}
    }}})
}

fn mesh(backends: Vec<Value>, skip_validation: bool) -> String {
    let enabled = backends[0]["name"].clone();
    json!({"type": "Mesh", "name": "default", "mtls": {
        "enabledBackend": enabled, "skipValidation": skip_validation, "backends": backends
    }})
    .to_string()
}

/// Writes a mesh Secret as a Kuma user does: Mesh `default` first (created without mtls when it
/// does not exist yet: a Secret needs its Mesh), then the Secret.
async fn put_secret(app: &Router, name: &str, value: &str) {
    if get(app, "/meshes/default").await.status == StatusCode::NOT_FOUND {
        expect(
            &put(app, "/meshes/default", "{}").await,
            StatusCode::CREATED,
        );
    }
    let data = base64::engine::general_purpose::STANDARD.encode(value);
    let r = put(
        app,
        &format!("/meshes/default/secrets/{name}"),
        &format!("data: {data}\n"),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.text());
}

/// Asserts a 400 on `mtls.backends[index]` whose reason has every `words`, without `secret`.
#[track_caller]
fn refused(r: &Reply, index: usize, words: &[&str], secret: &str) {
    expect(r, StatusCode::BAD_REQUEST);
    let e = r.error();
    assert_eq!(r.fields(), [format!("mtls.backends[{index}]")], "{e}");
    let reason = &e.invalid_parameters[0].reason;
    for w in words {
        assert!(reason.contains(w), "{w:?} missing from {reason}");
    }
    assert!(!r.text().contains(secret), "the token leaked: {}", r.text());
}

#[tokio::test]
async fn a_vault_mesh_is_admitted_only_when_vault_can_issue() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    let token = bao.seed_policy_and_token().await?;
    let (app, store) = app().await;
    put_secret(&app, "token-1", &token).await;

    // Right token, policy and role: accepted (after a real test issuance).
    let good = mesh(
        vec![backend("vault-1", bao.addr(), SEED_ROLE, "token-1")],
        false,
    );
    let r = put(&app, "/meshes/default", &good).await;
    expect(&r, StatusCode::OK);
    let accepted = r.json();
    assert_eq!(
        accepted["mtls"]["backends"][0]["conf"]["fromCp"]["auth"]["token"]["secret"],
        "token-1"
    );

    // A wrong token.
    let wrong = "s.this-token-does-not-exist";
    put_secret(&app, "token-wrong", wrong).await;
    let r = put(
        &app,
        "/meshes/default",
        &mesh(
            vec![backend("vault-1", bao.addr(), SEED_ROLE, "token-wrong")],
            false,
        ),
    )
    .await;
    refused(&r, 0, &["Vault at", "permission denied", "vault-1"], wrong);

    // The role does not exist (the token may use it).
    bao.write_policy(
        "no-role",
        &pki_policy(SEED_MOUNT, "no-such-role", &[PkiVerb::Issue]),
    )
    .await?;
    let no_role = bao.create_token(&TokenSpec::new(&["no-role"])).await?;
    put_secret(&app, "token-no-role", &no_role).await;
    let r = put(
        &app,
        "/meshes/default",
        &mesh(
            vec![backend(
                "vault-1",
                bao.addr(),
                "no-such-role",
                "token-no-role",
            )],
            false,
        ),
    )
    .await;
    refused(&r, 0, &["Vault at", "no-such-role"], &no_role);

    // The policy lacks the issue path.
    bao.write_policy(
        "sign-only",
        &pki_policy(SEED_MOUNT, SEED_ROLE, &[PkiVerb::Sign]),
    )
    .await?;
    let weak = bao.create_token(&TokenSpec::new(&["sign-only"])).await?;
    put_secret(&app, "token-weak", &weak).await;
    let r = put(
        &app,
        "/meshes/default",
        &mesh(
            vec![backend("vault-1", bao.addr(), SEED_ROLE, "token-weak")],
            false,
        ),
    )
    .await;
    refused(
        &r,
        0,
        &[
            "permission denied",
            &format!("{SEED_MOUNT}/issue/{SEED_ROLE}"),
        ],
        &weak,
    );

    // Every refusal left the accepted Mesh as it was.
    let r = get(&app, "/meshes/default").await;
    assert_eq!(r.json(), accepted);

    // skipValidation: the wrong token is stored without asking Vault.
    let r = put(
        &app,
        "/meshes/default",
        &mesh(
            vec![backend("vault-1", bao.addr(), SEED_ROLE, "token-wrong")],
            true,
        ),
    )
    .await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.json()["mtls"]["skipValidation"], true);

    let stored = get(&app, "/meshes/default").await.json();
    let proposed = store.log_index().await;

    // An inline token never shows up in the error.
    let mut inline = backend("vault-1", bao.addr(), SEED_ROLE, "unused");
    inline["conf"]["fromCp"]["auth"]["token"] = json!({"inlineString": wrong});
    let r = put(&app, "/meshes/default", &mesh(vec![inline], false)).await;
    refused(&r, 0, &["permission denied"], wrong);
    // A refusal proposes nothing: the log did not grow and the stored Mesh is as it was.
    assert_eq!(store.log_index().await, proposed, "nothing was proposed");
    assert_eq!(get(&app, "/meshes/default").await.json(), stored);
    store.stop().await;
    Ok(())
}

#[tokio::test]
async fn several_vault_backends_are_validated_and_each_failure_named() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    let token = bao.seed_policy_and_token().await?;
    let (app, store) = app().await;
    put_secret(&app, "token-1", &token).await;
    put_secret(&app, "token-wrong", "s.wrong").await;

    let r = put(
        &app,
        "/meshes/default",
        &mesh(
            vec![
                backend("vault-a", bao.addr(), SEED_ROLE, "token-1"),
                backend("vault-b", bao.addr(), SEED_ROLE, "token-wrong"),
                backend("vault-c", bao.addr(), "no-such-role", "token-1"),
            ],
            false,
        ),
    )
    .await;
    expect(&r, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.fields(),
        ["mtls.backends[1]", "mtls.backends[2]"],
        "{}",
        r.text()
    );
    let e = r.error();
    assert!(e.invalid_parameters[0].reason.contains("\"vault-b\""));
    assert!(e.invalid_parameters[1].reason.contains("\"vault-c\""));
    // Nothing changed: the Mesh is still the one without mtls its Secrets needed.
    let unchanged = get(&app, "/meshes/default").await;
    expect(&unchanged, StatusCode::OK);
    assert!(unchanged.json()["mtls"].is_null(), "{}", unchanged.text());

    let r = put(
        &app,
        "/meshes/default",
        &mesh(
            vec![
                backend("vault-a", bao.addr(), SEED_ROLE, "token-1"),
                backend("vault-b", bao.addr(), SEED_ROLE, "token-1"),
            ],
            false,
        ),
    )
    .await;
    expect(&r, StatusCode::OK);
    // The token Secret is in use now.
    let r = delete(&app, "/meshes/default/secrets/token-1").await;
    expect(&r, StatusCode::CONFLICT);
    assert_eq!(store.all().len(), 3, "two secrets and the Mesh");
    store.stop().await;
    Ok(())
}

/// Seed 003's migration: a builtin Mesh gains a vault backend beside it, then switches
/// `enabledBackend` to it; the builtin CA stays (both roots are trusted during the move).
#[tokio::test]
async fn a_mesh_migrates_from_builtin_to_vault() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_seed_role(SEED_MOUNT, SEED_ROLE).await?;
    let token = bao.seed_policy_and_token().await?;
    let (app, _store) = app().await;
    let builtin =
        json!({"name": "ca-1", "type": "builtin", "dpCert": {"rotation": {"expiration": "1d"}}});
    let step = |enabled: &str, backends: Vec<Value>| {
        json!({"type": "Mesh", "name": "default", "mtls": {"enabledBackend": enabled, "backends": backends}}).to_string()
    };
    expect(
        &put(
            &app,
            "/meshes/default",
            &step("ca-1", vec![builtin.clone()]),
        )
        .await,
        StatusCode::CREATED,
    );
    let ca_cert = get(&app, "/meshes/default/secrets/default.ca-builtin-cert-ca-1")
        .await
        .json()["data"]
        .clone();
    put_secret(&app, "token-1", &token).await;
    let both = vec![
        builtin.clone(),
        backend("vault-1", bao.addr(), SEED_ROLE, "token-1"),
    ];
    expect(
        &put(&app, "/meshes/default", &step("ca-1", both.clone())).await,
        StatusCode::OK,
    );
    let r = put(&app, "/meshes/default", &step("vault-1", both)).await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.json()["mtls"]["enabledBackend"], "vault-1");
    assert_eq!(
        r.json()["mtls"]["backends"].as_array().map(Vec::len),
        Some(2)
    );
    let after = get(&app, "/meshes/default/secrets/default.ca-builtin-cert-ca-1")
        .await
        .json()["data"]
        .clone();
    assert_eq!(
        after, ca_cert,
        "the builtin CA is kept, unchanged, while the mesh migrates"
    );
    Ok(())
}

/// The `Warning` headers of an answer (admission's notes).
fn warnings(r: &Reply) -> Vec<String> {
    r.headers
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

/// Seed 002: one Mesh for every zone, each zone logging in at its own Kubernetes mount
/// (`mountPath: "{{ zone }}"`). The global is no zone, so it cannot log in: it checks what it can
/// (Vault answers, the PKI mount has a CA), admits the Mesh and says so in a `Warning` header.
/// A Mesh without `auth` (each zone holds its own credentials) is admitted the same way; what
/// the global can check still refuses a Mesh when it fails.
#[tokio::test]
async fn a_vault_mesh_only_zones_can_log_in_to_is_admitted_with_a_note() -> anyhow::Result<()> {
    use mosaic_testkit::{SEED002_PKI, SEED002_ROLE};
    let bao = OpenBao::start().await?;
    bao.setup_seed002_pki("spiffe://default/*,kuma://*", json!({"key_type": "any"}))
        .await?;
    let (app, _store) = app().await;
    let vault = |addr: &str, pki: &str, auth: Option<Value>| {
        let mut from_cp =
            json!({"address": addr, "pki": pki, "role": SEED002_ROLE, "mode": "sign"});
        if let Some(a) = auth {
            from_cp["auth"] = a;
        }
        mesh(
            vec![json!({"name": "vault-1", "type": "vault", "conf": {"fromCp": from_cp}})],
            false,
        )
    };
    let per_zone = json!({"kubernetes": {"mountPath": "{{ zone }}", "role": "pki_int"}});

    let r = put(
        &app,
        "/meshes/default",
        &vault(bao.addr(), SEED002_PKI, Some(per_zone.clone())),
    )
    .await;
    expect(&r, StatusCode::CREATED);
    assert_eq!(
        r.json()["mtls"]["backends"][0]["conf"]["fromCp"]["auth"]["kubernetes"]["mountPath"],
        "{{ zone }}",
        "stored as written; each zone expands it"
    );
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{w:?}");
    for want in [
        "299 mosaic \"mtls.backends[0]: backend \\\"vault-1\\\"",
        "conf.fromCp.auth.kubernetes.mountPath names {{ zone }}",
        "so no test certificate was issued here",
        &format!(
            "Checked: Vault at {} answers sys/health (initialized, unsealed)",
            bao.addr()
        ),
        "PKI mount \\\"pki_int\\\" has a CA",
        "Not checked: logging in and issuing at pki_int/sign/example-dot-com",
        "reports it in its CA health",
    ] {
        assert!(w[0].contains(want), "{want:?} missing from {}", w[0]);
    }

    // No auth at all: each zone brings its own credentials.
    let r = put(
        &app,
        "/meshes/default",
        &vault(bao.addr(), SEED002_PKI, None),
    )
    .await;
    expect(&r, StatusCode::OK);
    let w = warnings(&r);
    assert!(
        w.len() == 1
            && w[0].contains(
                "conf.fromCp.auth is not set, so every zone must hold its own Vault credentials"
            )
            && w[0].contains(
                "[[vault_auth]] entry with mesh = \\\"default\\\" and backend = \\\"vault-1\\\""
            ),
        "{w:?}"
    );

    // What the global can check still refuses: no PKI mount there, or no Vault at the address.
    let r = put(
        &app,
        "/meshes/default",
        &vault(bao.addr(), "pki_nope", Some(per_zone.clone())),
    )
    .await;
    refused(
        &r,
        0,
        &[
            "read the CA chain of pki_nope",
            "vault-1",
            "check that a PKI secrets engine is mounted at \"pki_nope\"",
        ],
        "no secret in this request",
    );
    let gone = format!("http://127.0.0.1:{}", mosaic_testkit::free_port()?);
    let r = put(
        &app,
        "/meshes/default",
        &vault(&gone, SEED002_PKI, Some(per_zone)),
    )
    .await;
    refused(
        &r,
        0,
        &["could not reach Vault", "sys/health"],
        "no secret in this request",
    );
    // The Mesh admitted last is still the one stored.
    let stored = get(&app, "/meshes/default").await.json();
    assert!(
        stored["mtls"]["backends"][0]["conf"]["fromCp"]
            .get("auth")
            .is_none()
    );
    Ok(())
}

/// A role storing every certificate it issues (`no_store=false`, Vault's default) slows Vault as
/// they pile up: when the backend's token may read the role, the Mesh is admitted with a note
/// naming the role, the numbers and the fix. `no_store=true`, or a token that may not read the
/// role (the seed's issue-only policy), gives no note.
#[tokio::test]
async fn a_role_storing_every_certificate_is_admitted_with_a_warning() -> anyhow::Result<()> {
    let bao = OpenBao::start().await?;
    bao.setup_root_pki(SEED_MOUNT, "default").await?;
    bao.create_role(SEED_MOUNT, SEED_ROLE, "default", json!({"no_store": false}))
        .await?;
    let policy = format!(
        "{}\npath \"{SEED_MOUNT}/roles/{SEED_ROLE}\" {{\n  capabilities = [\"read\"]\n}}\n",
        pki_policy(SEED_MOUNT, SEED_ROLE, &[PkiVerb::Issue])
    );
    bao.write_policy("issue-and-read-role", &policy).await?;
    let reader = bao
        .create_token(&TokenSpec::new(&["issue-and-read-role"]))
        .await?;
    let issue_only = bao.seed_policy_and_token().await?;
    let (app, _store) = app().await;
    put_secret(&app, "reader", &reader).await;
    put_secret(&app, "issue-only", &issue_only).await;
    let with = |secret: &str| {
        mesh(
            vec![backend("vault-1", bao.addr(), SEED_ROLE, secret)],
            false,
        )
    };

    let r = put(&app, "/meshes/default", &with("reader")).await;
    expect(&r, StatusCode::OK);
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{w:?}");
    for want in [
        "299 mosaic \"mtls.backends[0]: backend \\\"vault-1\\\"",
        &format!("role \\\"{SEED_ROLE}\\\" of {SEED_MOUNT} has no_store=false"),
        "Vault stores every certificate issued",
        "50k-100k stored certificates become a problem",
        "500k in a day",
        &format!("vault write {SEED_MOUNT}/roles/{SEED_ROLE} no_store=true"),
    ] {
        assert!(w[0].contains(want), "{want:?} missing from {}", w[0]);
    }
    assert!(!w[0].contains(&reader), "the token leaked: {}", w[0]);

    // A token that may not read the role: nothing is said.
    let r = put(&app, "/meshes/default", &with("issue-only")).await;
    expect(&r, StatusCode::OK);
    assert!(warnings(&r).is_empty(), "{:?}", warnings(&r));

    // The role fixed: no warning.
    bao.create_role(SEED_MOUNT, SEED_ROLE, "default", json!({"no_store": true}))
        .await?;
    let r = put(&app, "/meshes/default", &with("reader")).await;
    expect(&r, StatusCode::OK);
    assert!(warnings(&r).is_empty(), "{:?}", warnings(&r));
    Ok(())
}

/// A `mode: intermediate` backend (seed 004) authenticating with Secret `secret`.
fn intermediate_backend(addr: &str, secret: &str, csr_path: Option<&str>) -> Value {
    let mut intermediate = json!({"caPath": mosaic_testkit::SEED004_CA_PATH, "ttl": "720h"});
    if let Some(p) = csr_path {
        intermediate["csrPath"] = json!(p);
    }
    json!({"name": "vault-1", "type": "vault",
    "dpCert": {"rotation": {"expiration": "24h"}},
    "conf": {"fromCp": {
        "address": addr, "pki": "pki", "mode": "intermediate", "intermediate": intermediate,
        "auth": {"token": {"secret": secret}}
    }}})
}

#[tokio::test]
async fn an_intermediate_mode_mesh_is_admitted_by_signing_a_test_intermediate() -> anyhow::Result<()>
{
    let bao = OpenBao::start_with_audit(None).await?;
    let kube =
        mosaic_testkit::FakeKubernetesApi::start("istio-system", "istiod-service-account").await?;
    let work = tempfile::tempdir()?;
    bao.setup_seed004(work.path(), &kube.addr()).await?;
    let token = bao
        .create_token(&TokenSpec::new(&[mosaic_testkit::SEED004_ROLE]))
        .await?;
    let (app, _store) = app().await;
    put_secret(&app, "token-1", &token).await;

    // Seed 004's policy: admitted, after Vault signed one test intermediate (and, with csrPath,
    // made its key, whose copy in pki_int is deleted at once).
    for (csr, signs) in [(None, 1), (Some(mosaic_testkit::SEED004_CSR_PATH), 2)] {
        let r = put(
            &app,
            "/meshes/default",
            &mesh(
                vec![intermediate_backend(bao.addr(), "token-1", csr)],
                false,
            ),
        )
        .await;
        assert!(r.status.is_success(), "{}", r.text());
        assert_eq!(
            bao.count_audit_requests(mosaic_testkit::SEED004_CA_PATH)?,
            signs
        );
    }
    assert_eq!(
        bao.count_audit_requests(mosaic_testkit::SEED004_CSR_PATH)?,
        1
    );
    let keys = bao
        .api("LIST", "pki_int/keys", None)
        .await
        .unwrap_or(Value::Null);
    assert!(
        keys["data"]["keys"].as_array().is_none_or(|k| k.is_empty()),
        "the test intermediate's key is not left in pki_int: {keys}"
    );

    // A policy without pki/root/sign-intermediate: refused, quoting Vault, naming the path.
    bao.write_policy(
        "no-sign-intermediate",
        "path \"pki_int/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }\n",
    )
    .await?;
    let weak = bao
        .create_token(&TokenSpec::new(&["no-sign-intermediate"]))
        .await?;
    put_secret(&app, "token-weak", &weak).await;
    let r = put(
        &app,
        "/meshes/default",
        &mesh(
            vec![intermediate_backend(bao.addr(), "token-weak", None)],
            false,
        ),
    )
    .await;
    refused(
        &r,
        0,
        &[
            "Vault at",
            "permission denied",
            "sign a zone intermediate CA at pki/root/sign-intermediate",
            "\"pki/root/sign-intermediate\"",
        ],
        &weak,
    );
    // The refused write changed nothing: the Mesh keeps its csrPath backend.
    let kept = get(&app, "/meshes/default").await.json();
    assert_eq!(
        kept["mtls"]["backends"][0]["conf"]["fromCp"]["intermediate"]["csrPath"],
        mosaic_testkit::SEED004_CSR_PATH
    );
    Ok(())
}
