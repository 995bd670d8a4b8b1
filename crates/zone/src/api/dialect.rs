//! The zone's [`ApiDialect`]: its `GET /` document (with the zone's name) and the wording of its
//! 404s, 405s, 413s and unreadable paths and bodies (the rest of the plumbing is
//! `mosaic_runtime::api_*`).

use std::sync::Arc;

use mosaic_core::resource::ResourceType;
use mosaic_runtime::{api_auth::AdminAuth, api_dialect::ApiDialect, api_index::hostname};

use super::state::ApiState;

impl ApiDialect for ApiState {
    const MODE: &'static str = "zone";
    const TOO_LARGE_ADVICE: &'static str = "send one resource per request";
    const ENDPOINTS: &'static str = "the zone serves /meshes, /zones, /meshes/{mesh}/dataplanes, /dataplanes, /meshes/{mesh}/dataplanes/_overview (also /meshes/{mesh}/dataplanes+insights), /meshes/{mesh}/dataplanes/{name}/_overview, /config and /_resources";
    const METHODS: &'static str = "collections answer GET; Dataplanes answer GET, PUT and DELETE; global-owned resources are read-only here";

    const RESOURCE_TYPES: &'static [ResourceType] = &[
        ResourceType::Mesh,
        ResourceType::Zone,
        ResourceType::Dataplane,
    ];

    fn auth(&self) -> Arc<AdminAuth> {
        self.auth.clone()
    }

    /// `<hostname>-<zone>`.
    fn instance_id(&self) -> String {
        format!("{}-{}", hostname(), self.zone)
    }

    /// The zone's name: the zone control plane is its own cluster.
    fn cluster_id(&self) -> String {
        self.zone.clone()
    }

    fn config(&self) -> serde_json::Value {
        self.config.as_ref().clone()
    }

    /// `"zone": <name>` (after `"mode": "zone"`).
    fn extend_index(&self, document: &mut serde_json::Map<String, serde_json::Value>) {
        document.insert("zone".into(), self.zone.clone().into());
    }
}
