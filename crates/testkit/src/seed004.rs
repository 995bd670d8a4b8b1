//! Seed 004 ("Vault PKI", Gloo Mesh: Vault as each cluster's intermediate CA) set-up, as the seed
//! writes it: step 2's `openssl req` root (RSA 4096, `/O=my-org`, 3650 days), and step 3's Vault
//! commands through the HTTP API: Kubernetes auth at `auth/kubernetes` with role
//! `gen-int-ca-istio` bound to `istiod-service-account` in `istio-system`, `pki` with the root
//! loaded by `pki/config/ca pem_bundle=<key + cert>`, `pki_int`, and the policy
//! `gen-int-ca-istio` verbatim.

use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::json;

use crate::auth::KubernetesAuth;
use crate::client::BaoClient;

/// The seed's Kubernetes auth role and policy name.
pub const SEED004_ROLE: &str = "gen-int-ca-istio";
/// The seed's service account (`bound_service_account_names=istiod-service-account`).
pub const SEED004_SERVICE_ACCOUNT: &str = "istiod-service-account";
/// The seed's service-account namespace (`bound_service_account_namespaces=istio-system`).
pub const SEED004_SA_NAMESPACE: &str = "istio-system";
/// The seed's `caPath`.
pub const SEED004_CA_PATH: &str = "pki/root/sign-intermediate";
/// The seed's `csrPath`.
pub const SEED004_CSR_PATH: &str = "pki_int/intermediate/generate/exported";

/// The seed's policy, verbatim.
pub const SEED004_POLICY_HCL: &str = r#"path "pki_int/*" {
capabilities = ["create", "read", "update", "delete", "list"]
}
path "pki/cert/ca" {
capabilities = ["read"]
}
path "pki/root/sign-intermediate" {
capabilities = ["create", "read", "update", "list"]
}
"#;

/// What [`BaoClient::setup_seed004`] made.
#[derive(Clone, Debug)]
pub struct Seed004Pki {
    /// `root-cert.pem`, made by openssl.
    pub root_pem: String,
}

/// Runs seed 004's step 2 in `dir`: `openssl req -new -newkey rsa:4096 -x509 -sha256 -days 3650
/// -nodes -out root-cert.pem -keyout root-key.pem -subj "/O=my-org"`; returns (cert, key) PEM.
pub fn seed004_openssl_root(dir: &std::path::Path) -> Result<(String, String)> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-new",
            "-newkey",
            "rsa:4096",
            "-x509",
            "-sha256",
            "-days",
            "3650",
            "-nodes",
            "-out",
            "root-cert.pem",
            "-keyout",
            "root-key.pem",
            "-subj",
            "/O=my-org",
        ])
        .output()
        .context(
            "running openssl (Debian package openssl; scripts/setup-test-env.sh installs it)",
        )?;
    ensure!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((
        std::fs::read_to_string(dir.join("root-cert.pem"))?,
        std::fs::read_to_string(dir.join("root-key.pem"))?,
    ))
}

impl BaoClient {
    /// Seed 004 step 3 in the seed's order, with the root of [`seed004_openssl_root`] (made in
    /// `dir`) and Kubernetes auth pointing at `kubernetes_host` (e.g. a
    /// [`crate::FakeKubernetesApi`] accepting `istio-system/istiod-service-account`).
    pub async fn setup_seed004(
        &self,
        dir: &std::path::Path,
        kubernetes_host: &str,
    ) -> Result<Seed004Pki> {
        let (root_pem, root_key) = seed004_openssl_root(dir)?;
        let mut auth = KubernetesAuth::new(
            kubernetes_host,
            &[SEED004_ROLE],
            SEED004_SA_NAMESPACE,
            SEED004_SERVICE_ACCOUNT,
        );
        auth.role = SEED004_ROLE.to_string();
        auth.token_ttl = Some("2400h".to_string());
        self.enable_kubernetes_auth(&auth)
            .await
            .context("seed 004: kubernetes auth")?;
        self.enable_secrets("pki", "pki").await?;
        self.write(
            "pki/config/ca",
            json!({"pem_bundle": format!("{root_key}{root_pem}")}),
        )
        .await
        .context("seed 004: pki/config/ca")?;
        self.enable_secrets("pki_int", "pki").await?;
        self.write_policy(SEED004_ROLE, SEED004_POLICY_HCL).await?;
        Ok(Seed004Pki { root_pem })
    }
}
