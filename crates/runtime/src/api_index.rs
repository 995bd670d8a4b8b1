//! `GET /` (Kuma's index: product, version, mode), `GET /ready`, `GET /healthy`, and the answers
//! for unknown paths (404) and methods a path does not serve (405), in Kuma's error shape, worded
//! by the server's [`ApiDialect`].

use axum::{
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{api_dialect::ApiDialect, api_error::ApiFailure, api_format::Format};

/// The index document of a server in `mode` (`global`, `zone`).
pub fn index_document(mode: &str) -> serde_json::Value {
    json!({
        "product": "Mosaic",
        "tagline": "Mosaic",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": mode,
    })
}

/// `GET /`: [`index_document`] for the server's mode, with its [`ApiDialect::extend_index`].
pub async fn index<S: ApiDialect>(State(state): State<S>, headers: HeaderMap) -> Response {
    let mut document = index_document(S::MODE);
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
