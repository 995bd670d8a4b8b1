//! `ApiFailure`: every way a zone API request fails, answered with Kuma's error body
//! (`{type, status, title, detail, invalid_parameters}` from `mosaic_core::api::ApiError`).
//!
//! The global's API has the same type; both belong in a shared HTTP helper crate (they differ
//! only in the raft-specific conversions).

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use mosaic_core::{
    api::ApiError,
    resource::parse::MAX_DOCUMENT_BYTES,
    validate::{ValidationError, Violation},
};

use crate::store::StoreError;

/// A failed request. Details say what failed and what to do; they never hold secret values.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    /// 400: the request is malformed or the resource invalid.
    #[error("{detail}")]
    BadRequest {
        /// What is wrong and what to do.
        detail: String,
        /// Field-level problems.
        violations: Vec<Violation>,
    },
    /// 404: no such resource or route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the method is not allowed here (e.g. writes of global-owned types).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 413: the body is larger than the document limit.
    #[error(
        "the request body is larger than {MAX_DOCUMENT_BYTES} bytes: send one resource per request"
    )]
    TooLarge,
    /// 500: a fault of this server (storage, corruption).
    #[error("{0}")]
    Internal(String),
}

// === impl ApiFailure ===

impl ApiFailure {
    /// A 400 with one field-level problem (`field` may be empty for the whole body).
    pub fn bad_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let violation = Violation::new(field, reason);
        ApiFailure::BadRequest {
            detail: violation.to_string(),
            violations: vec![violation],
        }
    }

    /// A 400 for an invalid resource, with every violation.
    pub fn invalid(err: ValidationError) -> Self {
        ApiFailure::BadRequest {
            detail: format!("the resource is invalid: {err}"),
            violations: err.violations,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiFailure::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiFailure::NotFound(_) => StatusCode::NOT_FOUND,
            ApiFailure::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiFailure::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiFailure::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Kuma's error body for this failure.
    pub fn to_api_error(&self) -> ApiError {
        let title = match self {
            ApiFailure::BadRequest { .. } => "Bad Request",
            ApiFailure::NotFound(_) => "Not Found",
            ApiFailure::MethodNotAllowed(_) => "Method Not Allowed",
            ApiFailure::TooLarge => "Payload Too Large",
            ApiFailure::Internal(_) => "Internal Server Error",
        };
        let err = ApiError::new(self.status().as_u16(), title, self.to_string());
        match self {
            ApiFailure::BadRequest { violations, .. } => err.with_violations(violations),
            _ => err,
        }
    }
}

impl From<StoreError> for ApiFailure {
    fn from(e: StoreError) -> Self {
        ApiFailure::Internal(e.to_string())
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), detail = %self, "API request failed");
        }
        let body = serde_json::to_vec(&self.to_api_error()).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
