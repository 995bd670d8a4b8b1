//! The global's [`ApiDialect`]: its `GET /` mode and the wording of its 404s, 405s, 413s and
//! unreadable paths and bodies (the rest of the plumbing is `mosaic_runtime::api_*`).

use std::sync::Arc;

use mosaic_core::resource::ResourceType;
use mosaic_runtime::{api_auth::AdminAuth, api_dialect::ApiDialect, api_index::hostname};

use super::state::ApiState;

impl ApiDialect for ApiState {
    const MODE: &'static str = "global";
    const TOO_LARGE_ADVICE: &'static str =
        "send one resource per request; large CA bundles belong in a Secret referenced by name";
    const PATH_HINT: &'static str = ": names are lowercase letters, digits, '-', '_' and '.'";
    const BODY_HINT: &'static str = ": send the resource again";
    const ENDPOINTS: &'static str = "the global serves /meshes, /meshes/{mesh}/secrets, /secrets, /global-secrets, /zones, /zones/_overview, /zones/{name}/_overview, /zone-insights, /meshes/{mesh}/dataplanes, /dataplanes, /meshes/{mesh}/dataplanes/_overview, /meshes/{mesh}/dataplanes/{name}/_overview, /meshes/{mesh}/dataplane-insights, /mesh-insights, /global-insight, /config and /_resources (GET /_resources lists the resource types)";
    const METHODS: &'static str = "collections answer GET; items answer GET, PUT and DELETE";
    const REPORTS_JSON_SYNTAX: bool = true;
    const RESOURCE_TYPES: &'static [ResourceType] = &ResourceType::ALL;

    fn auth(&self) -> Arc<AdminAuth> {
        self.auth.clone()
    }

    /// `<hostname>-<raft node id>`.
    fn instance_id(&self) -> String {
        format!("{}-{}", hostname(), self.store.node_id())
    }

    /// Shared by every replica: derived from the cluster's KDS CA record (generated once for the
    /// cluster); empty while there is none (a configured `kds.tls_cert`).
    fn cluster_id(&self) -> String {
        match self.store.internal(crate::kds::tls::KDS_CA_RECORD) {
            Ok(Some(bytes)) => {
                let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
                let h: String = d.as_ref()[..16]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )
            }
            _ => String::new(),
        }
    }

    fn config(&self) -> serde_json::Value {
        self.config.as_ref().clone()
    }
}
