//! Reading stored resources for the API, the same way on the global and the zones: a
//! [`ResourceReader`] over each server's store, collections sorted by mesh and name, in
//! Universal form, one page of them in Kuma's list envelope.

use axum::{
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_core::resource::{Resource, ResourceType};

use crate::{api_error::ApiFailure, api_format::Format, api_paging::Paging};

/// A store the API lists resources from.
pub trait ResourceReader {
    /// Why the store could not answer.
    type Error: Into<ApiFailure>;

    /// Every `rtype` resource (of `mesh`, for mesh-scoped types), in any order.
    fn list_resources(
        &self,
        rtype: ResourceType,
        mesh: Option<&str>,
    ) -> Result<Vec<Resource>, Self::Error>;

    /// [`ResourceReader::list_resources`] sorted by mesh, then name.
    fn list_sorted(
        &self,
        rtype: ResourceType,
        mesh: Option<&str>,
    ) -> Result<Vec<Resource>, ApiFailure> {
        let mut items = self.list_resources(rtype, mesh).map_err(Into::into)?;
        sort_by_name(&mut items);
        Ok(items)
    }
}

/// Sorts resources by mesh, then name.
pub fn sort_by_name(items: &mut [Resource]) {
    items.sort_by(|a, b| (&a.meta.mesh, &a.meta.name).cmp(&(&b.meta.mesh, &b.meta.name)));
}

/// `GET` of a collection: the `paging` page of `rtype` resources (of `mesh`) in Universal form,
/// sorted by name; `path` is the collection's URL path.
pub fn list_response<R: ResourceReader + ?Sized>(
    reader: &R,
    rtype: ResourceType,
    mesh: Option<&str>,
    paging: &Paging,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiFailure> {
    let items: Vec<_> = reader
        .list_sorted(rtype, mesh)?
        .iter()
        .map(Resource::to_universal)
        .collect();
    Ok(Format::from_headers(headers).respond(StatusCode::OK, &paging.page(items, path)))
}
