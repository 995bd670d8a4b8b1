//! `GET /meshes/{mesh}/dataplanes/_overview`: each Dataplane a zone reported, with its
//! DataplaneInsight (Kuma's `DataplaneOverview`, composed by `mosaic_runtime::api_overview`).

use axum::{
    extract::{OriginalUri, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_runtime::{api_extract::PathParams, api_format::Format, api_overview};

use super::{error::ApiFailure, extract::QueryParams, resources::barrier, state::ApiState};

/// `GET /meshes/{mesh}/dataplanes/_overview`.
pub async fn overview(
    State(state): State<ApiState>,
    params: PathParams,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(query.as_deref())?;
    barrier(&state, &query).await?;
    let items = api_overview::dataplane_overviews(state.store.as_ref(), params.get("mesh"))?;
    Ok(Format::from_headers(&headers)
        .respond(StatusCode::OK, &query.paging.page(items, uri.path())))
}
