//! Handlers for resource collections and items: list, get, put (through admission) and delete;
//! writes of zone-owned types answer 405.
//!
//! Optimistic concurrency (a Mosaic extension; Kuma has none, and without these headers writes
//! behave as Kuma's): `GET` and `PUT` answer `ETag: "<version>"` (the resource's `version`);
//! `PUT` and `DELETE` with `If-Match: "<version>"` apply only while the stored version is that one,
//! `PUT` with `If-None-Match: *` only while the resource does not exist; otherwise 409 Conflict
//! naming the stored version (a `DELETE` of a missing resource stays 404).

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use mosaic_core::resource::ResourceType;
use mosaic_runtime::{
    api_body,
    api_extract::{Body, Listing, PathParams, Target},
    api_format::Format,
    api_resources::list_request,
};

use super::{
    error::{ApiFailure, from_refusal},
    extract::QueryParams,
    state::ApiState,
};
use crate::store::{Command, CommandResult, Refusal, ResourceKey};

fn key(t: &Target) -> ResourceKey {
    ResourceKey::new(t.rtype, t.mesh.as_deref(), &t.name)
}

/// Where a type's collection lives (`/meshes/default/secrets`, `/zones`).
pub fn collection_path(rtype: ResourceType, mesh: Option<&str>) -> String {
    match mesh {
        Some(m) if rtype.is_mesh_scoped() => format!("/meshes/{m}/{}", rtype.collection()),
        _ => format!("/{}", rtype.collection()),
    }
}

fn describe(t: &Target) -> String {
    match &t.mesh {
        Some(m) => format!("{} {:?} in mesh {m:?}", t.rtype, t.name),
        None => format!("{} {:?}", t.rtype, t.name),
    }
}

/// The version a write is conditioned on: `If-Match: "<version>"` (that version),
/// `If-None-Match: *` (`0`: absent; PUT only), or none.
pub fn precondition(headers: &HeaderMap, put: bool) -> Result<Option<u64>, ApiFailure> {
    let text = |name: &str| -> Result<Option<String>, ApiFailure> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(|s| s.trim().to_string())
                    .map_err(|_| ApiFailure::bad_field(name, "the header is not ASCII".to_string()))
            })
            .transpose()
    };
    match (text("if-match")?, text("if-none-match")?) {
        (Some(_), Some(_)) => Err(ApiFailure::bad_field(
            "If-Match",
            "send If-Match or If-None-Match, not both".to_string(),
        )),
        (Some(m), None) => {
            let v = m
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(&m);
            match v.parse::<u64>() {
                Ok(version) if version > 0 => Ok(Some(version)),
                _ => Err(ApiFailure::bad_field(
                    "If-Match",
                    format!(
                        "{m:?} is not a resource version: send the version a GET answered (its ETag, e.g. If-Match: \"42\")"
                    ),
                )),
            }
        }
        (None, Some(n)) if put && n == "*" => Ok(Some(0)),
        (None, Some(n)) => Err(ApiFailure::bad_field(
            "If-None-Match",
            format!(
                "{n:?} is not understood: only If-None-Match: * (create only if absent) on PUT"
            ),
        )),
        (None, None) => Ok(None),
    }
}

/// Conditions the command writing the target on `version` (a Mesh batch's first command).
fn expect(cmd: &mut Command, version: u64) {
    match cmd {
        Command::Put { expect_version, .. } | Command::Delete { expect_version, .. } => {
            *expect_version = Some(version);
        }
        Command::Batch(cmds) => {
            if let Some(first) = cmds.first_mut() {
                expect(first, version);
            }
        }
        _ => {}
    }
}

/// Adds `ETag: "<version>"` for a resource's version.
fn with_etag(mut response: Response, version: Option<u64>) -> Response {
    if let Some(v) = version
        && let Ok(value) = axum::http::HeaderValue::from_str(&format!("\"{v}\""))
    {
        response
            .headers_mut()
            .insert(axum::http::header::ETAG, value);
    }
    response
}

/// Runs the read barrier when `?consistent=true`.
pub async fn barrier(state: &ApiState, query: &QueryParams) -> Result<(), ApiFailure> {
    if query.consistent {
        state.store.read_barrier().await?;
    }
    Ok(())
}

/// `GET` a collection.
pub async fn list(
    rtype: ResourceType,
    State(state): State<ApiState>,
    req: Listing,
) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(req.query.as_deref())?;
    barrier(&state, &query).await?;
    list_request(|t, m| state.store.list(t, m), rtype, &req, &query.paging)
}

/// `GET` one resource.
pub async fn get_one(
    rtype: ResourceType,
    State(state): State<ApiState>,
    params: PathParams,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(query.as_deref())?;
    barrier(&state, &query).await?;
    let t = params.target(rtype);
    match state.store.get(&key(&t))? {
        Some(r) => Ok(with_etag(
            Format::from_headers(&headers).respond(StatusCode::OK, &r.to_universal()),
            r.meta.version,
        )),
        None => Err(ApiFailure::NotFound(format!(
            "{} not found: check the name, or list them with GET {}",
            describe(&t),
            collection_path(rtype, t.mesh.as_deref())
        ))),
    }
}

/// `PUT` one resource: decode, admit, write; 201 when created, 200 when updated.
pub async fn put(
    rtype: ResourceType,
    State(state): State<ApiState>,
    params: PathParams,
    headers: HeaderMap,
    Body(bytes): Body,
) -> Result<Response, ApiFailure> {
    let t = params.target(rtype);
    let decoded =
        api_body::decode_reporting::<ApiState>(&headers, &bytes, &t, state.unknown_fields)?;
    let resource = decoded.resource;
    let expected = precondition(&headers, true)?;
    let mut retried = false;
    let mut notes: Vec<String>;
    let (created, written) = loop {
        let admitted = state
            .validator
            .admit_with_notes(&resource, state.now())
            .await?;
        notes = admitted.notes;
        let mut cmd = admitted.command;
        if let Some(v) = expected {
            expect(&mut cmd, v);
        }
        let generates_ca = matches!(cmd, Command::Batch(_));
        match state.store.write(cmd).await? {
            CommandResult::Put { created, version } => break (created, version),
            CommandResult::Batch(results) => match results.first() {
                Some(CommandResult::Put { created, version }) => break (*created, *version),
                other => {
                    return Err(ApiFailure::Internal(format!(
                        "unexpected store result ({}) for {}",
                        result_kind(other),
                        describe(&t)
                    )));
                }
            },
            // A concurrent apply installed the builtin CA first: admit again to keep that CA.
            CommandResult::Refused(Refusal::Conflict(_)) if generates_ca && !retried => {
                retried = true;
            }
            CommandResult::Refused(r) => return Err(from_refusal(r)),
            other => {
                return Err(ApiFailure::Internal(format!(
                    "unexpected store result ({}) for {}",
                    result_kind(Some(&other)),
                    describe(&t)
                )));
            }
        }
    };
    let stored = state.store.get(&key(&t))?.ok_or_else(|| {
        ApiFailure::Internal(format!(
            "{} was written but cannot be read back: retry the request",
            describe(&t)
        ))
    })?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    for field in &decoded.ignored {
        tracing::info!(resource = %describe(&t), %field, "unknown field ignored, as Kuma ignores it (api.unknown_fields = \"refuse\" refuses it)");
    }
    // The ETag is this write's own version: by the time the resource is read back, a concurrent
    // write may have replaced it (the body then shows the newer one), and a client's next
    // `If-Match` must name what it wrote.
    let answer = with_etag(
        Format::from_headers(&headers).respond(status, &stored.to_universal()),
        Some(written),
    );
    let mut response = api_body::with_warnings(answer, &decoded.ignored);
    // What admission could not check is said in `Warning` headers too (RFC 9111 code 299, as the
    // Kubernetes API server answers admission warnings), beside the stored resource.
    for note in notes {
        if let Ok(value) = axum::http::HeaderValue::from_str(&warning_header(&note)) {
            response
                .headers_mut()
                .append(axum::http::header::WARNING, value);
        }
    }
    Ok(response)
}

/// `299 mosaic "<note>"`, the note made header-safe (printable ASCII, quotes escaped).
fn warning_header(note: &str) -> String {
    let mut text = String::with_capacity(note.len());
    for c in note.chars() {
        match c {
            '"' | '\\' => {
                text.push('\\');
                text.push(c);
            }
            c if c.is_ascii() && !c.is_ascii_control() => text.push(c),
            _ => text.push('?'),
        }
    }
    format!("299 mosaic \"{text}\"")
}

/// `DELETE` one resource (`?force=true` deletes a Mesh that has data planes).
pub async fn delete(
    rtype: ResourceType,
    State(state): State<ApiState>,
    params: PathParams,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let query = QueryParams::parse(query.as_deref())?;
    let t = params.target(rtype);
    let mut cmd = Command::delete(key(&t), query.force);
    if let Some(v) = precondition(&headers, false)? {
        expect(&mut cmd, v);
    }
    match state.store.write(cmd).await? {
        CommandResult::Deleted { .. } => {
            Ok(Format::from_headers(&headers).respond(StatusCode::OK, &serde_json::json!({})))
        }
        CommandResult::Refused(Refusal::NotFound(_)) => Err(ApiFailure::NotFound(format!(
            "{} does not exist, so there is nothing to delete: list them with GET {}",
            describe(&t),
            collection_path(rtype, t.mesh.as_deref())
        ))),
        CommandResult::Refused(r) => Err(from_refusal(r)),
        other => Err(ApiFailure::Internal(format!(
            "unexpected store result ({}) for deleting {}",
            result_kind(Some(&other)),
            describe(&t)
        ))),
    }
}

/// A store result's kind, for error text (never its contents: internal records may be keys).
fn result_kind(result: Option<&CommandResult>) -> &'static str {
    match result {
        None => "none",
        Some(CommandResult::Put { .. }) => "put",
        Some(CommandResult::Deleted { .. }) => "deleted",
        Some(CommandResult::Internal { .. }) => "internal record",
        Some(CommandResult::Done) => "done",
        Some(CommandResult::Batch(_)) => "batch",
        Some(CommandResult::Group(_)) => "group",
        Some(CommandResult::Refused(_)) => "refused",
    }
}

/// `PUT`/`DELETE` of a zone-owned type: 405, saying where such resources are written.
pub async fn zone_owned(rtype: ResourceType) -> ApiFailure {
    ApiFailure::MethodNotAllowed(match rtype {
        ResourceType::Dataplane => "Dataplanes are owned by zones: register them on a zone control plane (PUT /meshes/{mesh}/dataplanes/{name} there, or run mosaic-dp); the global only shows what zones report".to_string(),
        ResourceType::DataplaneInsight => "DataplaneInsights are reported by zone control planes: they are read-only on the global".to_string(),
        ResourceType::ZoneInsight => "ZoneInsights are reported by zones over KDS: they are read-only on the global".to_string(),
        other => format!("{other}s cannot be written here"),
    })
}
