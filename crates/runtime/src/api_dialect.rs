//! `ApiDialect`: what one server's HTTP API says and does where the global's and the zone's
//! differ (the texts of some refusals, the `mode` of `GET /`), so everything else in the
//! `api_*` modules is written once. Each server's `ApiState` implements it.

use std::sync::Arc;

use mosaic_core::resource::{Owner, ResourceType};

use crate::api_auth::AdminAuth;

/// A server's API state, with the wording and choices that are its own.
pub trait ApiDialect: Clone + Send + Sync + 'static {
    /// `mode` in the `GET /` document (`global`, `zone`).
    const MODE: &'static str;
    /// What a 413 advises, after "the request body is larger than N bytes: ".
    const TOO_LARGE_ADVICE: &'static str;
    /// Appended to the 400 for a URL path that does not decode (`": ..."`); none by default.
    const PATH_HINT: &'static str = "";
    /// Appended to the 400 for a body that cannot be read (`": ..."`); none by default.
    const BODY_HINT: &'static str = "";
    /// The 404's sentence after "there is no API endpoint at {path}: ".
    const ENDPOINTS: &'static str;
    /// The 405's sentence after "{method} is not allowed on {path}: ".
    const METHODS: &'static str;
    /// Whether a body declared as JSON that is not valid JSON gets JSON's own syntax error
    /// (line and column) rather than the YAML reader's; not by default.
    const REPORTS_JSON_SYNTAX: bool = false;

    /// The resource types this API serves (what `GET /_resources` lists).
    const RESOURCE_TYPES: &'static [ResourceType];

    /// Who is an admin.
    fn auth(&self) -> Arc<AdminAuth>;

    /// Adds this server's own fields to the `GET /` document (Kuma's index fields and
    /// [`Self::MODE`] are there already); none by default.
    fn extend_index(&self, _document: &mut serde_json::Map<String, serde_json::Value>) {}

    /// `instanceId` of `GET /`: this process among its cluster's (a raft node, a zone CP).
    fn instance_id(&self) -> String;

    /// `clusterId` of `GET /`: the control plane this process belongs to.
    fn cluster_id(&self) -> String;

    /// The effective configuration (`GET /config`); `{}` by default.
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Object(serde_json::Map::new())
    }

    /// Whether `rtype` is read-only on this API (`readOnly` of `GET /_resources`): by default,
    /// types this server does not own (`MODE` global owns global-owned types).
    fn read_only(&self, rtype: ResourceType) -> bool {
        let own = if Self::MODE == "global" {
            Owner::Global
        } else {
            Owner::Zone
        };
        rtype.owner() != own
    }
}
