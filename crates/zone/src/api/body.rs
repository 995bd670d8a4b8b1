//! PUT bodies to resources: JSON or YAML, Universal or Kubernetes form, exactly one document.
//! The URL's name and mesh fill in a body that omits them and must match a body that states
//! them; the result is validated with field paths. Decoding and validation are
//! `mosaic_core::resource::parse::decode_for`, the same as the global's API, so a zone accepts
//! exactly the Dataplanes the global does.

use mosaic_core::resource::{
    Resource, ResourceType,
    parse::{DecodeError, Target, decode_for},
};

use super::error::ApiFailure;

/// Decodes a PUT body for a `rtype` named `name` (in `mesh`) into a validated resource.
pub fn decode(
    bytes: &[u8],
    rtype: ResourceType,
    mesh: Option<&str>,
    name: &str,
) -> Result<Resource, ApiFailure> {
    let target = Target {
        rtype,
        mesh,
        name: Some(name),
        document: "the body",
        given_by: "the URL",
    };
    decode_for(bytes, &target).map_err(|e| match e {
        DecodeError::TooLarge { .. } => ApiFailure::TooLarge,
        DecodeError::Unfit(v) => ApiFailure::bad_field(v.field, v.message),
        DecodeError::Invalid(error) => ApiFailure::invalid(error),
    })
}
