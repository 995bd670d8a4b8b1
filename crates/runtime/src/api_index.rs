//! `GET /` (Kuma's index: `hostname`, `product`, `version`, `instanceId`, `clusterId`, `gui`,
//! `basedOnKuma`, plus `tagline` and `mode`), `GET /ready`, `GET /healthy`, and the answers
//! for unknown paths (404) and methods a path does not serve (405), in Kuma's error shape, worded
//! by the server's [`ApiDialect`].

use axum::{
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{api_dialect::ApiDialect, api_error::ApiFailure, api_format::Format};

/// The Kuma release whose API Mosaic answers as (`basedOnKuma` of `GET /`: kumactl compares its
/// own version with it rather than with Mosaic's).
pub const BASED_ON_KUMA: &str = "2.14.3";

/// This host's name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `unknown`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The index document of a server in `mode` (`global`, `zone`), Kuma's `Index` shape.
pub fn index_document(mode: &str, instance_id: &str, cluster_id: &str) -> serde_json::Value {
    json!({
        "hostname": hostname(),
        "product": "Mosaic",
        "tagline": "Mosaic",
        "version": env!("CARGO_PKG_VERSION"),
        "basedOnKuma": BASED_ON_KUMA,
        "instanceId": instance_id,
        "clusterId": cluster_id,
        "gui": "",
        "mode": mode,
    })
}

/// `GET /`: [`index_document`] for the server's mode, with its [`ApiDialect::extend_index`].
pub async fn index<S: ApiDialect>(State(state): State<S>, headers: HeaderMap) -> Response {
    let mut document = index_document(S::MODE, &state.instance_id(), &state.cluster_id());
    if let Some(fields) = document.as_object_mut() {
        state.extend_index(fields);
    }
    Format::from_headers(&headers).respond(StatusCode::OK, &document)
}

/// `GET /ready` and `GET /healthy`: the API is serving.
pub async fn ok() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Unknown paths.
pub async fn not_found<S: ApiDialect>(uri: Uri) -> ApiFailure {
    ApiFailure::NotFound(format!(
        "there is no API endpoint at {}: {}",
        uri.path(),
        S::ENDPOINTS
    ))
}

/// Methods a path does not serve.
pub async fn method_not_allowed<S: ApiDialect>(method: Method, uri: Uri) -> ApiFailure {
    ApiFailure::MethodNotAllowed(format!(
        "{method} is not allowed on {}: {}",
        uri.path(),
        S::METHODS
    ))
}
