//! Auth method setups: AppRole, TLS certificates, Kubernetes.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::client::{BaoClient, str_at};

/// The role name every auth helper here creates.
const ROLE: &str = "mosaic";

/// AppRole credentials from [`BaoClient::enable_approle`].
#[derive(Clone, Debug)]
pub struct AppRoleCreds {
    /// Where the AppRole method is mounted (e.g. `approle`).
    pub mount: String,
    /// The role's `role_id`.
    pub role_id: String,
    /// A fresh `secret_id`.
    pub secret_id: String,
}

/// Parameters for [`BaoClient::enable_kubernetes_auth`].
#[derive(Clone, Debug)]
pub struct KubernetesAuth {
    /// Auth mount path (Vault's default `kubernetes`).
    pub mount: String,
    /// `kubernetes_host`, e.g. [`crate::FakeKubernetesApi::addr`] (plain `http://` is accepted).
    pub kubernetes_host: String,
    /// The role name to create.
    pub role: String,
    /// `token_policies` of the role.
    pub policies: Vec<String>,
    /// `bound_service_account_names`.
    pub service_account_names: Vec<String>,
    /// `bound_service_account_namespaces`.
    pub service_account_namespaces: Vec<String>,
    /// `token_ttl` (e.g. `1h`); Vault's default when `None`.
    pub token_ttl: Option<String>,
}

impl KubernetesAuth {
    /// Mount `kubernetes`, role `mosaic`, bound to exactly one service account.
    pub fn new(
        kubernetes_host: &str,
        policies: &[&str],
        namespace: &str,
        service_account: &str,
    ) -> Self {
        Self {
            mount: "kubernetes".into(),
            kubernetes_host: kubernetes_host.into(),
            role: ROLE.into(),
            policies: policies.iter().map(|p| (*p).to_owned()).collect(),
            service_account_names: vec![service_account.into()],
            service_account_namespaces: vec![namespace.into()],
            token_ttl: None,
        }
    }
}

impl BaoClient {
    /// `vault auth enable -path=<mount> <kind>` unless something is already mounted there.
    pub async fn enable_auth(&self, mount: &str, kind: &str) -> Result<()> {
        let mounts = self.read("sys/auth").await?;
        let key = format!("{}/", mount.trim_end_matches('/'));
        let table = mounts.get("data").unwrap_or(&mounts);
        if table.get(&key).is_some() {
            return Ok(());
        }
        self.write(&format!("sys/auth/{mount}"), json!({ "type": kind }))
            .await
            .with_context(|| format!("enabling {kind} auth at {mount}"))?;
        Ok(())
    }

    /// AppRole at `mount`, role `mosaic` with these token policies and TTLs; returns its
    /// `role_id` and a new `secret_id`.
    pub async fn enable_approle(
        &self,
        mount: &str,
        policies: &[&str],
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> Result<AppRoleCreds> {
        self.enable_auth(mount, "approle").await?;
        let role_path = format!("auth/{mount}/role/{ROLE}");
        self.write(
            &role_path,
            json!({
                "token_policies": policies,
                "token_ttl": token_ttl,
                "token_max_ttl": token_max_ttl,
            }),
        )
        .await
        .context("creating AppRole role")?;
        let role_id = str_at(
            &self.read(&format!("{role_path}/role-id")).await?,
            "/data/role_id",
        )?;
        let secret_id = str_at(
            &self
                .write(&format!("{role_path}/secret-id"), json!({}))
                .await?,
            "/data/secret_id",
        )?;
        Ok(AppRoleCreds {
            mount: mount.into(),
            role_id,
            secret_id,
        })
    }

    /// `auth/<mount>/login` with a role_id/secret_id; returns the client token.
    pub async fn approle_login(&self, creds: &AppRoleCreds) -> Result<String> {
        let resp = self
            .with_token("")
            .write(
                &format!("auth/{}/login", creds.mount),
                json!({ "role_id": creds.role_id, "secret_id": creds.secret_id }),
            )
            .await?;
        str_at(&resp, "/auth/client_token")
    }

    /// TLS certificate auth at `cert`: `auth/cert/certs/mosaic` trusts `ca_pem` (client certificates
    /// it signed) and grants `policies`. Logging in needs OpenBao's TLS listener
    /// ([`crate::OpenBao::start_with_tls`]).
    pub async fn enable_cert_auth(&self, ca_pem: &str, policies: &[&str]) -> Result<()> {
        self.enable_auth("cert", "cert").await?;
        self.write(
            &format!("auth/cert/certs/{ROLE}"),
            json!({
                "display_name": ROLE,
                "certificate": ca_pem,
                "token_policies": policies,
            }),
        )
        .await
        .context("creating cert auth role")?;
        Ok(())
    }

    /// Kubernetes auth: `auth/<mount>/config` pointing at `kubernetes_host` (with
    /// `disable_local_ca_jwt=true`, so OpenBao calls the TokenReview API with the *client's* JWT as
    /// bearer, and a dummy `kubernetes_ca_cert`, which that setting requires even for `http://`),
    /// plus the role.
    pub async fn enable_kubernetes_auth(&self, cfg: &KubernetesAuth) -> Result<()> {
        self.enable_auth(&cfg.mount, "kubernetes").await?;
        let dummy_ca = crate::certs::TestCa::new("unused kubernetes CA")?;
        self.write(
            &format!("auth/{}/config", cfg.mount),
            json!({
                "kubernetes_host": cfg.kubernetes_host,
                "kubernetes_ca_cert": dummy_ca.cert_pem(),
                "disable_local_ca_jwt": true,
            }),
        )
        .await
        .context("configuring kubernetes auth")?;
        let mut role = json!({
            "bound_service_account_names": cfg.service_account_names,
            "bound_service_account_namespaces": cfg.service_account_namespaces,
            "token_policies": cfg.policies,
        });
        if let (Some(ttl), Some(obj)) = (&cfg.token_ttl, role.as_object_mut()) {
            obj.insert("token_ttl".into(), Value::String(ttl.clone()));
        }
        self.write(&format!("auth/{}/role/{}", cfg.mount, cfg.role), role)
            .await
            .context("creating kubernetes auth role")?;
        Ok(())
    }

    /// `auth/<mount>/login` with a service-account JWT; returns the client token.
    pub async fn kubernetes_login(&self, mount: &str, role: &str, jwt: &str) -> Result<String> {
        let resp = self
            .with_token("")
            .write(
                &format!("auth/{mount}/login"),
                json!({ "role": role, "jwt": jwt }),
            )
            .await?;
        str_at(&resp, "/auth/client_token")
    }
}
