//! `GET /_resources` (Kuma's `ResourceTypeDescriptionList`: each resource type the server serves,
//! its path, scope, names and whether it is read-only here) and `GET /config` (the server's
//! effective configuration as JSON, as Kuma's `GET /config`; it holds no secret values: secrets
//! are read from files the configuration names).

use axum::{extract::State, http::StatusCode, response::Response};
use mosaic_core::resource::ResourceType;
use serde_json::{Value, json};

use crate::{api_dialect::ApiDialect, api_format::Format};

/// Kuma's display names and short name of a type: (singular, plural, short).
pub fn display_names(rtype: ResourceType) -> (&'static str, &'static str, &'static str) {
    match rtype {
        ResourceType::Mesh => ("Mesh", "Meshes", "m"),
        ResourceType::Secret => ("Secret", "Secrets", ""),
        ResourceType::GlobalSecret => ("Global Secret", "Global Secrets", ""),
        ResourceType::Zone => ("Zone", "Zones", "z"),
        ResourceType::ZoneInsight => ("Zone Insight", "Zone Insights", ""),
        ResourceType::Dataplane => ("Dataplane", "Dataplanes", "dp"),
        ResourceType::DataplaneInsight => ("Dataplane Insight", "Dataplane Insights", ""),
        ResourceType::MeshIdentity => ("Mesh Identity", "Mesh Identities", "mid"),
        ResourceType::MeshTrust => ("Mesh Trust", "Mesh Trusts", "mtrust"),
    }
}

/// One type's description (Kuma's `ResourceTypeDescription`).
pub fn describe(rtype: ResourceType, read_only: bool) -> Value {
    let (singular, plural, short) = display_names(rtype);
    let synced_down = rtype.owner() == mosaic_core::resource::Owner::Global;
    json!({
        "name": rtype.as_str(),
        "path": rtype.collection(),
        "scope": if rtype.is_mesh_scoped() { "Mesh" } else { "Global" },
        "readOnly": read_only,
        "singularDisplayName": singular,
        "pluralDisplayName": plural,
        "shortName": short,
        "includeInFederation": synced_down && !read_only,
    })
}

/// `GET /_resources`: the server's [`ApiDialect::RESOURCE_TYPES`], sorted by name.
pub async fn resources<S: ApiDialect>(
    State(state): State<S>,
    headers: axum::http::HeaderMap,
) -> Response {
    let mut types: Vec<ResourceType> = S::RESOURCE_TYPES.to_vec();
    types.sort_by_key(|t| t.as_str());
    let items: Vec<Value> = types
        .into_iter()
        .map(|t| describe(t, state.read_only(t)))
        .collect();
    Format::from_headers(&headers).respond(StatusCode::OK, &json!({ "resources": items }))
}

/// `GET /config`: [`ApiDialect::config`].
pub async fn config<S: ApiDialect>(State(state): State<S>) -> Response {
    // Kuma answers JSON whatever the Accept header says.
    Format::Json.respond(StatusCode::OK, &state.config())
}
