//! Wire resources and deadline polling for the tests.

use std::time::Duration;

use mosaic_proto::kds::{DiscoveryResponse, Resource, ResourceRef};
use serde_json::json;

/// Generous deadline for anything the tests wait for.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, or panics after [`DEADLINE`] naming `what`.
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `fut` within [`DEADLINE`].
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A Mesh on the wire.
pub fn mesh(name: &str, version: u64) -> Resource {
    Resource {
        r#type: "Mesh".into(),
        mesh: String::new(),
        name: name.into(),
        version,
        json: serde_json::to_vec(&json!({"type": "Mesh", "name": name, "version": version}))
            .unwrap(),
    }
}

/// A Secret on the wire holding `value`.
pub fn secret(mesh: &str, name: &str, version: u64, value: &str) -> Resource {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(value);
    secret_raw(mesh, name, version, &data)
}

/// A Secret on the wire with raw `data` (may be invalid base64).
pub fn secret_raw(mesh: &str, name: &str, version: u64, data: &str) -> Resource {
    Resource {
        r#type: "Secret".into(),
        mesh: mesh.into(),
        name: name.into(),
        version,
        json: serde_json::to_vec(&json!({
            "type": "Secret", "mesh": mesh, "name": name, "data": data, "version": version
        }))
        .unwrap(),
    }
}

/// A ref.
pub fn reference(ty: &str, mesh: &str, name: &str) -> ResourceRef {
    ResourceRef {
        r#type: ty.into(),
        mesh: mesh.into(),
        name: name.into(),
    }
}

/// An unsplit response.
pub fn response(
    ty: &str,
    nonce: &str,
    authoritative: bool,
    resources: Vec<Resource>,
    removed: Vec<ResourceRef>,
) -> DiscoveryResponse {
    DiscoveryResponse {
        r#type: ty.into(),
        nonce: nonce.into(),
        authoritative,
        resources,
        removed,
        chunk: 0,
        chunks: 1,
        global_index: 0,
    }
}

/// A Dataplane body (Universal JSON) for the zone API or the store.
pub fn dataplane_json(mesh: &str, name: &str, service: &str) -> serde_json::Value {
    json!({
        "type": "Dataplane", "mesh": mesh, "name": name,
        "networking": {
            "address": "10.0.0.1",
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": service}}]
        }
    })
}
