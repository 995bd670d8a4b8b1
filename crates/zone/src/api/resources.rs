//! Reads of stored resources (`GET` of a collection or an item), the 405 for writes of
//! global-owned types, and the 404 for Secrets, which the zone API does not serve.
//!
//! Secrets decision: Kuma's zone control plane can show synced Secrets to admins, but this API
//! has no admin authentication (the contract gives the zone's `[api]` only `listen`), so Secrets
//! and GlobalSecrets stay internal: `GET` answers 404 saying where to read them (the global),
//! `PUT`/`DELETE` answer 405 like every other global-owned type.

use axum::{
    extract::{OriginalUri, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_core::resource::{Resource, ResourceType};

use super::{
    error::ApiFailure,
    respond::{Format, Paging},
    state::{ApiState, PathParams},
};

/// `GET` of a collection: `{total, items, next}`, items in Universal form, sorted by name.
pub async fn list(
    rtype: ResourceType,
    State(state): State<ApiState>,
    params: PathParams,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let paging = Paging::parse(query.as_deref())?;
    let mesh = rtype.is_mesh_scoped().then(|| params.get("mesh"));
    let mut items = state.store.list_resources(rtype, mesh)?;
    sort_by_name(&mut items);
    let items: Vec<_> = items.iter().map(Resource::to_universal).collect();
    Ok(Format::from_headers(&headers).respond(StatusCode::OK, &paging.page(items, uri.path())))
}

/// `GET` of one resource.
pub async fn get_one(
    rtype: ResourceType,
    State(state): State<ApiState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let (mesh, name) = target(rtype, &params);
    match state.store.get_resource(rtype, mesh, name)? {
        Some(r) => Ok(Format::from_headers(&headers).respond(StatusCode::OK, &r.to_universal())),
        None => Err(not_found(rtype, mesh, name)),
    }
}

/// `PUT`/`DELETE` of a global-owned type.
pub async fn global_owned(rtype: ResourceType) -> ApiFailure {
    ApiFailure::MethodNotAllowed(format!(
        "{} are managed on the global control plane: apply the change there (mosaicctl --api <global API>); this zone holds a read-only copy synced over KDS",
        plural(rtype)
    ))
}

/// `GET` of Secrets and GlobalSecrets.
pub async fn secrets_hidden(rtype: ResourceType) -> ApiFailure {
    ApiFailure::NotFound(format!(
        "the zone API does not serve {} (they stay inside the zone control plane): read them on the global control plane",
        plural(rtype)
    ))
}

/// `Meshes`, `Secrets`, ...
pub fn plural(rtype: ResourceType) -> String {
    match rtype {
        ResourceType::Mesh => "Meshes".to_string(),
        other => format!("{other}s"),
    }
}

/// Mesh (for mesh-scoped types) and name from the path (a Mesh's own name is the `{mesh}`
/// segment, which every `/meshes/{mesh}/...` route shares).
pub fn target(rtype: ResourceType, params: &PathParams) -> (Option<&str>, &str) {
    if rtype == ResourceType::Mesh {
        return (None, params.get("mesh"));
    }
    let mesh = rtype.is_mesh_scoped().then(|| params.get("mesh"));
    (mesh, params.get("name"))
}

/// The 404 for a missing resource.
pub fn not_found(rtype: ResourceType, mesh: Option<&str>, name: &str) -> ApiFailure {
    ApiFailure::NotFound(match mesh {
        Some(m) => format!("{rtype} {name:?} not found in mesh {m:?}"),
        None => format!("{rtype} {name:?} not found"),
    })
}

/// Sorts by name (keys already sort by mesh, then name).
pub fn sort_by_name(items: &mut [Resource]) {
    items.sort_by(|a, b| {
        (a.meta.mesh.as_deref(), a.meta.name.as_str())
            .cmp(&(b.meta.mesh.as_deref(), b.meta.name.as_str()))
    });
}
