//! `GET /` (product, version, mode, zone), `GET /ready`, `GET /healthy`, and the answers for
//! unknown paths (404) and methods a path does not serve (405), in Kuma's error shape.

use axum::{
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{error::ApiFailure, respond::Format, state::ApiState};

/// `GET /`.
pub async fn index(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let doc = json!({
        "product": "Mosaic",
        "tagline": "Mosaic",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": "zone",
        "zone": state.zone,
    });
    Format::from_headers(&headers).respond(StatusCode::OK, &doc)
}

/// `GET /ready` and `GET /healthy`: the API is serving (the store is open before it listens).
pub async fn ok() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Unknown paths.
pub async fn not_found(uri: Uri) -> ApiFailure {
    ApiFailure::NotFound(format!(
        "there is no API endpoint at {}: the zone serves /meshes, /zones, /meshes/{{mesh}}/dataplanes, /meshes/{{mesh}}/dataplanes/_overview and /meshes/{{mesh}}/dataplanes/{{name}}/_overview",
        uri.path()
    ))
}

/// Methods a path does not serve.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiFailure {
    ApiFailure::MethodNotAllowed(format!(
        "{method} is not allowed on {}: collections answer GET; Dataplanes answer GET, PUT and DELETE; global-owned resources are read-only here",
        uri.path()
    ))
}
