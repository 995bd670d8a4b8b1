//! PUT bodies to resources: JSON or YAML, Universal or Kubernetes form, exactly one document.
//! The URL's name and mesh fill in a body that omits them and must match a body that states
//! them; the result is validated with field paths. (The global's API decodes the same way; the
//! two belong in one shared helper.)

use mosaic_common::resource::{
    Resource, ResourceType,
    parse::{ParseError, from_value, parse_values},
};
use serde_json::Value;

use super::error::ApiFailure;

/// Decodes a PUT body for a `rtype` named `name` (in `mesh`) into a validated resource.
pub fn decode(
    bytes: &[u8],
    rtype: ResourceType,
    mesh: Option<&str>,
    name: &str,
) -> Result<Resource, ApiFailure> {
    let mut values = parse_values(bytes).map_err(|e| match e {
        ParseError::TooLarge { .. } => ApiFailure::TooLarge,
        other => ApiFailure::bad_field("", other.to_string()),
    })?;
    if values.len() != 1 {
        return Err(ApiFailure::bad_field(
            "",
            format!(
                "the body holds {} documents: send exactly one resource per request",
                values.len()
            ),
        ));
    }
    let mut value = values.remove(0);
    let Value::Object(obj) = &mut value else {
        return Err(ApiFailure::bad_field(
            "",
            "the body must be a mapping: a Universal resource (type, name, ...) or a Kubernetes one (apiVersion, kind, metadata, spec)",
        ));
    };
    let kubernetes = obj.contains_key("apiVersion") || obj.contains_key("kind");
    if !kubernetes && !obj.contains_key("type") {
        obj.insert("type".into(), rtype.as_str().into());
    }
    let states_mesh = obj.get("mesh").is_some_and(|m| !m.is_null());
    let mut resource = from_value(value).map_err(ApiFailure::invalid)?;
    if resource.resource_type() != rtype {
        return Err(ApiFailure::bad_field(
            if kubernetes { "kind" } else { "type" },
            format!(
                "the body is a {}, but this URL takes a {rtype}",
                resource.resource_type()
            ),
        ));
    }
    if resource.meta.name.is_empty() {
        resource.meta.name = name.to_string();
    } else if resource.meta.name != name {
        return Err(ApiFailure::bad_field(
            "name",
            format!(
                "{:?} in the body does not match {name:?} in the URL: make them the same (or leave the name out of the body)",
                resource.meta.name
            ),
        ));
    }
    if let Some(url_mesh) = mesh {
        match &resource.meta.mesh {
            Some(body_mesh) if states_mesh && body_mesh != url_mesh => {
                return Err(ApiFailure::bad_field(
                    "mesh",
                    format!(
                        "{body_mesh:?} in the body does not match {url_mesh:?} in the URL: make them the same (or leave the mesh out of the body)"
                    ),
                ));
            }
            _ => resource.meta.mesh = Some(url_mesh.to_string()),
        }
    }
    resource.validate().map_err(ApiFailure::invalid)?;
    Ok(resource)
}
