//! `GET /zones/_overview` (also Kuma's older `/zones+insights`): every zone (registered with a
//! Zone, or known from its ZoneInsight) with its online state, software version and per-mesh CA
//! health, filtered by `name` and `filter[labels.K]`; `GET /zones/{name}/_overview` (and
//! `/zones+insights/{name}`): one zone's.

use std::collections::BTreeMap;

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_core::resource::{Resource, ResourceType, Spec, ZoneInsightSpec, ZoneSpec};
use serde_json::{Value, json};

use mosaic_runtime::{
    api_extract::{Listing, PathParams},
    api_format::Format,
};

use super::{error::ApiFailure, extract::QueryParams, resources::barrier, state::ApiState};
use crate::store::ResourceKey;

/// Whether a zone is connected: some KDS subscription has no `disconnectTime`.
pub fn is_online(insight: &ZoneInsightSpec) -> bool {
    insight
        .subscriptions
        .iter()
        .any(|s| s.disconnect_time.is_none())
}

/// One zone's overview item (Kuma's `ZoneOverview` plus `online`, `version`, `caHealth`).
pub fn overview_item(name: &str, zone: Option<&Resource>, insight: Option<&Resource>) -> Value {
    let zone_spec = match zone.map(|z| &z.spec) {
        Some(Spec::Zone(s)) => s.clone(),
        _ => ZoneSpec::default(),
    };
    let insight_spec = match insight.map(|i| &i.spec) {
        Some(Spec::ZoneInsight(s)) => s.clone(),
        _ => ZoneInsightSpec::default(),
    };
    let meta = zone.or(insight);
    let version = insight_spec
        .subscriptions
        .last()
        .map(|s| s.zone_version.clone())
        .unwrap_or_default();
    json!({
        "type": "ZoneOverview",
        "name": name,
        "creationTime": meta.and_then(|m| m.to_universal().get("creationTime").cloned()),
        "modificationTime": meta.and_then(|m| m.to_universal().get("modificationTime").cloned()),
        "registered": zone.is_some(),
        "zone": { "enabled": zone_spec.is_enabled() },
        "online": is_online(&insight_spec),
        "version": version,
        "caHealth": serde_json::to_value(&insight_spec.ca_health).unwrap_or(Value::Null),
        "zoneInsight": serde_json::to_value(&insight_spec).unwrap_or(Value::Null),
    })
}

/// `GET /zones/_overview`.
pub async fn overview(State(state): State<ApiState>, req: Listing) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(req.query.as_deref())?;
    let filter = req.filter()?;
    barrier(&state, &query).await?;
    let mut zones: BTreeMap<String, (Option<Resource>, Option<Resource>)> = BTreeMap::new();
    for z in state.store.list(ResourceType::Zone, None)? {
        let name = z.meta.name.clone();
        zones.entry(name).or_default().0 = Some(z);
    }
    for i in state.store.list(ResourceType::ZoneInsight, None)? {
        let name = i.meta.name.clone();
        zones.entry(name).or_default().1 = Some(i);
    }
    let items: Vec<Value> = zones
        .iter()
        .filter(|(_, (z, i))| z.as_ref().or(i.as_ref()).is_some_and(|r| filter.matches(r)))
        .map(|(name, (z, i))| overview_item(name, z.as_ref(), i.as_ref()))
        .collect();
    let page = query.paging.page(items, &req.link());
    Ok(Format::from_headers(&req.headers).respond(StatusCode::OK, &page))
}

/// `GET /zones/{name}/_overview`.
pub async fn overview_one(
    State(state): State<ApiState>,
    params: PathParams,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(query.as_deref())?;
    barrier(&state, &query).await?;
    let name = params.get("name");
    let zone = state
        .store
        .get(&ResourceKey::new(ResourceType::Zone, None, name))?;
    let insight = state
        .store
        .get(&ResourceKey::new(ResourceType::ZoneInsight, None, name))?;
    if zone.is_none() && insight.is_none() {
        return Err(ApiFailure::NotFound(format!(
            "zone {name:?} is neither registered nor connected: list zones with GET /zones/_overview"
        )));
    }
    Ok(Format::from_headers(&headers).respond(
        StatusCode::OK,
        &overview_item(name, zone.as_ref(), insight.as_ref()),
    ))
}

/// How many zones there are (registered or connected) and how many are online.
pub fn zone_counts(state: &ApiState) -> Result<(u64, u64), ApiFailure> {
    let mut names: BTreeMap<String, bool> = BTreeMap::new();
    for z in state.store.list(ResourceType::Zone, None)? {
        names.entry(z.meta.name).or_default();
    }
    for i in state.store.list(ResourceType::ZoneInsight, None)? {
        let online = matches!(&i.spec, Spec::ZoneInsight(s) if is_online(s));
        *names.entry(i.meta.name).or_default() |= online;
    }
    Ok((
        names.len() as u64,
        names.values().filter(|o| **o).count() as u64,
    ))
}
