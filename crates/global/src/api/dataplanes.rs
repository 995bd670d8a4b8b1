//! `GET /meshes/{mesh}/dataplanes/_overview`: each Dataplane a zone reported, with its
//! DataplaneInsight (Kuma's `DataplaneOverview`, composed by `mosaic_runtime::api_overview`).

use axum::{extract::State, http::StatusCode, response::Response};
use mosaic_runtime::{api_extract::Listing, api_format::Format, api_overview};

use super::{error::ApiFailure, extract::QueryParams, resources::barrier, state::ApiState};

/// `GET /meshes/{mesh}/dataplanes/_overview`.
pub async fn overview(State(state): State<ApiState>, req: Listing) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(req.query.as_deref())?;
    barrier(&state, &query).await?;
    let items =
        api_overview::dataplane_overviews(|t, m| state.store.list(t, m), req.params.get("mesh"))?;
    let page = query.paging.page(items, &req.path);
    Ok(Format::from_headers(&req.headers).respond(StatusCode::OK, &page))
}
