//! Response bodies: JSON by default, YAML when the client's `Accept` asks for it.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::api_error::ApiFailure;

/// The media types read and written as YAML.
pub const YAML_MEDIA_TYPES: &[&str] = &["application/yaml", "application/x-yaml", "text/yaml"];

/// How a response body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `application/yaml`.
    Yaml,
}

// === impl Format ===

impl Format {
    /// YAML when `Accept` names a YAML media type before (or without) JSON, else JSON.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        for item in accept.split(',') {
            let essence = item
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if YAML_MEDIA_TYPES.contains(&essence.as_str()) {
                return Format::Yaml;
            }
            if essence == "application/json" {
                return Format::Json;
            }
        }
        Format::Json
    }

    /// Writes `value` with `status` in this format.
    pub fn respond<T: Serialize>(self, status: StatusCode, value: &T) -> Response {
        let encoded = match self {
            Format::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
            Format::Yaml => serde_saphyr::to_string(value)
                .map(String::into_bytes)
                .map_err(|e| e.to_string()),
        };
        match encoded {
            Ok(body) => {
                let content_type = match self {
                    Format::Json => "application/json",
                    Format::Yaml => "application/yaml",
                };
                (
                    status,
                    [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
                    body,
                )
                    .into_response()
            }
            Err(e) => {
                ApiFailure::Internal(format!("could not encode the response: {e}")).into_response()
            }
        }
    }
}

/// Writes `value` with `status` in the format `headers` ask for.
pub fn respond<T: Serialize>(headers: &HeaderMap, status: StatusCode, value: &T) -> Response {
    Format::from_headers(headers).respond(status, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiation() {
        assert_eq!(Format::from_headers(&HeaderMap::new()), Format::Json);
        assert_eq!(Format::from_headers(&accept("*/*")), Format::Json);
        assert_eq!(
            Format::from_headers(&accept("application/yaml")),
            Format::Yaml
        );
        assert_eq!(
            Format::from_headers(&accept("text/yaml;q=0.9, application/json")),
            Format::Yaml
        );
        assert_eq!(
            Format::from_headers(&accept("application/json, application/x-yaml")),
            Format::Json
        );
    }
}
