//! Seed 002 ("Tanzu Service Mesh: Vault CA integration") set-up, step by step as the seed writes
//! it, through the HTTP API: step 1b (root `pki`, `pki/config/urls`, intermediate `pki_int`
//! signed by it, the policy, the sign role) and steps 1e–1g per cluster (Kubernetes auth at
//! `auth/<cluster>`, its config, the role bound to the cluster's service account).
//!
//! The seed's placeholders are filled as its own example does: the policy and the PKI mount are
//! `pki_int`, the role `example-dot-com`, the auth role `pki_int`, bound to service account
//! `vault-issuer` in `istio-system`.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::auth::KubernetesAuth;
use crate::client::{BaoClient, str_at};

/// The seed's intermediate PKI mount (`policy_name` in its policy and role commands).
pub const SEED002_PKI: &str = "pki_int";
/// The seed's sign role (`policy_name/roles/example-dot-com`).
pub const SEED002_ROLE: &str = "example-dot-com";
/// The seed's policy name (its example's `policies=pki_int`).
pub const SEED002_POLICY: &str = "pki_int";
/// The seed's Kubernetes auth role (`auth/$CLUSTER_NAME/role/pki_int`).
pub const SEED002_AUTH_ROLE: &str = "pki_int";
/// The seed's service account (`bound_service_account_names=vault-issuer`).
pub const SEED002_SERVICE_ACCOUNT: &str = "vault-issuer";
/// The seed's service-account namespace (`bound_service_account_namespaces=istio-system`).
pub const SEED002_SA_NAMESPACE: &str = "istio-system";

/// The seed's policy with `policy_name` = [`SEED002_PKI`], verbatim otherwise.
pub const SEED002_POLICY_HCL: &str = r#"path "pki_int*" { capabilities = ["read", "list"] }
path "pki_int/sign/example-dot-com" { capabilities = ["create", "update"] }
path "pki_int/issue/example-dot-com" { capabilities = ["create"] }
"#;

/// What [`BaoClient::setup_seed002_pki`] made.
#[derive(Clone, Debug)]
pub struct Seed002Pki {
    /// `CA_cert.crt`: the root at `pki` (`common_name="svc"`).
    pub root_pem: String,
    /// `intermediate.cert.pem`: the intermediate at `pki_int`, signed by the root.
    pub intermediate_pem: String,
}

/// The seed's role parameters with `allowed_uri_sans` (the seed's own value is its trust
/// domain, `spiffe://domain.name/*`; a Mesh's classic SANs need `spiffe://<mesh>/*,kuma://*`).
pub fn seed002_role_params(allowed_uri_sans: &str) -> Value {
    json!({
        "allowed_domains": "svc",
        "allow_subdomains": true,
        "max_ttl": "720h",
        "require_cn": false,
        "allowed_uri_sans": allowed_uri_sans,
    })
}

impl BaoClient {
    /// Seed 002 step 1b, in the seed's order: `vault secrets enable pki`; the root
    /// (`common_name="svc" ttl=8760h`); `pki/config/urls`; `pki_int`; its CSR
    /// (`common_name="svc Intermediate Authority"`); `pki/root/sign-intermediate`
    /// (`format=pem_bundle ttl=4380h`); `set-signed`; the policy ([`SEED002_POLICY_HCL`]); the
    /// role ([`seed002_role_params`] with `allowed_uri_sans`, plus `extra`, a JSON object or
    /// null, merged over it).
    pub async fn setup_seed002_pki(
        &self,
        allowed_uri_sans: &str,
        extra: Value,
    ) -> Result<Seed002Pki> {
        self.enable_secrets("pki", "pki").await?;
        let root = self
            .write(
                "pki/root/generate/internal",
                json!({"common_name": "svc", "ttl": "8760h"}),
            )
            .await
            .context("seed 002: generating the root at pki")?;
        let root_pem = str_at(&root, "/data/certificate")?;
        let addr = self.addr().trim_end_matches('/').to_string();
        self.write(
            "pki/config/urls",
            json!({
                "issuing_certificates": format!("{addr}/v1/pki/ca"),
                "crl_distribution_points": format!("{addr}/v1/pki/crl"),
            }),
        )
        .await
        .context("seed 002: pki/config/urls")?;
        self.enable_secrets(SEED002_PKI, "pki").await?;
        let csr = self
            .write(
                &format!("{SEED002_PKI}/intermediate/generate/internal"),
                json!({"common_name": "svc Intermediate Authority"}),
            )
            .await
            .context("seed 002: the intermediate's CSR")?;
        let csr = str_at(&csr, "/data/csr")?;
        let signed = self
            .write(
                "pki/root/sign-intermediate",
                json!({"csr": csr, "format": "pem_bundle", "ttl": "4380h"}),
            )
            .await
            .context("seed 002: pki/root/sign-intermediate")?;
        let intermediate_pem = str_at(&signed, "/data/certificate")?;
        self.write(
            &format!("{SEED002_PKI}/intermediate/set-signed"),
            json!({"certificate": intermediate_pem}),
        )
        .await
        .context("seed 002: set-signed")?;
        self.write_policy(SEED002_POLICY, SEED002_POLICY_HCL)
            .await?;
        self.write_seed002_role(allowed_uri_sans, extra).await?;
        Ok(Seed002Pki {
            root_pem,
            intermediate_pem,
        })
    }

    /// (Re)writes the seed's role `pki_int/roles/example-dot-com` ([`seed002_role_params`] and
    /// `extra` merged over them; Vault replaces the whole role).
    pub async fn write_seed002_role(&self, allowed_uri_sans: &str, extra: Value) -> Result<()> {
        let mut params = seed002_role_params(allowed_uri_sans);
        if let (Some(p), Value::Object(extra)) = (params.as_object_mut(), extra) {
            p.extend(extra);
        }
        self.write(&format!("{SEED002_PKI}/roles/{SEED002_ROLE}"), params)
            .await
            .context("seed 002: the sign role")?;
        Ok(())
    }

    /// Seed 002 steps 1e–1g for one cluster: `vault auth enable --path=<cluster> kubernetes`,
    /// `auth/<cluster>/config` pointing at `kubernetes_host` (e.g. a
    /// [`crate::FakeKubernetesApi`]), and `auth/<cluster>/role/pki_int` bound to
    /// `vault-issuer` in `istio-system`, `policies=pki_int`, `ttl=1h`.
    pub async fn enable_seed002_cluster(&self, cluster: &str, kubernetes_host: &str) -> Result<()> {
        let mut auth = KubernetesAuth::new(
            kubernetes_host,
            &[SEED002_POLICY],
            SEED002_SA_NAMESPACE,
            SEED002_SERVICE_ACCOUNT,
        );
        auth.mount = cluster.to_string();
        auth.role = SEED002_AUTH_ROLE.to_string();
        auth.token_ttl = Some("1h".to_string());
        self.enable_kubernetes_auth(&auth)
            .await
            .with_context(|| format!("seed 002: kubernetes auth for cluster {cluster}"))
    }
}
