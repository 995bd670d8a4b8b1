//! The global's Dataplane overviews: `GET /meshes/{mesh}/dataplanes/_overview` (also at Kuma's
//! older `/meshes/{mesh}/dataplanes+insights`, and across meshes at `/dataplanes/_overview` and
//! `/dataplanes+insights`) and one data plane's at `/meshes/{mesh}/dataplanes/{name}/_overview`
//! (and `/meshes/{mesh}/dataplanes+insights/{name}`): each Dataplane a zone reported, with its
//! DataplaneInsight (Kuma's `DataplaneOverview`, composed by `mosaic_runtime::api_overview`),
//! filtered by `name`, `filter[labels.K]`, `tag` and `gateway`.

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_core::resource::ResourceType;
use mosaic_runtime::{
    api_extract::{Listing, PathParams},
    api_format::Format,
    api_overview::{self, overview_item},
};

use super::{
    error::ApiFailure, extract::QueryParams, resources::barrier, resources::collection_path,
    state::ApiState,
};
use crate::store::ResourceKey;

/// `GET /meshes/{mesh}/dataplanes/_overview` (and across meshes without `{mesh}`).
pub async fn overview(State(state): State<ApiState>, req: Listing) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(req.query.as_deref())?;
    let filter = req.filter()?;
    barrier(&state, &query).await?;
    let items =
        api_overview::dataplane_overviews(|t, m| state.store.list(t, m), req.mesh(), &filter)?;
    let page = query.paging.page(items, &req.link());
    Ok(Format::from_headers(&req.headers).respond(StatusCode::OK, &page))
}

/// `GET /meshes/{mesh}/dataplanes/{name}/_overview`.
pub async fn overview_one(
    State(state): State<ApiState>,
    params: PathParams,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(query.as_deref())?;
    barrier(&state, &query).await?;
    let (mesh, name) = (params.get("mesh"), params.get("name"));
    let key = |t| ResourceKey::new(t, Some(mesh), name);
    let dp = state.store.get(&key(ResourceType::Dataplane))?.ok_or_else(|| {
        ApiFailure::NotFound(format!(
            "Dataplane {name:?} in mesh {mesh:?} not found: check the name, or list them with GET {}",
            collection_path(ResourceType::Dataplane, Some(mesh))
        ))
    })?;
    let insight = state.store.get(&key(ResourceType::DataplaneInsight))?;
    Ok(Format::from_headers(&headers)
        .respond(StatusCode::OK, &overview_item(&dp, insight.as_ref())))
}
