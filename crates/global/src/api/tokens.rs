//! `POST /tokens/zone` and `POST /tokens/dataplane`: issue signed tokens. The body is JSON or
//! YAML (`{"zone":"east","validFor":"720h"}`); the answer is the token as `text/plain`.

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

use mosaic_runtime::api_extract::Body;

use super::{error::ApiFailure, state::ApiState};
use crate::tokens::TokenIssueError;

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
        Err(e) => {
            let err = e.to_api_error();
            let status =
                StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_server_error() {
                tracing::error!(error = %e, "token issuance failed");
            }
            (status, axum::Json(err)).into_response()
        }
    }
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
