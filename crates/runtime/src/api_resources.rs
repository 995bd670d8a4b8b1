//! Reading stored resources for the API, the same way on the global and the zones: collections
//! from each server's store (passed as its list function), sorted by mesh and name, in Universal
//! form, one page of them in Kuma's list envelope.

use axum::{http::StatusCode, response::Response};
use mosaic_core::resource::{Resource, ResourceType};

use crate::{api_error::ApiFailure, api_extract::Listing, api_format::Format, api_paging::Paging};

/// Every `rtype` resource (of `mesh`, for mesh-scoped types) by `list` (a server's store), sorted
/// by mesh, then name.
pub fn list_sorted<L, E>(
    list: &L,
    rtype: ResourceType,
    mesh: Option<&str>,
) -> Result<Vec<Resource>, ApiFailure>
where
    L: Fn(ResourceType, Option<&str>) -> Result<Vec<Resource>, E>,
    E: Into<ApiFailure>,
{
    let mut items = list(rtype, mesh).map_err(Into::into)?;
    sort_by_name(&mut items);
    Ok(items)
}

/// Sorts resources by mesh, then name.
pub fn sort_by_name(items: &mut [Resource]) {
    items.sort_by(|a, b| (&a.meta.mesh, &a.meta.name).cmp(&(&b.meta.mesh, &b.meta.name)));
}

/// `GET` of the collection request `req`: the `paging` page of `rtype` resources by `list` (of
/// the mesh in `req`'s path, or every mesh on a route without one, for mesh-scoped types) that
/// pass `req`'s filters ([`crate::api_filter`]), in Universal form, sorted by mesh and name, in
/// the format `req`'s headers ask for.
pub fn list_request<L, E>(
    list: L,
    rtype: ResourceType,
    req: &Listing,
    paging: &Paging,
) -> Result<Response, ApiFailure>
where
    L: Fn(ResourceType, Option<&str>) -> Result<Vec<Resource>, E>,
    E: Into<ApiFailure>,
{
    let filter = req.filter()?;
    let mesh = req.mesh().filter(|_| rtype.is_mesh_scoped());
    let items: Vec<_> = list_sorted(&list, rtype, mesh)?
        .iter()
        .filter(|r| filter.matches(r))
        .map(Resource::to_universal)
        .collect();
    Ok(
        Format::from_headers(&req.headers)
            .respond(StatusCode::OK, &paging.page(items, &req.link())),
    )
}
