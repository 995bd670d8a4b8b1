//! Test support for the API tests: real raft stores (`raft_store`) and a helper to call the
//! router.

#![allow(dead_code)]

pub mod raft_store;

use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use mosaic_core::{Sensitive, api::ApiError};
use mosaic_global::api::{self, ApiState};
use tower::ServiceExt as _;

pub use raft_store::TestStore;

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as Kuma's error.
    pub fn error(&self) -> ApiError {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not an API error ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error's field paths.
    pub fn fields(&self) -> Vec<String> {
        self.error()
            .invalid_parameters
            .into_iter()
            .map(|p| p.field)
            .collect()
    }
}

/// The router over a fresh single-replica raft store (no admin token).
pub async fn app() -> (Router, TestStore) {
    app_with_token(None).await
}

/// The router over a fresh single-replica raft store with `api.unknown_fields = "refuse"`.
pub async fn app_refusing_unknown_fields() -> (Router, TestStore) {
    let store = TestStore::start().await;
    let state = ApiState::new(store.store(), None)
        .with_unknown_fields(mosaic_core::resource::UnknownFields::Refuse);
    (api::router(state).layer(loopback_peer()), store)
}

/// The router over a fresh single-replica raft store, with an optional admin token, called
/// from a loopback address (as the server's `ConnectInfo` would say).
pub async fn app_with_token(token: Option<&str>) -> (Router, TestStore) {
    let store = TestStore::start().await;
    let state = ApiState::new(store.store(), token.map(|t| Sensitive::new(t.to_string())));
    (api::router(state).layer(loopback_peer()), store)
}

/// Requests as if from a loopback caller (in-process routers have no real peer address).
pub fn loopback_peer() -> axum::extract::connect_info::MockConnectInfo<std::net::SocketAddr> {
    axum::extract::connect_info::MockConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 1)))
}

/// Sends one request.
pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body.into()).expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body,
    }
}

/// `GET uri`.
pub async fn get(app: &Router, uri: &str) -> Reply {
    call(app, Method::GET, uri, &[], Body::empty()).await
}

/// `PUT uri` with a YAML body (no Content-Type: sniffed).
pub async fn put(app: &Router, uri: &str, body: &str) -> Reply {
    call(app, Method::PUT, uri, &[], body.to_string()).await
}

/// `DELETE uri`.
pub async fn delete(app: &Router, uri: &str) -> Reply {
    call(app, Method::DELETE, uri, &[], Body::empty()).await
}

/// Asserts a status, printing the body when it differs.
#[track_caller]
pub fn expect(reply: &Reply, status: StatusCode) {
    assert_eq!(
        reply.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// The Content-Type of a reply.
pub fn content_type(reply: &Reply) -> &str {
    reply
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}
