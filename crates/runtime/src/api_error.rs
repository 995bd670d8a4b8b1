//! `ApiFailure`: every way a request to the global's or a zone's API fails, answered with
//! Kuma's error body (`{type, status, title, detail, invalid_parameters}` from
//! `mosaic_core::api::ApiError`). The 401/403 of the admin rule come from
//! [`crate::api_auth`], in the same shape. Each server converts its own store errors into it.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use mosaic_core::{
    api::ApiError,
    resource::parse::MAX_DOCUMENT_BYTES,
    validate::{ValidationError, Violation},
};

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
    /// 405: the method is not allowed here.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the store's state prevents the write.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than the document limit.
    #[error("the request body is larger than {MAX_DOCUMENT_BYTES} bytes: {advice}")]
    TooLarge {
        /// What to do instead (the server's [`crate::api_dialect::ApiDialect::TOO_LARGE_ADVICE`]).
        advice: &'static str,
    },
    /// 503: the store cannot answer now (no raft leader).
    #[error("{0}")]
    Unavailable(String),
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
            ApiFailure::Conflict(_) => StatusCode::CONFLICT,
            ApiFailure::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiFailure::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiFailure::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiFailure::BadRequest { .. } => "Bad Request",
            ApiFailure::NotFound(_) => "Not Found",
            ApiFailure::MethodNotAllowed(_) => "Method Not Allowed",
            ApiFailure::Conflict(_) => "Conflict",
            ApiFailure::TooLarge { .. } => "Payload Too Large",
            ApiFailure::Unavailable(_) => "Service Unavailable",
            ApiFailure::Internal(_) => "Internal Server Error",
        }
    }

    /// Kuma's error body for this failure.
    pub fn to_api_error(&self) -> ApiError {
        let err = ApiError::new(self.status().as_u16(), self.title(), self.to_string());
        match self {
            ApiFailure::BadRequest { violations, .. } => err.with_violations(violations),
            _ => err,
        }
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
