//! Request extractors whose rejections are Kuma error bodies: path parameters, the body (413
//! beyond the document limit) and the query (`size`, `offset`, `consistent`, `force`).

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request, rejection::PathRejection},
    http::{StatusCode, request::Parts},
};

use super::error::ApiFailure;

/// Largest page (`?size=`).
pub const MAX_PAGE_SIZE: usize = 1000;
/// Page size when `?size=` is absent (Kuma's default).
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// The path's parameters (`mesh`, `name`), percent-decoded.
#[derive(Debug, Default)]
pub struct PathParams(pub HashMap<String, String>);

/// The raw request body.
#[derive(Debug)]
pub struct Body(pub Bytes);

/// The query parameters the API understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryParams {
    /// `?size=`: page size.
    pub size: usize,
    /// `?offset=`: index of the page's first item.
    pub offset: usize,
    /// `?consistent=true`: read after a raft read barrier.
    pub consistent: bool,
    /// `?force=true`: delete a Mesh even though it has data planes.
    pub force: bool,
}

// === impl PathParams ===

impl PathParams {
    /// A parameter, or empty.
    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<HashMap<String, String>>::from_request_parts(parts, state).await {
            Ok(Path(map)) => Ok(PathParams(map)),
            // A route without parameters (`/meshes`).
            Err(PathRejection::MissingPathParams(_)) => Ok(PathParams::default()),
            Err(e) => Err(ApiFailure::bad_field(
                "",
                format!(
                    "the URL path is not valid ({}): names are lowercase letters, digits, '-', '_' and '.'",
                    e.body_text()
                ),
            )),
        }
    }
}

// === impl Body ===

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiFailure::TooLarge),
            Err(e) => Err(ApiFailure::bad_field(
                "",
                format!(
                    "could not read the request body ({}): send the resource again",
                    e.body_text()
                ),
            )),
        }
    }
}

// === impl QueryParams ===

impl Default for QueryParams {
    fn default() -> Self {
        Self {
            size: DEFAULT_PAGE_SIZE,
            offset: 0,
            consistent: false,
            force: false,
        }
    }
}

impl QueryParams {
    /// Parses a query string; unknown parameters are ignored (as Kuma does).
    pub fn parse(query: Option<&str>) -> Result<Self, ApiFailure> {
        let mut out = Self::default();
        let Some(query) = query else {
            return Ok(out);
        };
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "size" => {
                    out.size = match value.parse::<usize>() {
                        Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                        _ => {
                            return Err(ApiFailure::bad_field(
                                "size",
                                format!(
                                    "{value:?} is not a page size: use a whole number from 1 to {MAX_PAGE_SIZE}"
                                ),
                            ));
                        }
                    }
                }
                "offset" => {
                    out.offset = value.parse::<usize>().map_err(|_| {
                        ApiFailure::bad_field(
                            "offset",
                            format!(
                                "{value:?} is not an offset: use a whole number (the next page's offset is in `next`)"
                            ),
                        )
                    })?
                }
                "consistent" => out.consistent = parse_bool("consistent", &value)?,
                "force" => out.force = parse_bool("force", &value)?,
                _ => {}
            }
        }
        Ok(out)
    }
}

fn parse_bool(field: &str, value: &str) -> Result<bool, ApiFailure> {
    match value {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(ApiFailure::bad_field(
            field,
            format!("{other:?} is not a boolean: use true or false"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        assert_eq!(QueryParams::parse(None).unwrap(), QueryParams::default());
        let q = QueryParams::parse(Some("size=2&offset=4&consistent=true&force&x=y")).unwrap();
        assert_eq!(
            q,
            QueryParams {
                size: 2,
                offset: 4,
                consistent: true,
                force: true
            }
        );
        for bad in [
            "size=0",
            "size=abc",
            "size=1001",
            "offset=-1",
            "force=maybe",
        ] {
            let err = QueryParams::parse(Some(bad)).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
