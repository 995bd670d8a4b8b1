//! Admin registration of Dataplanes: `PUT` (validated, stored in the zone store with the zone's
//! version, synced up over KDS), `DELETE` (the Dataplane and its DataplaneInsight), and the
//! overviews (Dataplane + DataplaneInsight, Kuma's `DataplaneOverview`, composed by
//! `mosaic_runtime::api_overview`).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_core::resource::ResourceType;
use mosaic_runtime::{
    api_body,
    api_extract::{Body, Listing, PathParams},
    api_format::Format,
    api_overview::{self, overview_item},
    api_paging::Paging,
};
use serde_json::json;
use time::OffsetDateTime;

use super::{error::ApiFailure, resources::not_found, state::ApiState};
use crate::store::StoreKey;

/// `PUT /meshes/{mesh}/dataplanes/{name}`: 201 created, 200 updated; the stored resource back.
pub async fn put(
    State(state): State<ApiState>,
    params: PathParams,
    headers: HeaderMap,
    Body(bytes): Body,
) -> Result<Response, ApiFailure> {
    let (mesh, name) = (params.get("mesh"), params.get("name"));
    let target = params.target(ResourceType::Dataplane);
    let decoded =
        api_body::decode_reporting::<ApiState>(&headers, &bytes, &target, state.unknown_fields)?;
    let resource = decoded.resource;
    if state.store.get(&StoreKey::mesh(mesh))?.is_none() {
        return Err(ApiFailure::bad_field(
            "mesh",
            format!(
                "mesh {mesh:?} does not exist in zone {}: create it on the global control plane (the zone receives it over KDS)",
                state.zone
            ),
        ));
    }
    let write = state.store.put_local(resource, OffsetDateTime::now_utc())?;
    let stored = write.item.to_resource().map_err(|e| {
        ApiFailure::Internal(format!("the stored Dataplane cannot be read back: {e}"))
    })?;
    tracing::info!(zone = %state.zone, mesh = %mesh, name = %name, created = write.created, "Dataplane registered");
    for field in &decoded.ignored {
        tracing::info!(zone = %state.zone, mesh = %mesh, name = %name, %field, "unknown field ignored, as Kuma ignores it (api.unknown_fields = \"refuse\" refuses it)");
    }
    let status = if write.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = Format::from_headers(&headers).respond(status, &stored.to_universal());
    Ok(api_body::with_warnings(answer, &decoded.ignored))
}

/// `DELETE /meshes/{mesh}/dataplanes/{name}`: removes it and its DataplaneInsight.
pub async fn delete(
    State(state): State<ApiState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let (mesh, name) = (params.get("mesh"), params.get("name"));
    let keys = [
        StoreKey::new(ResourceType::Dataplane, Some(mesh), name),
        StoreKey::new(ResourceType::DataplaneInsight, Some(mesh), name),
    ];
    let changes = state.store.delete_local(&keys)?;
    if !changes.iter().any(|c| c.key == keys[0]) {
        return Err(not_found(ResourceType::Dataplane, Some(mesh), name));
    }
    tracing::info!(zone = %state.zone, mesh = %mesh, name = %name, "Dataplane deleted");
    Ok(Format::from_headers(&headers).respond(StatusCode::OK, &json!({})))
}

/// `GET /meshes/{mesh}/dataplanes/{name}/_overview`.
pub async fn overview_one(
    State(state): State<ApiState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let (mesh, name) = (params.get("mesh"), params.get("name"));
    let dp = state
        .store
        .get_resource(ResourceType::Dataplane, Some(mesh), name)?
        .ok_or_else(|| not_found(ResourceType::Dataplane, Some(mesh), name))?;
    let insight = state
        .store
        .get_resource(ResourceType::DataplaneInsight, Some(mesh), name)?;
    Ok(Format::from_headers(&headers)
        .respond(StatusCode::OK, &overview_item(&dp, insight.as_ref())))
}

/// `GET /meshes/{mesh}/dataplanes/_overview` (and `dataplanes+insights`, and across meshes).
pub async fn overview_list(
    State(state): State<ApiState>,
    req: Listing,
) -> Result<Response, ApiFailure> {
    let paging = Paging::parse(req.query.as_deref())?;
    let filter = req.filter()?;
    let items = api_overview::dataplane_overviews(
        |t, m| state.store.list_resources(t, m),
        req.mesh(),
        &filter,
    )?;
    Ok(
        Format::from_headers(&req.headers)
            .respond(StatusCode::OK, &paging.page(items, &req.link())),
    )
}
