//! Unknown fields in resource documents, against a real `mosaic-global`: by default (Kuma's
//! behaviour) kumactl's own test Mesh (`mtls: {ca: {builtin: }}`) is accepted, the unknown
//! field dropped with a `Warning` header and an info log line, and the stored Mesh has
//! `mtls: {}`; with `api.unknown_fields = "refuse"` the same PUT is a 400 naming `mtls.ca`.

use std::{path::Path, time::Duration};

use mosaic_core::resource::UnknownFields;
use mosaic_testkit::GlobalCluster;
use serde_json::{Value, json};

const READY: Duration = Duration::from_secs(60);

/// kumactl's `app/kumactl/cmd/apply/testdata/golden/apply-mesh.input.yaml` (Kuma 2.14.3).
const KUMACTL_MESH: &str = "type: Mesh\nname: sample\nmtls:\n  ca:\n    builtin:\n";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mosaic-global"))
}

/// `PUT` YAML; the status, the `Warning` headers and the body.
async fn put(cluster: &GlobalCluster, path: &str, yaml: &str) -> (u16, Vec<String>, Value) {
    let resp = reqwest::Client::new()
        .put(format!("{}{path}", cluster.api(0)))
        .header("content-type", "application/yaml")
        .body(yaml.to_string())
        .send()
        .await
        .expect("PUT");
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect();
    (status, warnings, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn kumactls_mesh_is_applied_without_its_unknown_field_and_a_warning() -> anyhow::Result<()> {
    let mut cluster = GlobalCluster::new(binary(), 1, 10_000)?;
    cluster.start(0)?;
    cluster.wait_ready(0, READY).await?;

    let (status, warnings, body) = put(&cluster, "/meshes/sample", KUMACTL_MESH).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(warnings, [r#"299 - "unknown field mtls.ca ignored""#]);
    assert_eq!(body["mtls"], json!({}), "{body}");

    // What is stored has no trace of it, as Kuma stores `mtls: {}`.
    let (status, stored) = cluster.get(0, "/meshes/sample").await?;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["mtls"], json!({}), "{stored}");
    assert!(stored["mtls"].get("ca").is_none(), "{stored}");

    // Kubernetes form: the path is the document's own.
    let k8s = "apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: sample\nspec:\n  mtls:\n    ca: {}\n  futureField: 1\n";
    let (status, warnings, body) = put(&cluster, "/meshes/sample", k8s).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        warnings,
        [
            r#"299 - "unknown field spec.mtls.ca ignored""#,
            r#"299 - "unknown field spec.futureField ignored""#
        ]
    );
    // A document with nothing unknown gets no warning.
    let (status, warnings, _) = put(&cluster, "/meshes/sample", "type: Mesh\nname: sample\n").await;
    assert_eq!((status, warnings.len()), (200, 0));

    // The global logs each ignored field at info, naming the resource.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = cluster.log(0);
        if log.contains("unknown field ignored") && log.contains("mtls.ca") {
            assert!(log.contains("sample"), "{log}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line for the ignored field:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.stop(0)?;
    Ok(())
}

#[tokio::test]
async fn with_refuse_the_unknown_field_is_a_400_naming_it() -> anyhow::Result<()> {
    let mut cluster = GlobalCluster::new(binary(), 1, 10_000)?;
    cluster.edit_config(|_, c| c.api.unknown_fields = UnknownFields::Refuse);
    cluster.start(0)?;
    cluster.wait_ready(0, READY).await?;

    let (status, warnings, body) = put(&cluster, "/meshes/sample", KUMACTL_MESH).await;
    assert_eq!(status, 400, "{body}");
    assert!(warnings.is_empty(), "{warnings:?}");
    let params = body["invalid_parameters"].as_array().expect("fields");
    let fields: Vec<&str> = params.iter().filter_map(|p| p["field"].as_str()).collect();
    assert_eq!(fields, ["mtls.ca"], "{body}");
    assert!(
        params[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown field"),
        "{body}"
    );
    let (status, _) = cluster.get(0, "/meshes/sample").await?;
    assert_eq!(status, 404, "nothing stored");
    // An unknown top-level field: the Mesh's own message, as before the option existed.
    let (status, _, body) = put(&cluster, "/meshes/sample", "type: Mesh\nmtsl: {}\n").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["invalid_parameters"][0]["field"], "mtsl", "{body}");
    // Known fields still apply.
    let (status, _, body) = put(&cluster, "/meshes/sample", "type: Mesh\nmtls: {}\n").await;
    assert_eq!(status, 201, "{body}");
    cluster.stop(0)?;
    Ok(())
}
