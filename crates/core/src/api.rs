//! Shapes of the HTTP API shared by servers and `mosaicctl`: Kuma's error body and list envelope.

use serde::{Deserialize, Serialize};

use crate::validate::Violation;

/// Kuma's error body: `{type, status, title, detail, invalid_parameters: [{field, reason}]}`,
/// plus the fields Kuma 2.14 still sends for older clients (`pkg/core/rest/errors`): `details`
/// (the detail again) and `causes` (`[{field, message}]`, the invalid parameters again).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A URI naming the kind of error (`/std-errors`, Kuma's default).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// HTTP status.
    #[serde(default)]
    pub status: u16,
    /// Short summary (`Bad Request`, `Resource not found`, ...).
    #[serde(default)]
    pub title: String,
    /// What went wrong and what to do.
    #[serde(default)]
    pub detail: String,
    /// Field-level problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_parameters: Vec<InvalidParameter>,
    /// Kuma's deprecated copy of `detail` (always sent, as Kuma does).
    #[serde(default)]
    pub details: String,
    /// Kuma's deprecated copy of `invalid_parameters`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
}

/// One of Kuma's deprecated `causes`: a field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// Field path.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// One field-level problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidParameter {
    /// Field path.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Kuma's list envelope: `{total, items, next}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListResponse<T> {
    /// How many items exist in all pages.
    pub total: usize,
    /// This page's items.
    pub items: Vec<T>,
    /// URL of the next page, if any.
    pub next: Option<String>,
}

// === impl ApiError ===

impl ApiError {
    /// An error with a status, title and detail.
    pub fn new(status: u16, title: impl Into<String>, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self {
            kind: "/std-errors".to_string(),
            status,
            title: title.into(),
            details: detail.clone(),
            detail,
            invalid_parameters: Vec::new(),
            causes: Vec::new(),
        }
    }

    /// Adds field-level problems.
    pub fn with_violations(mut self, violations: &[Violation]) -> Self {
        self.invalid_parameters = violations
            .iter()
            .map(|v| InvalidParameter {
                field: v.field.clone(),
                reason: v.message.clone(),
            })
            .collect();
        self.causes = violations
            .iter()
            .map(|v| Cause {
                field: v.field.clone(),
                message: v.message.clone(),
            })
            .collect();
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.status, self.detail)?;
        for p in &self.invalid_parameters {
            write!(f, "\n  {}: {}", p.field, p.reason)?;
        }
        Ok(())
    }
}

/// Whether `ip` is a loopback address: 127.0.0.0/8, `::1`, or IPv4-mapped 127.0.0.0/8 (the callers
/// `api.localhost_is_admin` makes admins, and the servers mosaicctl sends a found token to).
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_carry_kumas_details_and_causes() {
        let e = ApiError::new(400, "Bad Request", "the resource is invalid")
            .with_violations(&[Violation::new("name", "must not be empty")]);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({
                "type": "/std-errors", "status": 400, "title": "Bad Request",
                "detail": "the resource is invalid", "details": "the resource is invalid",
                "invalid_parameters": [{"field": "name", "reason": "must not be empty"}],
                "causes": [{"field": "name", "message": "must not be empty"}],
            })
        );
        let plain = serde_json::to_value(ApiError::new(404, "Not Found", "gone")).unwrap();
        assert_eq!(plain["details"], "gone");
        assert!(plain.get("causes").is_none());
    }
}
