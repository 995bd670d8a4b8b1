//! The HTTP client: Kuma paths per resource type, bearer token, and errors that say what to do
//! (an unreachable control plane, or the server's `ApiError` with its field paths).

use std::time::Duration;

use mosaic_core::{Sensitive, api::ApiError, resource::ResourceType};
use reqwest::{Method, StatusCode};

/// Talks to a control plane's HTTP API.
pub struct Client {
    base: url::Url,
    token: Option<Sensitive<String>>,
    http: reqwest::Client,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered at the address.
    #[error("cannot reach the control plane at {url}: is mosaic-global running? (set --api)")]
    Unreachable {
        /// The base URL.
        url: String,
    },
    /// The TLS handshake with an `https` API failed (an unknown CA, a wrong name, plain HTTP).
    #[error(
        "TLS with the control plane at {url} failed ({reason}): pass the CA its HTTPS API presents with --ca-cert-file (a generated one is <data_dir>/api-server-ca.pem), and check that --api names the HTTPS port (5682)"
    )]
    Tls {
        /// The base URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server refused the request with a Kuma error body.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The server answered an error without a Kuma error body.
    #[error("{method} {url} answered {status}: {body}")]
    Http {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The request failed on the way (TLS, timeout, reset).
    #[error("{method} {url} failed: {reason}")]
    Transport {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The answer was not what the API promises.
    #[error("{url} answered with an unexpected body ({reason}): is --api a Mosaic control plane?")]
    Decode {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// The status (200, 201, 204, ...).
    pub status: StatusCode,
    /// The body.
    pub body: Vec<u8>,
    /// The texts of its `Warning` headers (`299 <agent> "<text>"`), unquoted.
    pub warnings: Vec<String>,
}

/// The text of one `Warning` header value (`<code> <agent> "<text>"`, RFC 9110), unquoted; the
/// whole value when it has no quoted text.
pub fn warning_text(value: &str) -> String {
    let Some(start) = value.find('"') else {
        return value.trim().to_string();
    };
    let mut out = String::new();
    let mut chars = value[start + 1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

/// The URL of `segments` (each percent-encoded as one path segment) under `base`, with `query`.
pub fn build_url(base: &url::Url, segments: &[&str], query: &[(&str, &str)]) -> url::Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url.set_query(None);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// Path segments of a resource (`name: None` for the collection): `/meshes/{name}`,
/// `/meshes/{mesh}/secrets/{name}`, `/global-secrets/{name}`, `/zones/{name}`,
/// `/meshes/{mesh}/dataplanes/{name}`.
pub fn resource_segments<'a>(
    rtype: ResourceType,
    mesh: Option<&'a str>,
    name: Option<&'a str>,
) -> Vec<&'a str> {
    let mut segments = Vec::new();
    if rtype.is_mesh_scoped() {
        segments.extend(["meshes", mesh.unwrap_or("default"), rtype.collection()]);
    } else {
        segments.push(rtype.collection());
    }
    segments.extend(name);
    segments
}

fn truncate(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

// === impl Client ===

impl Client {
    /// A client for the API at `base`, sending `token` as a bearer token; an `https` API's
    /// certificate is checked against `ca_pem` (PEM, one or more CAs) when given, else against
    /// the system's roots.
    pub fn new(
        base: url::Url,
        token: Option<Sensitive<String>>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, ClientError> {
        mosaic_runtime::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ClientError::Transport {
                    method: "-".into(),
                    url: base.to_string(),
                    reason: "the CA certificate file holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into(),
                })?;
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("mosaicctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Transport {
                method: "-".into(),
                url: base.to_string(),
                reason: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(Self { base, token, http })
    }

    /// The URL of `segments` under the base.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> url::Url {
        build_url(&self.base, segments, query)
    }

    /// Sends a request; non-2xx answers become [`ClientError::Api`] (or `Http` without a Kuma body).
    pub async fn send(
        &self,
        method: Method,
        url: url::Url,
        json: Option<&serde_json::Value>,
    ) -> Result<Answer, ClientError> {
        let mut req = self.http.request(method.clone(), url.clone());
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose());
        }
        if let Some(body) = json {
            req = req.json(body);
        }
        tracing::debug!(%method, %url, "request");
        let transport = |e: reqwest::Error| {
            let chain = error_chain(&e);
            let tls = [
                "certificate",
                "tls",
                "handshake",
                "InvalidContentType",
                "CorruptMessage",
            ];
            if e.is_connect()
                && self.base.scheme() == "https"
                && tls.iter().any(|t| chain.contains(t))
            {
                ClientError::Tls {
                    url: self.base.as_str().trim_end_matches('/').to_string(),
                    reason: chain,
                }
            } else if e.is_connect() {
                ClientError::Unreachable {
                    url: self.base.as_str().trim_end_matches('/').to_string(),
                }
            } else {
                ClientError::Transport {
                    method: method.to_string(),
                    url: url.to_string(),
                    reason: chain,
                }
            }
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let warnings = resp
            .headers()
            .get_all(reqwest::header::WARNING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(warning_text)
            .collect();
        let body = resp.bytes().await.map_err(transport)?.to_vec();
        if status.is_success() {
            return Ok(Answer {
                status,
                body,
                warnings,
            });
        }
        match serde_json::from_slice::<ApiError>(&body) {
            Ok(mut api) if !api.title.is_empty() || !api.detail.is_empty() => {
                if api.status == 0 {
                    api.status = status.as_u16();
                }
                Err(ClientError::Api(Box::new(api)))
            }
            _ => Err(ClientError::Http {
                method: method.to_string(),
                url: url.to_string(),
                status: status.as_u16(),
                body: truncate(&String::from_utf8_lossy(&body), 300),
            }),
        }
    }

    /// GET returning JSON. Reads ask for `consistent=true`: an operator sees their own writes
    /// whichever replica answers (the replica waits until it has caught up with the leader).
    pub async fn get_json(&self, url: url::Url) -> Result<serde_json::Value, ClientError> {
        let mut url = url;
        if !url.query_pairs().any(|(k, _)| k == "consistent") {
            url.query_pairs_mut().append_pair("consistent", "true");
        }
        let answer = self.send(Method::GET, url.clone(), None).await?;
        serde_json::from_slice(&answer.body).map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    /// GET of a list, following `next` links; returns every item.
    pub async fn get_list(&self, url: url::Url) -> Result<Vec<serde_json::Value>, ClientError> {
        let mut items = Vec::new();
        let mut next = Some(url);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            let page = self.get_json(url.clone()).await?;
            let decode = |reason: &str| ClientError::Decode {
                url: url.to_string(),
                reason: reason.to_string(),
            };
            let Some(list) = page.get("items").and_then(|i| i.as_array()) else {
                return Err(decode("no items list"));
            };
            items.extend(list.iter().cloned());
            if let Some(link) = page.get("next").and_then(|n| n.as_str())
                && !link.is_empty()
                && pages < 1000
            {
                let link = self
                    .base
                    .join(link)
                    .map_err(|_| decode("its next link is not a URL"))?;
                if link != url {
                    next = Some(link);
                }
            }
        }
        Ok(items)
    }
}

/// A reqwest error with its sources, on one line.
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn urls_per_type() {
        let b = base("http://127.0.0.1:5681");
        let path =
            |t, mesh, name| build_url(&b, &resource_segments(t, mesh, name), &[]).to_string();
        assert_eq!(
            path(ResourceType::Mesh, None, Some("default")),
            "http://127.0.0.1:5681/meshes/default"
        );
        assert_eq!(
            path(ResourceType::Mesh, None, None),
            "http://127.0.0.1:5681/meshes"
        );
        assert_eq!(
            path(ResourceType::Secret, Some("m1"), Some("token-1")),
            "http://127.0.0.1:5681/meshes/m1/secrets/token-1"
        );
        assert_eq!(
            path(ResourceType::Secret, None, None),
            "http://127.0.0.1:5681/meshes/default/secrets"
        );
        assert_eq!(
            path(ResourceType::GlobalSecret, None, Some("g")),
            "http://127.0.0.1:5681/global-secrets/g"
        );
        assert_eq!(
            path(ResourceType::Zone, None, Some("east")),
            "http://127.0.0.1:5681/zones/east"
        );
        assert_eq!(
            path(ResourceType::Dataplane, Some("default"), Some("dp-1")),
            "http://127.0.0.1:5681/meshes/default/dataplanes/dp-1"
        );
    }

    #[test]
    fn urls_keep_a_base_path_encode_segments_and_add_queries() {
        let b = base("https://cp.example/api/");
        assert_eq!(
            build_url(&b, &["meshes", "a/b c"], &[("force", "true")]).to_string(),
            "https://cp.example/api/meshes/a%2Fb%20c?force=true"
        );
        let b = base("https://cp.example/api?x=1");
        assert_eq!(
            build_url(&b, &["zones", "_overview"], &[]).to_string(),
            "https://cp.example/api/zones/_overview"
        );
    }

    #[test]
    fn warning_headers_are_unquoted() {
        assert_eq!(
            warning_text(r#"299 mosaic "role \"dp\" stores: run `vault patch`""#),
            r#"role "dp" stores: run `vault patch`"#
        );
        assert_eq!(warning_text("299 - \"a\\\\b\""), "a\\b");
        assert_eq!(warning_text("199 misc"), "199 misc");
    }

    #[test]
    fn long_bodies_are_truncated() {
        assert_eq!(truncate("  short ", 10), "short");
        assert_eq!(
            truncate(&"x".repeat(20), 10),
            format!("{}...", "x".repeat(10))
        );
    }
}
