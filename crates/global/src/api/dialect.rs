//! The global's [`ApiDialect`]: its `GET /` mode and the wording of its 404s, 405s, 413s and
//! unreadable paths and bodies (the rest of the plumbing is `mosaic_runtime::api_*`).

use std::sync::Arc;

use mosaic_runtime::{api_auth::AdminAuth, api_dialect::ApiDialect};

use super::state::ApiState;

impl ApiDialect for ApiState {
    const MODE: &'static str = "global";
    const TOO_LARGE_ADVICE: &'static str =
        "send one resource per request; large CA bundles belong in a Secret referenced by name";
    const PATH_HINT: &'static str = ": names are lowercase letters, digits, '-', '_' and '.'";
    const BODY_HINT: &'static str = ": send the resource again";
    const ENDPOINTS: &'static str = "the global serves /meshes, /meshes/{mesh}/secrets, /global-secrets, /zones, /zones/_overview, /zone-insights, /meshes/{mesh}/dataplanes, /meshes/{mesh}/dataplanes/_overview and /meshes/{mesh}/dataplane-insights";
    const METHODS: &'static str = "collections answer GET; items answer GET, PUT and DELETE";
    const REPORTS_JSON_SYNTAX: bool = true;

    fn auth(&self) -> Arc<AdminAuth> {
        self.auth.clone()
    }
}
