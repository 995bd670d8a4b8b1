//! The global's HTTP API (Kuma paths, Kuma error bodies, JSON or YAML).
//!
//! Module map:
//! - [`state`]: `ApiState` (store, admin token, clock, admission) and `Clock`.
//! - [`dialect`]: the global's `ApiDialect` (its mode and the wording of shared refusals).
//! - [`error`]: store and admission errors as `ApiFailure`s (Kuma's error body).
//! - [`extract`]: the query (`size`, `offset`, `consistent`, `force`).
//! - [`auth`]: who is an admin (loopback callers, admin tokens): `mosaic_runtime::api_auth`.
//! - [`resources`]: list/get/put/delete handlers (Meshes, Secrets, MeshIdentities, MeshTrusts, ...);
//!   405 for zone-owned writes.
//! - [`tokens`]: `POST /tokens/zone` and `POST /tokens/dataplane`; the signing keys (list,
//!   rotate, retire) under `/tokens/signing-keys/zone` and
//!   `/meshes/{mesh}/tokens/signing-keys/dataplane`.
//! - [`zones`]: `GET /zones/_overview`, `/zones/{name}/_overview` (and Kuma's `/zones+insights`).
//! - [`dataplanes`]: Dataplane overviews, per mesh and across meshes (and `dataplanes+insights`).
//! - [`insights`]: `GET /mesh-insights[/{mesh}]` and `GET /global-insight`.
//! - [`members`]: `/raft/members`: the raft membership and online changes to it.
//!
//! The plumbing both servers share is `mosaic_runtime`'s: `api_error` (`ApiFailure`),
//! `api_extract` (path and body), `api_body` (PUT bodies to resources), `api_format` (JSON or
//! YAML by `Accept`), `api_paging`, `api_resources`, `api_overview`, `api_index` (`GET /`,
//! `/ready`, `/healthy`, 404/405), `api_catalog` (`/config`, `/_resources`), `api_filter`
//! (`name`, `filter[labels.K]`, `tag`, `gateway`), `api_insight` and `api_router` (those routes, the body limit, the admin
//! rule and the request metrics around the routes below; Kuma's Dataplane paths, over the
//! handlers in [`resources`] and [`dataplanes`]).

pub mod auth;
pub mod dataplanes;
pub mod dialect;
pub mod error;
pub mod extract;
pub mod insights;
pub mod members;
pub mod resources;
pub mod state;
pub mod tokens;
pub mod zones;

use axum::{
    Router,
    extract::{RawQuery, State},
    http::HeaderMap,
    routing::{MethodRouter, get},
};
use mosaic_core::resource::{Owner, ResourceType};
use mosaic_runtime::{
    api_extract::{Body, PathParams},
    api_router::{self, DataplaneRoutes},
};

pub use auth::{AdminTokenError, read_admin_token_file};
pub use error::ApiFailure;
pub use state::{ApiState, Clock};

/// The API's routes over `state`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the admin rule needs the caller's
/// address (without it every caller counts as remote).
pub fn router(state: ApiState) -> Router {
    let routes = Router::new()
        .route("/meshes", collection(ResourceType::Mesh))
        .route("/meshes/{mesh}", item(ResourceType::Mesh))
        .route("/meshes/{mesh}/secrets", collection(ResourceType::Secret))
        .route("/meshes/{mesh}/secrets/{name}", item(ResourceType::Secret))
        .route("/secrets", collection(ResourceType::Secret))
        .route(
            "/meshes/{mesh}/meshidentities",
            collection(ResourceType::MeshIdentity),
        )
        .route(
            "/meshes/{mesh}/meshidentities/{name}",
            item(ResourceType::MeshIdentity),
        )
        .route("/meshidentities", collection(ResourceType::MeshIdentity))
        .route(
            "/meshes/{mesh}/meshtrusts",
            collection(ResourceType::MeshTrust),
        )
        .route(
            "/meshes/{mesh}/meshtrusts/{name}",
            item(ResourceType::MeshTrust),
        )
        .route("/meshtrusts", collection(ResourceType::MeshTrust))
        .route("/global-secrets", collection(ResourceType::GlobalSecret))
        .route("/global-secrets/{name}", item(ResourceType::GlobalSecret))
        .route("/tokens/zone", axum::routing::post(tokens::zone))
        .route("/tokens/dataplane", axum::routing::post(tokens::dataplane))
        .route("/tokens/signing-keys/zone", get(tokens::list_keys))
        .route(
            "/tokens/signing-keys/zone/rotate",
            axum::routing::post(tokens::rotate_key),
        )
        .route(
            "/tokens/signing-keys/zone/{serial}",
            axum::routing::delete(tokens::retire_key),
        )
        .route(
            "/meshes/{mesh}/tokens/signing-keys/dataplane",
            get(tokens::list_keys),
        )
        .route(
            "/meshes/{mesh}/tokens/signing-keys/dataplane/rotate",
            axum::routing::post(tokens::rotate_key),
        )
        .route(
            "/meshes/{mesh}/tokens/signing-keys/dataplane/{serial}",
            axum::routing::delete(tokens::retire_key),
        )
        .route("/zones", collection(ResourceType::Zone))
        .route("/zones/_overview", get(zones::overview))
        .route("/zones+insights", get(zones::overview))
        .route("/zones/{name}", item(ResourceType::Zone))
        .route("/zones/{name}/_overview", get(zones::overview_one))
        .route("/zones+insights/{name}", get(zones::overview_one))
        .route("/zone-insights", collection(ResourceType::ZoneInsight))
        .route("/zone-insights/{name}", item(ResourceType::ZoneInsight))
        .route("/mesh-insights", get(insights::list))
        .route("/mesh-insights/{mesh}", get(insights::get_one))
        .route("/global-insight", get(insights::global))
        .route("/raft/members", get(members::list).post(members::add))
        .route("/raft/members/{id}", axum::routing::delete(members::remove))
        .route(
            "/raft/members/{id}/promote",
            axum::routing::post(members::promote),
        )
        .route(
            "/dataplane-insights",
            collection(ResourceType::DataplaneInsight),
        )
        .route(
            "/meshes/{mesh}/dataplane-insights",
            collection(ResourceType::DataplaneInsight),
        )
        .route(
            "/meshes/{mesh}/dataplane-insights/{name}",
            item(ResourceType::DataplaneInsight),
        )
        .merge(api_router::dataplanes(DataplaneRoutes {
            list: collection(ResourceType::Dataplane),
            item: item(ResourceType::Dataplane),
            overviews: get(dataplanes::overview),
            overview: get(dataplanes::overview_one),
        }));
    // `GET /`, `/ready`, `/healthy`, 404/405, the body limit, the admin rule, the metrics.
    api_router::finish(routes, state)
}

/// `GET` of a type's collection.
fn collection(rtype: ResourceType) -> MethodRouter<ApiState> {
    api_router::collection(rtype, resources::list)
}

/// `GET`, `PUT` and `DELETE` of one resource (`PUT`/`DELETE` answer 405 for zone-owned types).
fn item(rtype: ResourceType) -> MethodRouter<ApiState> {
    let read = get(
        move |s: State<ApiState>, p: PathParams, q: RawQuery, h: HeaderMap| {
            resources::get_one(rtype, s, p, q, h)
        },
    );
    match rtype.owner() {
        Owner::Global => read
            .put(
                move |s: State<ApiState>, p: PathParams, h: HeaderMap, b: Body| {
                    resources::put(rtype, s, p, h, b)
                },
            )
            .delete(
                move |s: State<ApiState>, p: PathParams, q: RawQuery, h: HeaderMap| {
                    resources::delete(rtype, s, p, q, h)
                },
            ),
        Owner::Zone => read
            .put(move || resources::zone_owned(rtype))
            .delete(move || resources::zone_owned(rtype)),
    }
}
