//! The zone's [`ApiDialect`]: its `GET /` document (with the zone's name) and the wording of its
//! 404s, 405s, 413s and unreadable paths and bodies (the rest of the plumbing is
//! `mosaic_runtime::api_*`).

use std::sync::Arc;

use mosaic_runtime::{api_auth::AdminAuth, api_dialect::ApiDialect};

use super::state::ApiState;

impl ApiDialect for ApiState {
    const MODE: &'static str = "zone";
    const TOO_LARGE_ADVICE: &'static str = "send one resource per request";
    const ENDPOINTS: &'static str = "the zone serves /meshes, /zones, /meshes/{mesh}/dataplanes, /meshes/{mesh}/dataplanes/_overview and /meshes/{mesh}/dataplanes/{name}/_overview";
    const METHODS: &'static str = "collections answer GET; Dataplanes answer GET, PUT and DELETE; global-owned resources are read-only here";

    fn auth(&self) -> Arc<AdminAuth> {
        self.auth.clone()
    }

    /// `"zone": <name>` (after `"mode": "zone"`).
    fn extend_index(&self, document: &mut serde_json::Map<String, serde_json::Value>) {
        document.insert("zone".into(), self.zone.clone().into());
    }
}
