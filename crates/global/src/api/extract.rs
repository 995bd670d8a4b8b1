//! The query parameters of the global's API: paging (`size`, `offset`, see
//! `mosaic_runtime::api_paging`), `consistent` and `force`. Path and body extractors are
//! `mosaic_runtime::api_extract`'s.

use mosaic_runtime::api_paging::Paging;

use super::error::ApiFailure;

/// The query parameters the API understands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// `?size=` and `?offset=`.
    pub paging: Paging,
    /// `?consistent=true`: read after a raft read barrier.
    pub consistent: bool,
    /// `?force=true`: delete a Mesh even though it has data planes.
    pub force: bool,
}

// === impl QueryParams ===

impl QueryParams {
    /// Parses a query string; unknown parameters are ignored (as Kuma does).
    pub fn parse(query: Option<&str>) -> Result<Self, ApiFailure> {
        let mut out = Self::default();
        let Some(query) = query else {
            return Ok(out);
        };
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if out.paging.accept(&key, &value)? {
                continue;
            }
            match key.as_ref() {
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
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn query_parameters() {
        assert_eq!(QueryParams::parse(None).unwrap(), QueryParams::default());
        let q = QueryParams::parse(Some("size=2&offset=4&consistent=true&force&x=y")).unwrap();
        assert_eq!(
            q,
            QueryParams {
                paging: Paging { size: 2, offset: 4 },
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
