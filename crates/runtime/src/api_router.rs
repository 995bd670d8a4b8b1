//! What every API router gets around its own routes: `GET /`, `/ready`, `/healthy`, `/config`
//! and `/_resources`, the 404/405 fallbacks, the document-size body limit, the admin rule and the request metrics;
//! and the `GET` route of a type's collection.

use std::future::Future;

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    middleware,
    response::Response,
    routing::{MethodRouter, get},
};
use mosaic_core::resource::{ResourceType, parse::MAX_DOCUMENT_BYTES};

use crate::{
    api_auth, api_catalog, api_dialect::ApiDialect, api_error::ApiFailure, api_extract::Listing,
    api_index, api_metrics,
};

/// `GET` of `rtype`'s collection, answered by the server's `list` handler.
pub fn collection<S, F, Fut>(rtype: ResourceType, list: F) -> MethodRouter<S>
where
    S: ApiDialect,
    F: Fn(ResourceType, State<S>, Listing) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiFailure>> + Send + 'static,
{
    get(move |state: State<S>, listing: Listing| list(rtype, state, listing))
}

/// `routes` (the server's own) with the shared routes and layers, over `state`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the admin rule needs the caller's
/// address (without it every caller counts as remote).
pub fn finish<S: ApiDialect>(routes: Router<S>, state: S) -> Router {
    Router::new()
        .route("/", get(api_index::index::<S>))
        .route("/ready", get(api_index::ok))
        .route("/healthy", get(api_index::ok))
        .route("/config", get(api_catalog::config::<S>))
        .route("/_resources", get(api_catalog::resources::<S>))
        .merge(routes)
        .fallback(api_index::not_found::<S>)
        .method_not_allowed_fallback(api_index::method_not_allowed::<S>)
        .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES))
        // Over every route and both fallbacks: no method or path gets past it.
        .layer(middleware::from_fn_with_state(
            state.auth(),
            api_auth::require_admin,
        ))
        // Outermost, so refused (401/403) and oversized (413) requests are counted too.
        .layer(middleware::from_fn(api_metrics::track))
        .with_state(state)
}
