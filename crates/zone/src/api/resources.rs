//! Reads of stored resources (`GET` of a collection or an item), the 405 for writes of
//! global-owned types, and the 404 for Secrets, which the zone API does not serve.
//!
//! Secrets decision: Kuma's zone control plane can show synced Secrets to admins, but this API
//! has no admin authentication (the contract gives the zone's `[api]` only `listen`), so Secrets
//! and GlobalSecrets stay internal: `GET` answers 404 saying where to read them (the global),
//! `PUT`/`DELETE` answer 405 like every other global-owned type.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_core::resource::ResourceType;
use mosaic_runtime::{
    api_extract::{Listing, PathParams},
    api_format::Format,
    api_paging::Paging,
    api_resources::list_request,
};

use super::{error::ApiFailure, state::ApiState};

/// `GET` of a collection: `{total, items, next}`, items in Universal form, sorted by name.
pub async fn list(
    rtype: ResourceType,
    State(state): State<ApiState>,
    req: Listing,
) -> Result<Response, ApiFailure> {
    let list = |t, m: Option<&str>| state.store.list_resources(t, m);
    list_request(list, rtype, &req, &Paging::parse(req.query.as_deref())?)
}

/// `GET` of one resource.
pub async fn get_one(
    rtype: ResourceType,
    State(state): State<ApiState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let t = params.target(rtype);
    let (mesh, name) = (t.mesh.as_deref(), t.name.as_str());
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

/// The 404 for a missing resource.
pub fn not_found(rtype: ResourceType, mesh: Option<&str>, name: &str) -> ApiFailure {
    ApiFailure::NotFound(match mesh {
        Some(m) => format!("{rtype} {name:?} not found in mesh {m:?}"),
        None => format!("{rtype} {name:?} not found"),
    })
}
