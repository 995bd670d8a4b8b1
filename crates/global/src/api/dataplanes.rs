//! `GET /meshes/{mesh}/dataplanes/_overview`: each Dataplane a zone reported, with its
//! DataplaneInsight (Kuma's `DataplaneOverview`).

use std::collections::BTreeMap;

use axum::{
    extract::{OriginalUri, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_core::resource::{Resource, ResourceType};
use serde_json::{Map, Value};

use super::{
    error::ApiFailure,
    extract::{PathParams, QueryParams},
    list::page,
    resources::{barrier, sort_by_name},
    respond::Format,
    state::ApiState,
};

const META_FIELDS: &[&str] = &[
    "type",
    "mesh",
    "name",
    "labels",
    "creationTime",
    "modificationTime",
    "version",
];

/// One data plane's overview item: its meta, `dataplane` (spec) and `dataplaneInsight` (spec).
pub fn overview_item(dataplane: &Resource, insight: Option<&Resource>) -> Value {
    let universal = dataplane.to_universal();
    let mut out = Map::new();
    out.insert("type".into(), "DataplaneOverview".into());
    let mut spec = Map::new();
    if let Value::Object(fields) = universal {
        for (k, v) in fields {
            if k == "type" {
                continue;
            }
            if META_FIELDS.contains(&k.as_str()) {
                out.insert(k, v);
            } else {
                spec.insert(k, v);
            }
        }
    }
    out.insert("dataplane".into(), Value::Object(spec));
    out.insert(
        "dataplaneInsight".into(),
        insight
            .map(|i| i.spec.to_value())
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    Value::Object(out)
}

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
    let mesh = params.get("mesh");
    let mut dataplanes = state.store.list(ResourceType::Dataplane, Some(mesh))?;
    sort_by_name(&mut dataplanes);
    let insights: BTreeMap<String, Resource> = state
        .store
        .list(ResourceType::DataplaneInsight, Some(mesh))?
        .into_iter()
        .map(|i| (i.meta.name.clone(), i))
        .collect();
    let items: Vec<Value> = dataplanes
        .iter()
        .map(|d| overview_item(d, insights.get(&d.meta.name)))
        .collect();
    Ok(Format::from_headers(&headers).respond(StatusCode::OK, &page(items, &query, uri.path())))
}
