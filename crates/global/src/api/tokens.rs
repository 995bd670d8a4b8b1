//! `POST /tokens/zone` and `POST /tokens/dataplane`: issue signed tokens. The body is JSON or
//! YAML (`{"zone":"east","validFor":"720h"}`); the answer is the token as `text/plain`.
//!
//! The signing keys (admins only, as every route but `/ready` and `/healthy`):
//! `GET /tokens/signing-keys/zone` lists them (serial, kid, state), `POST …/rotate` adds the next
//! key (which signs from then on), `DELETE …/{serial}` retires one (409 for the newest); the same
//! under `/meshes/{mesh}/tokens/signing-keys/dataplane` for a mesh's dataplane tokens.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use mosaic_core::{
    Sensitive,
    token::{DataplaneTokenRequest, ZoneTokenRequest},
};
use serde::de::DeserializeOwned;

use mosaic_runtime::api_extract::{Body, PathParams};

use super::{error::ApiFailure, state::ApiState};
use crate::tokens::{KeyPurpose, TokenIssueError};

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiFailure> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiFailure::bad_field("", format!("the body is not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Err(ApiFailure::bad_field(
            "",
            "the body is empty: send JSON such as {\"zone\":\"east\",\"validFor\":\"720h\"}",
        ));
    }
    let value: serde_json::Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text)
            .map_err(|e| ApiFailure::bad_field("", format!("the body is not valid JSON: {e}")))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            ApiFailure::bad_field("", format!("the body is not valid YAML or JSON: {e}"))
        })?
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiFailure::bad_field(
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })
}

fn answer(result: Result<Sensitive<String>, TokenIssueError>) -> Response {
    match result {
        Ok(token) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            token.into_inner(),
        )
            .into_response(),
        Err(e) => failure(&e, "token issuance failed"),
    }
}

fn failure(e: &TokenIssueError, what: &str) -> Response {
    let err = e.to_api_error();
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(error = %e, "{what}");
    }
    (status, axum::Json(err)).into_response()
}

fn json_answer<T: serde::Serialize>(result: Result<T, TokenIssueError>, what: &str) -> Response {
    match result {
        Ok(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        Err(e) => failure(&e, what),
    }
}

fn purpose(p: &PathParams) -> KeyPurpose {
    match p.0.get("mesh") {
        Some(mesh) => KeyPurpose::Dataplane { mesh: mesh.clone() },
        None => KeyPurpose::Zone,
    }
}

/// `GET /tokens/signing-keys/zone`, `GET /meshes/{mesh}/tokens/signing-keys/dataplane`.
pub async fn list_keys(State(s): State<ApiState>, p: PathParams) -> Response {
    let result = s
        .tokens
        .signing_keys(&purpose(&p))
        .await
        .map(|items| serde_json::json!({"total": items.len(), "items": items, "next": null}));
    json_answer(result, "listing the signing keys failed")
}

/// `POST /tokens/signing-keys/zone/rotate`, `POST /meshes/{mesh}/tokens/signing-keys/dataplane/rotate`.
pub async fn rotate_key(State(s): State<ApiState>, p: PathParams) -> Response {
    json_answer(
        s.tokens.rotate(&purpose(&p)).await,
        "rotating the signing key failed",
    )
}

/// `DELETE /tokens/signing-keys/zone/{serial}`, `DELETE /meshes/{mesh}/tokens/signing-keys/dataplane/{serial}`.
pub async fn retire_key(State(s): State<ApiState>, p: PathParams) -> Response {
    let text = p.get("serial");
    let Some(serial) = text.parse::<u32>().ok().filter(|n| *n >= 1) else {
        return ApiFailure::bad_field(
            "serial",
            format!("{text:?} is not a signing key's serial: name a key by its number (1, 2, ...), as mosaicctl get signing-keys lists them"),
        )
        .into_response();
    };
    json_answer(
        s.tokens.retire(&purpose(&p), serial).await,
        "retiring the signing key failed",
    )
}

/// `POST /tokens/zone`.
pub async fn zone(State(s): State<ApiState>, Body(body): Body) -> Response {
    match parse::<ZoneTokenRequest>(&body) {
        Ok(req) => answer(s.tokens.issue_for_zone_request(&req).await),
        Err(e) => e.into_response(),
    }
}

/// `POST /tokens/dataplane`.
pub async fn dataplane(State(s): State<ApiState>, Body(body): Body) -> Response {
    match parse::<DataplaneTokenRequest>(&body) {
        Ok(req) => answer(s.tokens.issue_for_dataplane_request(&req).await),
        Err(e) => e.into_response(),
    }
}
