//! `VaultClient`: HTTP to Vault's API with the backend's TLS settings (caCert, skipVerify,
//! serverName for SNI and verification, client certificate), namespace header and request timeout.

use std::{net::SocketAddr, time::Duration};

use reqwest::Method;
use serde_json::Value;
use url::Url;

use super::error::{Operation, VaultError, status_hint, transport_hint};
use mosaic_core::Sensitive;

/// Namespace header, sent on login and PKI calls alike.
pub const NAMESPACE_HEADER: &str = "X-Vault-Namespace";
/// Token header.
pub const TOKEN_HEADER: &str = "X-Vault-Token";

/// How to talk TLS to Vault.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// PEM CA certificate(s) that sign Vault's certificate; when set, only these are trusted.
    pub ca_pem: Option<Vec<u8>>,
    /// Do not verify Vault's certificate (development only).
    pub skip_verify: bool,
    /// Name used for SNI and certificate verification instead of the address's host.
    pub server_name: Option<String>,
    /// Client certificate chain and key, PEM, for Vault's cert auth.
    pub identity_pem: Option<Sensitive<Vec<u8>>>,
}

/// A client bound to one Vault address (or Vault Agent) and namespace.
#[derive(Clone, Debug)]
pub struct VaultClient {
    http: reqwest::Client,
    base: Url,
    display: String,
    namespace: Option<String>,
    timeout: Duration,
}

// === impl VaultClient ===

impl VaultClient {
    /// Builds a client for `address`. With `tls.server_name`, the address's host is resolved here
    /// and the connection is made to it while SNI and verification use the server name.
    pub async fn new(
        address: &str,
        namespace: Option<&str>,
        tls: &ClientTls,
        timeout: Duration,
    ) -> Result<Self, VaultError> {
        mosaic_runtime::tls::install_crypto_provider();
        let mut base = Url::parse(address.trim()).map_err(|e| {
            VaultError::Config(format!("Vault address {address:?} is not a URL: {e}"))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(VaultError::Config(format!(
                "Vault address {address:?} must be an http:// or https:// URL with a host"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("mosaic/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                VaultError::Config(format!("tls.caCert is not a PEM certificate bundle: {e}"))
            })?;
            if certs.is_empty() {
                return Err(VaultError::Config(
                    "tls.caCert holds no PEM certificate".to_string(),
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        if tls.skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(id) = &tls.identity_pem {
            let identity = reqwest::Identity::from_pem(id.expose()).map_err(|e| {
                VaultError::Config(format!(
                    "auth.tls clientCert/clientKey are not a usable PEM certificate and key: {e}"
                ))
            })?;
            builder = builder.identity(identity);
        }
        if let Some(name) = tls.server_name.as_deref().filter(|n| !n.is_empty()) {
            let host = base.host_str().unwrap_or_default().to_string();
            let port = base.port_or_known_default().unwrap_or(8200);
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| {
                    VaultError::Config(format!("could not resolve Vault host {host:?}: {e}"))
                })?
                .collect();
            if addrs.is_empty() {
                return Err(VaultError::Config(format!(
                    "Vault host {host:?} resolves to no address"
                )));
            }
            base.set_host(Some(name)).map_err(|e| {
                VaultError::Config(format!("tls.serverName {name:?} is not a host name: {e}"))
            })?;
            builder = builder.resolve_to_addrs(name, &addrs);
        }
        let http = builder.build().map_err(|e| {
            VaultError::Config(format!(
                "could not build the HTTP client: {}",
                error_chain(&e)
            ))
        })?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        Ok(Self {
            http,
            base,
            display: address.trim().trim_end_matches('/').to_string(),
            namespace: namespace
                .filter(|n| !n.is_empty())
                .map(|n| n.trim_matches('/').to_string()),
            timeout,
        })
    }

    /// The same client sending `namespace` instead (`None`: the root namespace).
    pub fn with_namespace(&self, namespace: Option<&str>) -> Self {
        Self {
            namespace: namespace
                .filter(|n| !n.is_empty())
                .map(|n| n.trim_matches('/').to_string()),
            ..self.clone()
        }
    }

    /// Vault's address as configured (for messages).
    pub fn address(&self) -> &str {
        &self.display
    }

    /// Calls `/v1/{path}` and returns the JSON body (`{}` for an empty answer).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&Sensitive<String>>,
        body: Option<&Value>,
        op: &Operation,
    ) -> Result<Value, VaultError> {
        let url = self
            .base
            .join(&format!("v1/{}", path.trim_start_matches('/')))
            .map_err(|e| VaultError::Config(format!("bad Vault path {path:?}: {e}")))?;
        let mut req = self.http.request(method, url);
        if let Some(ns) = &self.namespace {
            req = req.header(NAMESPACE_HEADER, ns);
        }
        if let Some(t) = token {
            req = req.header(TOKEN_HEADER, t.expose());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            let cause = error_chain(&e);
            VaultError::Transport {
                addr: self.display.clone(),
                op: op.clone(),
                hint: transport_hint(&cause, self.timeout),
                cause,
            }
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| {
            let cause = error_chain(&e);
            VaultError::Transport {
                addr: self.display.clone(),
                op: op.clone(),
                hint: transport_hint(&cause, self.timeout),
                cause,
            }
        })?;
        let json: Option<Value> = if bytes.is_empty() {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        if !status.is_success() {
            let errors = json
                .as_ref()
                .and_then(|j| j.get("errors"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_else(|| {
                    let text = String::from_utf8_lossy(&bytes);
                    let text: String = text.trim().chars().take(300).collect();
                    if text.is_empty() {
                        Vec::new()
                    } else {
                        vec![text]
                    }
                });
            return Err(VaultError::Status {
                addr: self.display.clone(),
                op: op.clone(),
                status: status.as_u16(),
                hint: status_hint(op, status.as_u16(), &errors),
                errors,
            });
        }
        match json {
            Some(v) => Ok(v),
            None if bytes.is_empty() => Ok(Value::Object(Default::default())),
            None => Err(VaultError::Decode {
                addr: self.display.clone(),
                op: op.clone(),
                reason: "the body is not JSON".to_string(),
            }),
        }
    }

    /// Builds a decode error for this client.
    pub fn decode_error(&self, op: &Operation, reason: impl Into<String>) -> VaultError {
        VaultError::Decode {
            addr: self.display.clone(),
            op: op.clone(),
            reason: reason.into(),
        }
    }
}

/// An error and all its sources, joined with `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}
