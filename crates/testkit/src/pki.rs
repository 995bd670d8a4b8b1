//! Seed-000 setup ("Kong Mesh - Vault Policy"), done through the HTTP API exactly as the docs' CLI does it.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::certs::pem_blocks;
use crate::client::{BaoClient, str_at};

/// The seed's mesh name.
pub const SEED_MESH: &str = "default";
/// The seed's PKI mount for mesh `default`.
pub const SEED_MOUNT: &str = "kmesh-pki-default";
/// The seed's role name.
pub const SEED_ROLE: &str = "dataplane-proxies";
/// The seed's policy name.
pub const SEED_POLICY_NAME: &str = "kmesh-default-dataplane-proxies";
/// The seed's policy text, verbatim (note the leading `/` in the path, which Vault accepts).
pub const SEED_POLICY_HCL: &str = r#"path "/kmesh-pki-default/issue/dataplane-proxies"
{
  capabilities = ["create", "update"]
}
"#;

/// Which PKI endpoints a policy from [`pki_policy`] allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkiVerb {
    /// `<mount>/issue/<role>`: Vault generates the key.
    Issue,
    /// `<mount>/sign/<role>`: Vault signs a CSR.
    Sign,
}

/// A policy allowing `create`/`update` on `<mount>/<verb>/<role>` for each verb (seed-000 style).
pub fn pki_policy(mount: &str, role: &str, verbs: &[PkiVerb]) -> String {
    verbs
        .iter()
        .map(|v| {
            let verb = match v {
                PkiVerb::Issue => "issue",
                PkiVerb::Sign => "sign",
            };
            format!("path \"/{mount}/{verb}/{role}\"\n{{\n  capabilities = [\"create\", \"update\"]\n}}\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The seed's role parameters for `mesh` (seed 000 uses mesh `default`).
pub fn seed_role_params(mesh: &str) -> Value {
    json!({
        "allowed_uri_sans": format!("spiffe://{mesh}/*,kuma://*"),
        "key_usage": "KeyUsageKeyEncipherment,KeyUsageKeyAgreement,KeyUsageDigitalSignature",
        "ext_key_usage": "ExtKeyUsageServerAuth,ExtKeyUsageClientAuth",
        "client_flag": true,
        "require_cn": false,
        "allowed_domains": "mesh",
        "allow_subdomains": true,
        "basic_constraints_valid_for_non_ca": true,
        "max_ttl": "720h",
        "ttl": "720h",
    })
}

/// The PEMs of the intermediate layout.
#[derive(Clone, Debug)]
pub struct IntermediatePki {
    /// The organisation root CA (at the root mount), PEM.
    pub root_pem: String,
    /// The mesh's intermediate CA (at the mesh mount), PEM (one certificate).
    pub intermediate_pem: String,
}

/// Options for [`BaoClient::create_token`]: `vault token create` flags.
#[derive(Clone, Debug, Default)]
pub struct TokenSpec {
    /// `-policy` (repeatable).
    pub policies: Vec<String>,
    /// `-ttl`, e.g. `"1h"`.
    pub ttl: Option<String>,
    /// `-renewable` (Vault's default is true; this struct's default is false, set it explicitly).
    pub renewable: bool,
    /// `-orphan`: created via `auth/token/create-orphan`.
    pub orphan: bool,
    /// `-explicit-max-ttl`.
    pub explicit_max_ttl: Option<String>,
    /// `-period` (periodic token).
    pub period: Option<String>,
    /// `-no-default-policy`.
    pub no_default_policy: bool,
    /// `-use-limit`.
    pub num_uses: Option<u32>,
}

impl TokenSpec {
    /// A renewable, non-orphan token with these policies and Vault's default TTL.
    pub fn new<S: AsRef<str>>(policies: &[S]) -> Self {
        Self {
            policies: policies.iter().map(|p| p.as_ref().to_owned()).collect(),
            renewable: true,
            ..Self::default()
        }
    }
}

impl BaoClient {
    /// `vault secrets enable -path=<mount> <kind>`; errors if the path is in use.
    pub async fn enable_secrets(&self, mount: &str, kind: &str) -> Result<()> {
        self.write(&format!("sys/mounts/{mount}"), json!({ "type": kind }))
            .await
            .with_context(|| format!("enabling {kind} secrets engine at {mount}"))?;
        Ok(())
    }

    /// Whether a secrets engine is mounted at `mount` (in this client's namespace).
    pub async fn secrets_mounted(&self, mount: &str) -> Result<bool> {
        let mounts = self.read("sys/mounts").await?;
        let key = format!("{}/", mount.trim_end_matches('/'));
        let table = mounts.get("data").unwrap_or(&mounts);
        Ok(table.get(&key).is_some())
    }

    /// `vault secrets tune -max-lease-ttl=<ttl> <mount>`.
    pub async fn tune_max_lease_ttl(&self, mount: &str, ttl: &str) -> Result<()> {
        self.write(
            &format!("sys/mounts/{mount}/tune"),
            json!({ "max_lease_ttl": ttl }),
        )
        .await
        .with_context(|| format!("tuning {mount}"))?;
        Ok(())
    }

    /// Seed 000 "Root CA": enable `pki` at `mount`, tune max lease TTL to 87600h, generate an internal
    /// root (`uri_sans=spiffe://<mesh>`, ttl 87600h). Returns the root certificate PEM.
    pub async fn setup_root_pki(&self, mount: &str, mesh: &str) -> Result<String> {
        self.enable_secrets(mount, "pki").await?;
        self.tune_max_lease_ttl(mount, "87600h").await?;
        let resp = self
            .write(
                &format!("{mount}/root/generate/internal"),
                json!({
                    "common_name": format!("Mosaic Mesh {mesh}"),
                    "uri_sans": format!("spiffe://{mesh}"),
                    "ttl": "87600h",
                }),
            )
            .await
            .with_context(|| format!("generating root CA at {mount}"))?;
        str_at(&resp, "/data/certificate")
    }

    /// Seed 000 "Intermediate CA": an organisation root at `root_mount` (created with
    /// `common_name="Organization CA"` unless a PKI is already mounted there, which is then reused),
    /// an intermediate at `mount` (`uri_sans=spiffe://<mesh>`) signed by it with `format=pem_bundle`
    /// and `ttl=43800h`, and `set-signed` with the intermediate followed by the root.
    pub async fn setup_intermediate_pki(
        &self,
        root_mount: &str,
        mount: &str,
        mesh: &str,
    ) -> Result<IntermediatePki> {
        let root_pem = if self.secrets_mounted(root_mount).await? {
            let ca = self
                .read(&format!("{root_mount}/cert/ca"))
                .await
                .with_context(|| format!("reading existing root CA at {root_mount}"))?;
            str_at(&ca, "/data/certificate")?
        } else {
            self.enable_secrets(root_mount, "pki").await?;
            self.tune_max_lease_ttl(root_mount, "87600h").await?;
            let resp = self
                .write(
                    &format!("{root_mount}/root/generate/internal"),
                    json!({ "common_name": "Organization CA", "ttl": "87600h" }),
                )
                .await
                .with_context(|| format!("generating root CA at {root_mount}"))?;
            str_at(&resp, "/data/certificate")?
        };

        self.enable_secrets(mount, "pki").await?;
        let csr = self
            .write(
                &format!("{mount}/intermediate/generate/internal"),
                json!({
                    "common_name": format!("Mosaic Mesh {mesh} Intermediate"),
                    "uri_sans": format!("spiffe://{mesh}"),
                }),
            )
            .await
            .with_context(|| format!("generating intermediate CSR at {mount}"))?;
        let csr = str_at(&csr, "/data/csr")?;
        let signed = self
            .write(
                &format!("{root_mount}/root/sign-intermediate"),
                json!({ "csr": csr, "format": "pem_bundle", "ttl": "43800h" }),
            )
            .await
            .with_context(|| format!("signing intermediate with {root_mount}"))?;
        let signed = str_at(&signed, "/data/certificate")?;
        let bundle = format!("{}\n\n{}", signed.trim_end(), root_pem.trim_end());
        self.write(
            &format!("{mount}/intermediate/set-signed"),
            json!({ "certificate": bundle }),
        )
        .await
        .with_context(|| format!("set-signed at {mount}"))?;
        let Some(intermediate_pem) = pem_blocks(&signed).into_iter().next() else {
            bail!("sign-intermediate returned no certificate: {signed}");
        };
        Ok(IntermediatePki {
            root_pem,
            intermediate_pem,
        })
    }

    /// Seed 000 step 2: the role with exactly the seed's parameters (mesh `default`).
    pub async fn create_seed_role(&self, mount: &str, role: &str) -> Result<()> {
        self.create_role(mount, role, SEED_MESH, json!({})).await
    }

    /// The seed role for `mesh`, with `overrides` (a JSON object) merged over the seed parameters,
    /// e.g. `json!({"key_type": "any"})` for CSR signing with EC keys, or `{"max_ttl": "1h"}`.
    pub async fn create_role(
        &self,
        mount: &str,
        role: &str,
        mesh: &str,
        overrides: Value,
    ) -> Result<()> {
        let mut params = match seed_role_params(mesh) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        match overrides {
            Value::Object(extra) => params.extend(extra),
            Value::Null => {}
            other => bail!("role overrides must be a JSON object, got {other}"),
        }
        self.write(&format!("{mount}/roles/{role}"), Value::Object(params))
            .await
            .with_context(|| format!("creating role {mount}/roles/{role}"))?;
        Ok(())
    }

    /// `vault policy write <name> <hcl>`.
    pub async fn write_policy(&self, name: &str, hcl: &str) -> Result<()> {
        self.write(
            &format!("sys/policies/acl/{name}"),
            json!({ "policy": hcl }),
        )
        .await
        .with_context(|| format!("writing policy {name}"))?;
        Ok(())
    }

    /// Seed 000 steps 3+4 in one go: writes [`SEED_POLICY_HCL`] as [`SEED_POLICY_NAME`] and returns a
    /// renewable service token with that policy.
    pub async fn seed_policy_and_token(&self) -> Result<String> {
        self.write_policy(SEED_POLICY_NAME, SEED_POLICY_HCL).await?;
        self.create_token(&TokenSpec::new(&[SEED_POLICY_NAME]))
            .await
    }

    /// `vault token create` (service token). Returns the client token.
    pub async fn create_token(&self, spec: &TokenSpec) -> Result<String> {
        let mut body = json!({
            "policies": spec.policies,
            "renewable": spec.renewable,
            "no_default_policy": spec.no_default_policy,
            "type": "service",
        });
        let obj = body.as_object_mut().context("token body")?;
        if let Some(ttl) = &spec.ttl {
            obj.insert("ttl".into(), json!(ttl));
        }
        if let Some(m) = &spec.explicit_max_ttl {
            obj.insert("explicit_max_ttl".into(), json!(m));
        }
        if let Some(p) = &spec.period {
            obj.insert("period".into(), json!(p));
        }
        if let Some(n) = spec.num_uses {
            obj.insert("num_uses".into(), json!(n));
        }
        let path = if spec.orphan {
            "auth/token/create-orphan"
        } else {
            "auth/token/create"
        };
        let resp = self.write(path, body).await.context("creating token")?;
        str_at(&resp, "/auth/client_token")
    }

    /// `vault token lookup <token>`: the `data` object.
    pub async fn lookup_token(&self, token: &str) -> Result<Value> {
        let resp = self
            .write("auth/token/lookup", json!({ "token": token }))
            .await?;
        Ok(resp.get("data").cloned().unwrap_or(Value::Null))
    }

    /// `vault token revoke <token>`.
    pub async fn revoke_token(&self, token: &str) -> Result<()> {
        self.write("auth/token/revoke", json!({ "token": token }))
            .await?;
        Ok(())
    }

    /// `vault namespace create <name>` (relative to this client's namespace).
    pub async fn create_namespace(&self, name: &str) -> Result<()> {
        self.write(&format!("sys/namespaces/{name}"), json!({}))
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(())
    }

    /// Issues a certificate from `<mount>/issue/<role>` with these parameters; returns `data`.
    pub async fn issue(&self, mount: &str, role: &str, params: Value) -> Result<Value> {
        let resp = self.write(&format!("{mount}/issue/{role}"), params).await?;
        resp.get("data")
            .cloned()
            .context("issue answer has no data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_matches_seed() {
        assert_eq!(
            pki_policy(SEED_MOUNT, SEED_ROLE, &[PkiVerb::Issue]),
            SEED_POLICY_HCL
        );
        let both = pki_policy("m", "r", &[PkiVerb::Issue, PkiVerb::Sign]);
        assert!(both.contains("\"/m/issue/r\"") && both.contains("\"/m/sign/r\""));
    }
}
