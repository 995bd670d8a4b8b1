//! Kuma's list envelope with `?size=N&offset=M` paging: `{total, items, next}`, where `next` is
//! the URL (path and query) of the next page, or null on the last one.

use mosaic_core::api::ListResponse;

use super::extract::QueryParams;

/// The page of `items` that `query` asks for; `path` is the collection's URL path.
pub fn page<T>(items: Vec<T>, query: &QueryParams, path: &str) -> ListResponse<T> {
    let total = items.len();
    let end = query.offset.saturating_add(query.size);
    let next = (end < total).then(|| format!("{path}?size={}&offset={end}", query.size));
    let items = items
        .into_iter()
        .skip(query.offset)
        .take(query.size)
        .collect();
    ListResponse { total, items, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let q = |size, offset| QueryParams {
            size,
            offset,
            ..QueryParams::default()
        };
        let p = page(vec![1, 2, 3, 4, 5], &q(2, 0), "/meshes");
        assert_eq!(
            (p.total, p.items, p.next.as_deref()),
            (5, vec![1, 2], Some("/meshes?size=2&offset=2"))
        );
        let p = page(vec![1, 2, 3, 4, 5], &q(2, 4), "/meshes");
        assert_eq!((p.items, p.next), (vec![5], None));
        let p = page(vec![1, 2, 3], &q(2, 9), "/meshes");
        assert_eq!((p.total, p.items, p.next), (3, vec![], None));
        let p = page(Vec::<u8>::new(), &q(2, usize::MAX), "/x");
        assert_eq!(p.next, None);
    }
}
