//! Kuma's list envelope with `?size=N&offset=M` paging: `{total, items, next}`, where `next` is
//! the absolute URL of the next page (Kuma's `nextLink`: the request's scheme, `Host` and path,
//! its query with `offset` set, keys sorted), or null on the last one.

use mosaic_core::api::ListResponse;

use crate::api_error::ApiFailure;

/// Page size when `?size=` is absent (Kuma's default).
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page (`?size=`).
pub const MAX_PAGE_SIZE: usize = 1000;

/// `?size=` and `?offset=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    /// Page size.
    pub size: usize,
    /// Index of the page's first item.
    pub offset: usize,
}

// === impl Paging ===

impl Default for Paging {
    fn default() -> Self {
        Self {
            size: DEFAULT_PAGE_SIZE,
            offset: 0,
        }
    }
}

impl Paging {
    /// Parses `size` and `offset` from a query string; other parameters are ignored.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiFailure> {
        let mut out = Paging::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            out.accept(&key, &value)?;
        }
        Ok(out)
    }

    /// Takes `key=value` if it is `size` or `offset` (true), else leaves it to the caller
    /// (false).
    pub fn accept(&mut self, key: &str, value: &str) -> Result<bool, ApiFailure> {
        match key {
            "size" => {
                self.size = match value.parse::<usize>() {
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
                self.offset = value.parse::<usize>().map_err(|_| {
                    ApiFailure::bad_field(
                        "offset",
                        format!(
                            "{value:?} is not an offset: use a whole number (the next page's offset is in `next`)"
                        ),
                    )
                })?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// This page of `items`; `link` is where the request came (the next page's URL base).
    pub fn page<T>(&self, items: Vec<T>, link: &PageLink) -> ListResponse<T> {
        let total = items.len();
        let end = self.offset.saturating_add(self.size);
        let next = (end < total).then(|| link.with_offset(end));
        let items = items
            .into_iter()
            .skip(self.offset)
            .take(self.size)
            .collect();
        ListResponse { total, items, next }
    }
}

/// The request a page answers, for its `next` link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageLink {
    /// `http` or `https`.
    pub scheme: String,
    /// The request's `Host`.
    pub host: String,
    /// The URL path.
    pub path: String,
    /// The raw query string.
    pub query: Option<String>,
}

impl PageLink {
    /// The URL of the same request with `offset` set (Go's `url.Values.Encode`: keys sorted).
    pub fn with_offset(&self, offset: usize) -> String {
        let mut pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
                .filter(|(k, _)| k != "offset")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        pairs.push(("offset".into(), offset.to_string()));
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("{}://{}{}?{query}", self.scheme, self.host, self.path)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn link(path: &str, query: &str) -> PageLink {
        PageLink {
            scheme: "http".into(),
            host: "127.0.0.1:5681".into(),
            path: path.into(),
            query: Some(query.into()),
        }
    }

    #[test]
    fn pages() {
        let q = |size, offset| Paging { size, offset };
        let meshes = link("/meshes", "size=2");
        let p = q(2, 0).page(vec![1, 2, 3, 4, 5], &meshes);
        assert_eq!(
            (p.total, p.items, p.next.as_deref()),
            (
                5,
                vec![1, 2],
                Some("http://127.0.0.1:5681/meshes?offset=2&size=2")
            )
        );
        let p = q(2, 4).page(vec![1, 2, 3, 4, 5], &meshes);
        assert_eq!((p.items, p.next), (vec![5], None));
        let p = q(2, 9).page(vec![1, 2, 3], &meshes);
        assert_eq!((p.total, p.items, p.next), (3, vec![], None));
        let p = q(2, usize::MAX).page(Vec::<u8>::new(), &link("/x", ""));
        assert_eq!(p.next, None);
    }

    #[test]
    fn next_keeps_the_other_parameters() {
        let l = link(
            "/meshes/default/dataplanes",
            "tag=version:v1&size=1&offset=1&name=web",
        );
        assert_eq!(
            l.with_offset(2),
            "http://127.0.0.1:5681/meshes/default/dataplanes?name=web&offset=2&size=1&tag=version%3Av1"
        );
    }

    #[test]
    fn size_and_offset() {
        assert_eq!(Paging::parse(None).unwrap(), Paging::default());
        assert_eq!(
            Paging::parse(Some("size=2&offset=4&force=maybe&x=y")).unwrap(),
            Paging { size: 2, offset: 4 }
        );
        for bad in ["size=0", "size=abc", "size=1001", "offset=-1"] {
            let err = Paging::parse(Some(bad)).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
