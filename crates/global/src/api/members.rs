//! `/raft/members`: the global's raft membership, and online changes to it (Mosaic's; Kuma's
//! global has no replicas of its own). Admin-only, like every route.
//!
//! - `GET /raft/members`: the members as the answering replica sees it (the leader adds each
//!   member's matched index and lag).
//! - `POST /raft/members` `{"id": 4, "address": "10.0.0.4:5689"}`: add a learner.
//! - `POST /raft/members/{id}/promote`: make a caught-up learner a voter.
//! - `DELETE /raft/members/{id}`: remove a voter or learner.
//!
//! Any replica takes them; a follower forwards a change to the leader.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use mosaic_runtime::{api_extract::Body, api_format};
use serde::Deserialize;

use super::{error::ApiFailure, state::ApiState};
use crate::raft::{MemberOp, MembershipError};

/// The body of `POST /raft/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddLearner {
    id: u64,
    address: String,
}

fn failure(e: MembershipError) -> ApiFailure {
    match e {
        MembershipError::Invalid(m) => ApiFailure::bad_field("", m),
        MembershipError::NotFound(m) => ApiFailure::NotFound(m),
        MembershipError::Conflict(m) => ApiFailure::Conflict(m),
        MembershipError::Unavailable(m) => ApiFailure::Unavailable(m),
    }
}

fn no_raft() -> Response {
    ApiFailure::NotFound(
        "this global serves no raft membership (an embedded store): /raft/members needs a mosaic-global replica".into(),
    )
    .into_response()
}

fn node_id(id: &str) -> Result<u64, ApiFailure> {
    id.parse::<u64>().map_err(|_| {
        ApiFailure::bad_field(
            "id",
            format!("{id:?} is not a node id: raft.node_id is a positive integer"),
        )
    })
}

async fn change(s: &ApiState, headers: &HeaderMap, op: MemberOp) -> Response {
    let Some(members) = &s.members else {
        return no_raft();
    };
    match members.change(op).await {
        Ok(view) => api_format::respond(headers, StatusCode::OK, &view),
        Err(e) => failure(e).into_response(),
    }
}

/// `GET /raft/members`.
pub async fn list(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    match &s.members {
        Some(members) => api_format::respond(&headers, StatusCode::OK, &members.view()),
        None => no_raft(),
    }
}

/// `POST /raft/members`.
pub async fn add(State(s): State<ApiState>, headers: HeaderMap, Body(body): Body) -> Response {
    let req: AddLearner = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiFailure::bad_field(
                "",
                format!(
                    "the body must be JSON such as {{\"id\": 4, \"address\": \"10.0.0.4:5689\"}}: {e}"
                ),
            )
            .into_response();
        }
    };
    change(
        &s,
        &headers,
        MemberOp::AddLearner {
            id: req.id,
            address: req.address,
        },
    )
    .await
}

/// `POST /raft/members/{id}/promote`.
pub async fn promote(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match node_id(&id) {
        Ok(id) => change(&s, &headers, MemberOp::Promote { id }).await,
        Err(e) => e.into_response(),
    }
}

/// `DELETE /raft/members/{id}`.
pub async fn remove(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match node_id(&id) {
        Ok(id) => change(&s, &headers, MemberOp::Remove { id }).await,
        Err(e) => e.into_response(),
    }
}
