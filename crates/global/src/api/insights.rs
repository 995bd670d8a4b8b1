//! `GET /mesh-insights`, `GET /mesh-insights/{mesh}` and `GET /global-insight`: Kuma's
//! `MeshInsight`s and `GlobalInsight`, counted from the store when asked
//! (`mosaic_runtime::api_insight`).

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_core::resource::ResourceType;
use mosaic_runtime::{
    api_extract::{Listing, PathParams},
    api_format::Format,
    api_insight,
};

use super::{
    error::ApiFailure, extract::QueryParams, resources::barrier, state::ApiState,
    zones::zone_counts,
};
use crate::store::ResourceKey;

/// `GET /mesh-insights`: one page of every mesh's `MeshInsight` (`name` and label filters apply
/// to the meshes).
pub async fn list(State(state): State<ApiState>, req: Listing) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(req.query.as_deref())?;
    let filter = req.filter()?;
    barrier(&state, &query).await?;
    let list = |t, m: Option<&str>| state.store.list(t, m);
    let keep: Vec<String> = state
        .store
        .list(ResourceType::Mesh, None)?
        .into_iter()
        .filter(|m| filter.matches(m))
        .map(|m| m.meta.name)
        .collect();
    let items: Vec<_> = api_insight::mesh_insights(&list, state.now())?
        .into_iter()
        .filter(|i| {
            i.get("name")
                .and_then(|n| n.as_str())
                .is_some_and(|n| keep.iter().any(|k| k == n))
        })
        .collect();
    let page = query.paging.page(items, &req.link());
    Ok(Format::from_headers(&req.headers).respond(StatusCode::OK, &page))
}

/// `GET /mesh-insights/{mesh}`.
pub async fn get_one(
    State(state): State<ApiState>,
    params: PathParams,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(query.as_deref())?;
    barrier(&state, &query).await?;
    let name = params.get("mesh");
    let mesh = state
        .store
        .get(&ResourceKey::new(ResourceType::Mesh, None, name))?
        .ok_or_else(|| {
            ApiFailure::NotFound(format!(
                "Mesh {name:?} not found, so it has no insight: list meshes with GET /meshes"
            ))
        })?;
    let list = |t, m: Option<&str>| state.store.list(t, m);
    let counts = api_insight::MeshCounts::count(&list, name, state.now())?;
    Ok(Format::from_headers(&headers).respond(StatusCode::OK, &counts.to_mesh_insight(&mesh)))
}

/// `GET /global-insight`.
pub async fn global(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(query.as_deref())?;
    barrier(&state, &query).await?;
    let (zones, online) = zone_counts(&state)?;
    let list = |t, m: Option<&str>| state.store.list(t, m);
    let doc = api_insight::global_insight(&list, state.now(), zones, online)?;
    Ok(Format::from_headers(&headers).respond(StatusCode::OK, &doc))
}
