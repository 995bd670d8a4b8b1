//! A raw-HTTP Vault API client (no vaultrs: the harness must not share bugs with the code under test).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use reqwest::Method;
use serde_json::Value;

/// Installs ring as rustls' process-wide crypto provider (idempotent). Every reqwest client in the
/// workspace is built with `rustls-no-provider`, so this must run before building one.
pub fn ensure_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A non-2xx answer from the Vault API. Carried inside `anyhow::Error`; downcast to inspect it.
#[derive(Debug, Clone)]
pub struct VaultApiError {
    /// HTTP method of the request.
    pub method: String,
    /// API path (without `/v1/`).
    pub path: String,
    /// HTTP status code.
    pub status: u16,
    /// Vault's `errors` list (or the raw body when it had none).
    pub errors: Vec<String>,
}

impl std::fmt::Display for VaultApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Vault {} /v1/{} answered {}: {}",
            self.method,
            self.path,
            self.status,
            self.errors.join("; ")
        )
    }
}

impl std::error::Error for VaultApiError {}

/// A Vault API client bound to one address, token and (optional) namespace.
///
/// [`crate::OpenBao`] dereferences to the root client, so every helper here is callable on the
/// server directly; use [`BaoClient::with_namespace`] / [`BaoClient::with_token`] for variants.
#[derive(Clone, Debug)]
pub struct BaoClient {
    addr: String,
    token: String,
    namespace: Option<String>,
    http: reqwest::Client,
}

impl BaoClient {
    /// A client for `addr` (e.g. `http://127.0.0.1:8200`) authenticating with `token`.
    pub fn new(addr: impl Into<String>, token: impl Into<String>) -> Result<Self> {
        ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building HTTP client")?;
        Ok(Self {
            addr: addr.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            namespace: None,
            http,
        })
    }

    /// The same client, sending `X-Vault-Namespace: <namespace>` on every request.
    pub fn with_namespace(&self, namespace: impl Into<String>) -> Self {
        let mut c = self.clone();
        c.namespace = Some(namespace.into());
        c
    }

    /// The same client, authenticating with another token (empty = no token header).
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        let mut c = self.clone();
        c.token = token.into();
        c
    }

    /// The base address, e.g. `http://127.0.0.1:8200`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The token this client sends.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The namespace this client sends, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// One raw API call: `method` (`GET`, `POST`, `PUT`, `DELETE`, `LIST`), `path` relative to `/v1/`
    /// (a leading `/` or `/v1/` is accepted), optional JSON body. Returns the JSON answer
    /// (`Value::Null` for 204). Non-2xx becomes a [`VaultApiError`] quoting Vault's `errors`.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let path = normalize_path(path);
        let http_method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|e| anyhow!("bad HTTP method {method:?}: {e}"))?;
        let url = format!("{}/v1/{}", self.addr, path);
        let mut req = self.http.request(http_method, &url);
        if !self.token.is_empty() {
            req = req.header("X-Vault-Token", &self.token);
        }
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = &body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("reading answer of {method} {url}"))?;
        let json: Option<Value> = if text.trim().is_empty() {
            None
        } else {
            serde_json::from_str(&text).ok()
        };
        if !status.is_success() {
            let errors = json
                .as_ref()
                .and_then(|j| j.get("errors"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_else(|| vec![text.trim().to_owned()]);
            return Err(VaultApiError {
                method: method.to_ascii_uppercase(),
                path,
                status: status.as_u16(),
                errors,
            }
            .into());
        }
        match json {
            Some(v) => Ok(v),
            None if text.trim().is_empty() => Ok(Value::Null),
            None => Err(anyhow!("{method} {url}: answer is not JSON: {text}")),
        }
    }

    /// `GET path`.
    pub async fn read(&self, path: &str) -> Result<Value> {
        self.api("GET", path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn write(&self, path: &str, body: Value) -> Result<Value> {
        self.api("POST", path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.api("DELETE", path, None).await
    }
}

fn normalize_path(path: &str) -> String {
    let p = path.trim_start_matches('/');
    p.strip_prefix("v1/").unwrap_or(p).to_owned()
}

/// A string field at a JSON pointer (e.g. `/data/certificate`), or an error naming it.
pub(crate) fn str_at(v: &Value, pointer: &str) -> Result<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("Vault answer has no string at {pointer}: {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize_path("/v1/sys/health"), "sys/health");
        assert_eq!(normalize_path("sys/health"), "sys/health");
        assert_eq!(normalize_path("/pki/issue/r"), "pki/issue/r");
    }
}
