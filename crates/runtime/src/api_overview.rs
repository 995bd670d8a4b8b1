//! `DataplaneOverview`s (Kuma's): each Dataplane's meta, `dataplane` (its spec) and
//! `dataplaneInsight` (its DataplaneInsight's spec, or `{}`), as both servers list them.

use std::collections::BTreeMap;

use mosaic_core::resource::{Resource, ResourceType};
use serde_json::{Map, Value};

use crate::{api_error::ApiFailure, api_filter::ListFilter, api_resources::list_sorted};

/// The fields of a Dataplane's Universal form that stay at the top of its overview.
const META_FIELDS: &[&str] = &[
    "mesh",
    "name",
    "labels",
    "creationTime",
    "modificationTime",
    "version",
];

/// One data plane's overview item: its meta, `dataplane` (spec) and `dataplaneInsight` (spec).
pub fn overview_item(dataplane: &Resource, insight: Option<&Resource>) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), "DataplaneOverview".into());
    let mut spec = Map::new();
    if let Value::Object(fields) = dataplane.to_universal() {
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
        insight.map_or_else(|| Value::Object(Map::new()), |i| i.spec.to_value()),
    );
    Value::Object(out)
}

/// The overview of every Dataplane in `mesh` (every mesh with `None`) by `list` (a server's
/// store) that passes `filter`, sorted by mesh and name.
pub fn dataplane_overviews<L, E>(
    list: L,
    mesh: Option<&str>,
    filter: &ListFilter,
) -> Result<Vec<Value>, ApiFailure>
where
    L: Fn(ResourceType, Option<&str>) -> Result<Vec<Resource>, E>,
    E: Into<ApiFailure>,
{
    let dataplanes = list_sorted(&list, ResourceType::Dataplane, mesh)?;
    let insights: BTreeMap<(Option<String>, String), Resource> =
        list(ResourceType::DataplaneInsight, mesh)
            .map_err(Into::into)?
            .into_iter()
            .map(|i| ((i.meta.mesh.clone(), i.meta.name.clone()), i))
            .collect();
    Ok(dataplanes
        .iter()
        .filter(|d| filter.matches(d))
        .map(|d| overview_item(d, insights.get(&(d.meta.mesh.clone(), d.meta.name.clone()))))
        .collect())
}
