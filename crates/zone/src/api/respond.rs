//! Responses: JSON by default, YAML when `Accept` asks for it; Kuma's `{total, items, next}`
//! paging with `?size=N&offset=M`. (Same rules as the global's API; shareable.)

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use mosaic_core::api::ListResponse;
use serde::Serialize;

use super::error::ApiFailure;

/// The media types read and written as YAML.
pub const YAML_MEDIA_TYPES: &[&str] = &["application/yaml", "application/x-yaml", "text/yaml"];

/// Page size when `?size=` is absent (Kuma's default).
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page.
pub const MAX_PAGE_SIZE: usize = 1000;

/// How a response body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `application/yaml`.
    Yaml,
}

/// `?size=` and `?offset=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    /// Page size.
    pub size: usize,
    /// Index of the page's first item.
    pub offset: usize,
}

// === impl Format ===

impl Format {
    /// YAML when `Accept` names a YAML media type before (or without) JSON, else JSON.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        for value in headers.get_all(header::ACCEPT) {
            for item in value.to_str().unwrap_or_default().split(',') {
                let essence = item.split(';').next().unwrap_or_default().trim();
                if YAML_MEDIA_TYPES.contains(&essence.to_ascii_lowercase().as_str()) {
                    return Format::Yaml;
                }
                if essence.eq_ignore_ascii_case("application/json") {
                    return Format::Json;
                }
            }
        }
        Format::Json
    }

    /// Writes `value` with `status` in this format.
    pub fn respond<T: Serialize>(self, status: StatusCode, value: &T) -> Response {
        let (encoded, content_type) = match self {
            Format::Json => (
                serde_json::to_vec(value).map_err(|e| e.to_string()),
                "application/json",
            ),
            Format::Yaml => (
                serde_saphyr::to_string(value)
                    .map(String::into_bytes)
                    .map_err(|e| e.to_string()),
                "application/yaml",
            ),
        };
        match encoded {
            Ok(body) => (
                status,
                [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
                body,
            )
                .into_response(),
            Err(e) => {
                ApiFailure::Internal(format!("could not encode the response: {e}")).into_response()
            }
        }
    }
}

// === impl Paging ===

impl Paging {
    /// Parses `size` and `offset` from a query string; other parameters are ignored.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiFailure> {
        let mut out = Paging {
            size: DEFAULT_PAGE_SIZE,
            offset: 0,
        };
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "size" => {
                    out.size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                        .ok_or_else(|| {
                            ApiFailure::bad_field(
                                "size",
                                format!("{value:?} is not a page size: use a whole number from 1 to {MAX_PAGE_SIZE}"),
                            )
                        })?
                }
                "offset" => {
                    out.offset = value.parse::<usize>().map_err(|_| {
                        ApiFailure::bad_field(
                            "offset",
                            format!("{value:?} is not an offset: use a whole number (the next page's offset is in `next`)"),
                        )
                    })?
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// This page of `items`; `path` is the collection's URL path.
    pub fn page<T>(&self, items: Vec<T>, path: &str) -> ListResponse<T> {
        let total = items.len();
        let end = self.offset.saturating_add(self.size);
        let next = (end < total).then(|| format!("{path}?size={}&offset={end}", self.size));
        let items = items
            .into_iter()
            .skip(self.offset)
            .take(self.size)
            .collect();
        ListResponse { total, items, next }
    }
}
