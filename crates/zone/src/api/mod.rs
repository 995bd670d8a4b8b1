//! The zone's HTTP API on `api.listen`: Kuma paths, Kuma error bodies, JSON or YAML.
//!
//! - `GET /meshes`, `GET /meshes/{name}`, `GET /zones`, `GET /zones/{name}`: read-only copies
//!   synced from the global; `PUT`/`DELETE` answer 405.
//! - `GET /meshes/{mesh}/meshidentities[/{name}]`, `GET /meshes/{mesh}/meshtrusts[/{name}]`:
//!   read-only copies from the global (every zone's MeshTrusts included); writes answer 405.
//! - `/meshes/{mesh}/secrets[/{name}]`, `/global-secrets[/{name}]`: not served (`GET` 404,
//!   writes 405); see [`resources`] for why.
//! - `GET /meshes/{mesh}/dataplanes`, `GET|PUT|DELETE /meshes/{mesh}/dataplanes/{name}`,
//!   `GET /meshes/{mesh}/dataplanes/_overview` (also Kuma's `dataplanes+insights`),
//!   `GET /meshes/{mesh}/dataplanes/{name}/_overview` (and `dataplanes+insights/{name}`);
//!   across meshes `GET /dataplanes`, `/dataplanes/_overview`, `/dataplanes+insights`. Lists
//!   filter by `name`, `filter[labels.K]`, `tag` and `gateway` (`mosaic_runtime::api_filter`).
//! - `GET /` (Kuma's index plus `"mode":"zone","zone":...`), `/ready`, `/healthy`, `/config`,
//!   `/_resources`.
//!
//! Every request but `GET /ready` and `GET /healthy` must come from an admin: a loopback caller
//! (with `api.localhost_is_admin`) or a caller presenting an admin token (the generated
//! `<data_dir>/admin-token` or `api.admin_token_file`), as on the global
//! ([`mosaic_runtime::api_auth`]).
//!
//! Module map:
//! - [`state`]: `ApiState`, what the handlers share.
//! - [`dialect`]: the zone's `ApiDialect` (its `GET /` and the wording of shared refusals).
//! - [`error`]: store errors as `ApiFailure`s (Kuma's error body).
//! - [`resources`]: reads, 405 for global-owned writes, 404 for Secrets.
//! - [`dataplanes`]: Dataplane registration and overviews.
//!
//! The plumbing shared with the global is `mosaic_runtime`'s: `api_error`, `api_extract`,
//! `api_body`, `api_format`, `api_paging`, `api_resources`, `api_overview`, `api_index` (`/`,
//! `/ready`, `/healthy`, 404/405 fallbacks) and `api_router` (those routes and the layers;
//! Kuma's Dataplane paths, over the handlers in [`resources`] and [`dataplanes`]).

pub mod dataplanes;
pub mod dialect;
pub mod error;
pub mod resources;
pub mod state;

use axum::{
    Router,
    extract::State,
    http::HeaderMap,
    routing::{MethodRouter, get},
};
use mosaic_core::resource::ResourceType;
use mosaic_runtime::api_router::{self, DataplaneRoutes};

pub use error::ApiFailure;
pub use mosaic_runtime::api_extract::PathParams;
pub use state::ApiState;

/// The zone API's routes over `state`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the admin rule needs the caller's
/// address (without it every caller counts as remote).
pub fn router(state: ApiState) -> Router {
    use ResourceType::{Dataplane, GlobalSecret, Mesh, MeshIdentity, MeshTrust, Secret, Zone};
    let routes = Router::new()
        .route("/meshes", api_router::collection(Mesh, resources::list))
        .route("/meshes/{mesh}", read_only(Mesh))
        .route("/zones", api_router::collection(Zone, resources::list))
        .route("/zones/{name}", read_only(Zone))
        .route(
            "/meshes/{mesh}/meshidentities",
            api_router::collection(MeshIdentity, resources::list),
        )
        .route(
            "/meshes/{mesh}/meshidentities/{name}",
            read_only(MeshIdentity),
        )
        .route(
            "/meshes/{mesh}/meshtrusts",
            api_router::collection(MeshTrust, resources::list),
        )
        .route("/meshes/{mesh}/meshtrusts/{name}", read_only(MeshTrust))
        .route("/meshes/{mesh}/secrets", hidden(Secret))
        .route("/meshes/{mesh}/secrets/{name}", hidden(Secret))
        .route("/global-secrets", hidden(GlobalSecret))
        .route("/global-secrets/{name}", hidden(GlobalSecret))
        .merge(api_router::dataplanes(DataplaneRoutes {
            list: api_router::collection(Dataplane, resources::list),
            item: get(move |s: State<ApiState>, p: PathParams, h: HeaderMap| {
                resources::get_one(Dataplane, s, p, h)
            })
            .put(dataplanes::put)
            .delete(dataplanes::delete),
            overviews: get(dataplanes::overview_list),
            overview: get(dataplanes::overview_one),
        }));
    // `GET /`, `/ready`, `/healthy`, 404/405, the body limit, the admin rule, the metrics
    // (labels: see `mosaic_runtime::api_metrics`).
    api_router::finish(routes, state)
}

/// `GET` of one global-owned resource; `PUT`/`DELETE` answer 405.
fn read_only(rtype: ResourceType) -> MethodRouter<ApiState> {
    get(move |s: State<ApiState>, p: PathParams, h: HeaderMap| resources::get_one(rtype, s, p, h))
        .put(move || resources::global_owned(rtype))
        .delete(move || resources::global_owned(rtype))
}

/// Secrets: `GET` answers 404, writes 405.
fn hidden(rtype: ResourceType) -> MethodRouter<ApiState> {
    get(move || resources::secrets_hidden(rtype))
        .put(move || resources::global_owned(rtype))
        .delete(move || resources::global_owned(rtype))
        .post(move || resources::global_owned(rtype))
}
