//! `GET /` (Kuma's index: product, version, mode), `GET /ready`, `GET /healthy`, and the answers
//! for unknown paths (404) and methods a path does not serve (405), in Kuma's error shape.

use axum::{
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{error::ApiFailure, respond::Format};

/// The index document.
pub fn index_document() -> serde_json::Value {
    json!({
        "product": "Mosaic",
        "tagline": "Mosaic",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": "global",
    })
}

/// `GET /`.
pub async fn index(headers: HeaderMap) -> Response {
    Format::from_headers(&headers).respond(StatusCode::OK, &index_document())
}

/// `GET /ready` and `GET /healthy`: the API is serving.
pub async fn ok() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Unknown paths.
pub async fn not_found(uri: Uri) -> ApiFailure {
    ApiFailure::NotFound(format!(
        "there is no API endpoint at {}: the global serves /meshes, /meshes/{{mesh}}/secrets, /global-secrets, /zones, /zones/_overview, /zone-insights, /meshes/{{mesh}}/dataplanes, /meshes/{{mesh}}/dataplanes/_overview and /meshes/{{mesh}}/dataplane-insights",
        uri.path()
    ))
}

/// Methods a path does not serve.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiFailure {
    ApiFailure::MethodNotAllowed(format!(
        "{method} is not allowed on {}: collections answer GET; items answer GET, PUT and DELETE",
        uri.path()
    ))
}
