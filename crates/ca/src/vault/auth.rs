//! Vault auth methods: a static token (any DataSource), TLS client certificate (`cert`), AppRole,
//! Kubernetes service account, AWS IAM/EC2, or none when a Vault Agent holds the token.

use crate::datasource::ResolveDataSource as _;
use std::{sync::Arc, time::Duration};

use reqwest::Method;
use serde_json::{Value, json};

use super::{
    aws::AwsKind,
    client::VaultClient,
    error::{Operation, VaultError},
};
use mosaic_core::{
    Sensitive,
    datasource::{DataSource, SecretSource},
    resource::mesh::{DEFAULT_SA_TOKEN_FILE, VaultAuth, default_mount},
};

/// How the backend authenticates.
#[derive(Clone, Debug)]
pub enum AuthMethod {
    /// A Vault Agent adds the token; Mosaic sends none.
    Agent,
    /// A token read from a DataSource (re-read when Vault stops accepting it).
    Token(DataSource),
    /// TLS client certificate (the client presents it; login at `auth/{mount}/login`).
    Cert {
        /// Mount path.
        mount: String,
    },
    /// AppRole.
    AppRole {
        /// Mount path.
        mount: String,
        /// role_id.
        role_id: String,
        /// secret_id.
        secret_id: DataSource,
    },
    /// Kubernetes service account.
    Kubernetes {
        /// Mount path.
        mount: String,
        /// Vault role.
        role: String,
        /// Service-account token file.
        token_file: String,
    },
    /// AWS IAM or EC2.
    Aws {
        /// Mount path.
        mount: String,
        /// IAM or EC2.
        kind: AwsKind,
        /// Vault role (empty: Vault's default for the principal).
        role: String,
        /// `X-Vault-AWS-IAM-Server-ID` value.
        server_id_header: String,
    },
}

/// Where the backend's credentials are configured, for the field named in errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthOrigin {
    /// The Mesh's `conf.fromCp.auth`.
    #[default]
    Mesh,
    /// The zone's own config (`[[vault_auth]]`), which replaces the Mesh's `auth` in that zone.
    ZoneConfig,
}

impl AuthOrigin {
    /// The field holding `mesh_field` (camelCase under `conf.fromCp.auth`) or `zone_field`
    /// (snake_case in the zone's `[[vault_auth]]`).
    pub fn field(self, mesh_field: &str, zone_field: &str) -> String {
        match self {
            AuthOrigin::Mesh => format!("conf.fromCp.auth.{mesh_field}"),
            AuthOrigin::ZoneConfig => format!("the zone's [[vault_auth]] {zone_field}"),
        }
    }
}

/// A token and what Vault said about it.
#[derive(Clone, Debug)]
pub struct TokenLease {
    /// The token.
    pub token: Sensitive<String>,
    /// Lifetime left when obtained; `None` when the token does not expire or Vault did not say.
    pub ttl: Option<Duration>,
    /// Whether `renew-self` may extend it.
    pub renewable: bool,
}

// === impl AuthMethod ===

impl AuthMethod {
    /// The method configured in `auth` (`None` with an agent address means [`AuthMethod::Agent`]).
    pub fn from_conf(auth: Option<&VaultAuth>) -> Option<Self> {
        let auth = auth?;
        let mount = |m: &str, default: &str| {
            let m = m.trim().trim_matches('/');
            if m.is_empty() {
                default.to_string()
            } else {
                m.to_string()
            }
        };
        if let Some(t) = &auth.token {
            return Some(AuthMethod::Token(t.clone()));
        }
        if let Some(t) = &auth.tls {
            return Some(AuthMethod::Cert {
                mount: mount(&t.mount_path, default_mount::CERT),
            });
        }
        if let Some(r) = &auth.approle {
            return Some(AuthMethod::AppRole {
                mount: mount(&r.mount_path, default_mount::APPROLE),
                role_id: r.role_id.clone(),
                secret_id: r.secret_id.clone().unwrap_or_default(),
            });
        }
        if let Some(k) = &auth.kubernetes {
            return Some(AuthMethod::Kubernetes {
                mount: mount(&k.mount_path, default_mount::KUBERNETES),
                role: k.role.clone(),
                token_file: if k.service_account_token_file.is_empty() {
                    DEFAULT_SA_TOKEN_FILE.to_string()
                } else {
                    k.service_account_token_file.clone()
                },
            });
        }
        if let Some(a) = &auth.aws {
            return Some(AuthMethod::Aws {
                mount: mount(&a.mount_path, default_mount::AWS),
                kind: if a.kind.eq_ignore_ascii_case("ec2") {
                    AwsKind::Ec2
                } else {
                    AwsKind::Iam
                },
                role: a.role.clone(),
                server_id_header: a.iam_server_id_header.clone(),
            });
        }
        None
    }

    /// Whether Mosaic obtains tokens by logging in (and so can log in again).
    pub fn is_login(&self) -> bool {
        !matches!(self, AuthMethod::Agent | AuthMethod::Token(_))
    }

    /// Short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Agent => "agent",
            AuthMethod::Token(_) => "token",
            AuthMethod::Cert { .. } => "cert",
            AuthMethod::AppRole { .. } => "approle",
            AuthMethod::Kubernetes { .. } => "kubernetes",
            AuthMethod::Aws { .. } => "aws",
        }
    }

    /// Obtains a token: reads a static one (and looks it up), or logs in.
    /// Returns `None` for [`AuthMethod::Agent`].
    pub async fn obtain(
        &self,
        client: &VaultClient,
        mesh: &str,
        secrets: &Arc<dyn SecretSource>,
        origin: AuthOrigin,
    ) -> Result<Option<TokenLease>, VaultError> {
        let ds_err = |field: String, e: mosaic_core::datasource::DataSourceError| {
            VaultError::Config(format!("{field}: {e}"))
        };
        match self {
            AuthMethod::Agent => Ok(None),
            AuthMethod::Token(ds) => {
                let token = ds
                    .resolve_string(mesh, secrets.as_ref())
                    .map_err(|e| ds_err(origin.field("token", "token_file"), e))?;
                if token.expose().is_empty() {
                    return Err(VaultError::Config(format!(
                        "{}: the {} is empty",
                        origin.field("token", "token_file"),
                        ds.describe()
                    )));
                }
                Ok(Some(lookup_self(client, token).await))
            }
            AuthMethod::Cert { mount } => login(client, "cert", mount, json!({})).await.map(Some),
            AuthMethod::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let secret = secret_id
                    .resolve_string(mesh, secrets.as_ref())
                    .map_err(|e| {
                        ds_err(
                            origin.field("approle.secretId", "approle.secret_id_file"),
                            e,
                        )
                    })?;
                let body = json!({"role_id": role_id, "secret_id": secret.expose()});
                login(client, "approle", mount, body).await.map(Some)
            }
            AuthMethod::Kubernetes {
                mount,
                role,
                token_file,
            } => {
                let jwt = tokio::fs::read_to_string(token_file).await.map_err(|e| {
                    VaultError::Config(format!(
                        "{}: could not read {token_file:?}: {e}",
                        origin.field(
                            "kubernetes.serviceAccountTokenFile",
                            "kubernetes.service_account_token_file"
                        )
                    ))
                })?;
                let jwt = Sensitive::new(jwt.trim().to_string());
                let body = json!({"role": role, "jwt": jwt.expose()});
                login(client, "kubernetes", mount, body).await.map(Some)
            }
            AuthMethod::Aws {
                mount,
                kind,
                role,
                server_id_header,
            } => {
                let body = super::aws::vault_login_body(*kind, role, server_id_header)
                    .await
                    .map_err(|e| {
                        VaultError::Config(format!("{}: {e}", origin.field("aws", "aws")))
                    })?;
                login(client, "aws", mount, body).await.map(Some)
            }
        }
    }
}

async fn login(
    client: &VaultClient,
    method: &'static str,
    mount: &str,
    body: Value,
) -> Result<TokenLease, VaultError> {
    let op = Operation::Login {
        method,
        mount: mount.to_string(),
    };
    let resp = client
        .call(
            Method::POST,
            &format!("auth/{mount}/login"),
            None,
            Some(&body),
            &op,
        )
        .await?;
    lease_from_auth(&resp)
        .ok_or_else(|| client.decode_error(&op, "no auth.client_token in the login response"))
}

/// Reads `auth.client_token`, `auth.lease_duration` and `auth.renewable` from a login or renew answer.
pub fn lease_from_auth(resp: &Value) -> Option<TokenLease> {
    let auth = resp.get("auth")?;
    let token = auth.get("client_token")?.as_str()?.to_string();
    let secs = auth
        .get("lease_duration")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some(TokenLease {
        token: Sensitive::new(token),
        ttl: (secs > 0).then(|| Duration::from_secs(secs)),
        renewable: auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Looks the token up to learn its TTL. A token without permission to look itself up is used
/// as is (TTL unknown, not renewed).
async fn lookup_self(client: &VaultClient, token: Sensitive<String>) -> TokenLease {
    match client
        .call(
            Method::GET,
            "auth/token/lookup-self",
            Some(&token),
            None,
            &Operation::LookupSelf,
        )
        .await
    {
        Ok(resp) => {
            let data = resp.get("data").cloned().unwrap_or(Value::Null);
            let secs = data.get("ttl").and_then(Value::as_u64).unwrap_or(0);
            TokenLease {
                token,
                ttl: (secs > 0).then(|| Duration::from_secs(secs)),
                renewable: data
                    .get("renewable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "token lookup failed; its TTL is unknown and it will not be renewed");
            TokenLease {
                token,
                ttl: None,
                renewable: false,
            }
        }
    }
}
