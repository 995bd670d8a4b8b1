//! Admin registration of Dataplanes: `PUT` (validated, stored in the zone store with the zone's
//! version, synced up over KDS), `DELETE` (the Dataplane and its DataplaneInsight), and the
//! overviews (Dataplane + DataplaneInsight, Kuma's `DataplaneOverview`).

use std::collections::BTreeMap;

use axum::{
    body::Bytes,
    extract::{OriginalUri, RawQuery, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_core::resource::{Resource, ResourceType};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{
    body,
    error::ApiFailure,
    resources::{not_found, sort_by_name},
    respond::{Format, Paging},
    state::{ApiState, PathParams},
};
use crate::store::StoreKey;

/// `PUT /meshes/{mesh}/dataplanes/{name}`: 201 created, 200 updated; the stored resource back.
pub async fn put(
    State(state): State<ApiState>,
    params: PathParams,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiFailure> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiFailure::TooLarge
        } else {
            ApiFailure::bad_field(
                "",
                format!("could not read the request body ({})", e.body_text()),
            )
        }
    })?;
    let (mesh, name) = (params.get("mesh"), params.get("name"));
    let resource = body::decode(&bytes, ResourceType::Dataplane, Some(mesh), name)?;
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
    let status = if write.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(Format::from_headers(&headers).respond(status, &stored.to_universal()))
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

/// `GET /meshes/{mesh}/dataplanes/_overview`.
pub async fn overview_list(
    State(state): State<ApiState>,
    params: PathParams,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let paging = Paging::parse(query.as_deref())?;
    let mesh = params.get("mesh");
    let mut dataplanes = state
        .store
        .list_resources(ResourceType::Dataplane, Some(mesh))?;
    sort_by_name(&mut dataplanes);
    let insights: BTreeMap<String, Resource> = state
        .store
        .list_resources(ResourceType::DataplaneInsight, Some(mesh))?
        .into_iter()
        .map(|i| (i.meta.name.clone(), i))
        .collect();
    let items: Vec<Value> = dataplanes
        .iter()
        .map(|d| overview_item(d, insights.get(&d.meta.name)))
        .collect();
    Ok(Format::from_headers(&headers).respond(StatusCode::OK, &paging.page(items, uri.path())))
}

/// One `DataplaneOverview`: meta fields, `dataplane` (spec) and `dataplaneInsight` (spec).
pub fn overview_item(dataplane: &Resource, insight: Option<&Resource>) -> Value {
    const META: &[&str] = &[
        "mesh",
        "name",
        "labels",
        "creationTime",
        "modificationTime",
        "version",
    ];
    let mut out = Map::new();
    out.insert("type".into(), "DataplaneOverview".into());
    let mut spec = Map::new();
    if let Value::Object(fields) = dataplane.to_universal() {
        for (k, v) in fields {
            if k == "type" {
                continue;
            }
            if META.contains(&k.as_str()) {
                out.insert(k, v);
            } else {
                spec.insert(k, v);
            }
        }
    }
    out.insert("dataplane".into(), Value::Object(spec));
    out.insert(
        "dataplaneInsight".into(),
        insight.map_or_else(|| Value::Object(Map::new()), |i| i.spec.to_value()),
    );
    Value::Object(out)
}
