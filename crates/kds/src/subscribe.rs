//! Opening a GlobalToZone subscription: the capabilities a zone announces in its stream
//! metadata, and the first request per type, listing the versions the zone already holds so the
//! global sends only the difference.

use std::collections::BTreeMap;

use mosaic_proto::kds::{DiscoveryRequest, ResourceVersion};

use crate::{KdsKey, KdsType, respond::wire_ref};

/// Metadata: the zone's name.
pub const ZONE_HEADER: &str = "mosaic-zone";
/// Metadata: the zone's software version.
pub const VERSION_HEADER: &str = "mosaic-zone-version";
/// Metadata: comma-separated capability strings ([`FEATURES`]).
pub const FEATURES_HEADER: &str = "mosaic-features";

/// Capability strings a zone announces in `mosaic-features`.
pub const FEATURES: &[&str] = &["chunked-responses"];

/// The first request for `kind` on a stream: what the zone holds.
pub fn subscribe_request(kind: KdsType, known: &BTreeMap<KdsKey, u64>) -> DiscoveryRequest {
    DiscoveryRequest {
        r#type: kind.as_str().to_string(),
        known: known
            .iter()
            .map(|(k, v)| ResourceVersion {
                r#ref: Some(wire_ref(k)),
                version: *v,
            })
            .collect(),
        response_nonce: String::new(),
        rejected: Vec::new(),
    }
}
