//! Kuma's list envelope with `?size=N&offset=M` paging: `{total, items, next}`, where `next` is
//! the URL (path and query) of the next page, or null on the last one.

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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn pages() {
        let q = |size, offset| Paging { size, offset };
        let p = q(2, 0).page(vec![1, 2, 3, 4, 5], "/meshes");
        assert_eq!(
            (p.total, p.items, p.next.as_deref()),
            (5, vec![1, 2], Some("/meshes?size=2&offset=2"))
        );
        let p = q(2, 4).page(vec![1, 2, 3, 4, 5], "/meshes");
        assert_eq!((p.items, p.next), (vec![5], None));
        let p = q(2, 9).page(vec![1, 2, 3], "/meshes");
        assert_eq!((p.total, p.items, p.next), (3, vec![], None));
        let p = q(2, usize::MAX).page(Vec::<u8>::new(), "/x");
        assert_eq!(p.next, None);
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
