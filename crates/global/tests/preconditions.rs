//! Optimistic concurrency on the resource API (a Mosaic extension): `ETag` on reads and writes,
//! `If-Match` on PUT and DELETE, `If-None-Match: *` on PUT; without them writes are Kuma's.

use std::time::Duration;

use mosaic_testkit::GlobalCluster as Cluster;
use reqwest::StatusCode;

const SECRET: &str = "/meshes/default/secrets/s";

fn secret(data: &str) -> String {
    format!("type: Secret\nmesh: default\nname: s\ndata: {data}\n")
}

#[tokio::test]
async fn writes_conditioned_on_versions() -> anyhow::Result<()> {
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_mosaic-global")),
        1,
        10_000,
    )?;
    cluster.start_all()?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    let (status, body) = cluster
        .put(0, "/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    assert!(status == 201 || status == 200, "{status} {body}");
    let http = reqwest::Client::new();
    let url = format!("{}{SECRET}", cluster.api(0));
    let put = |data: &str, header: Option<(&'static str, String)>| {
        let mut req = http
            .put(&url)
            .header("content-type", "application/yaml")
            .body(secret(data));
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        req.send()
    };
    let etag = |r: &reqwest::Response| -> u64 {
        r.headers()["etag"]
            .to_str()
            .unwrap()
            .trim_matches('"')
            .parse()
            .unwrap()
    };

    // Create only if absent: the first succeeds, the second is a conflict.
    let created = put("YQ==", Some(("if-none-match", "*".into()))).await?;
    assert_eq!(created.status(), StatusCode::CREATED);
    let v1 = etag(&created);
    let again = put("Yg==", Some(("if-none-match", "*".into()))).await?;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let text = again.text().await?;
    assert!(text.contains(&format!("at version {v1}")), "{text}");

    // GET's ETag is the version; a stale If-Match is refused, the current one applies.
    let got = http.get(&url).send().await?;
    assert_eq!(etag(&got), v1);
    let cas = put("Yw==", Some(("if-match", format!("\"{v1}\"")))).await?;
    assert_eq!(cas.status(), StatusCode::OK);
    let v2 = etag(&cas);
    assert!(v2 > v1);
    let stale = put("ZA==", Some(("if-match", format!("\"{v1}\"")))).await?;
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    let (_, body) = cluster.get(0, SECRET).await?;
    assert_eq!(body["data"], "Yw==", "the stale write changed nothing");

    // Malformed preconditions are refused naming the header.
    let bad = put("ZA==", Some(("if-match", "soon".into()))).await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await?.contains("If-Match"));

    // DELETE with a stale version: conflict, kept; with the current one: gone; then 404.
    let del = |v: u64| {
        http.delete(&url)
            .header("if-match", format!("\"{v}\""))
            .send()
    };
    assert_eq!(del(v1).await?.status(), StatusCode::CONFLICT);
    assert_eq!(cluster.get(0, SECRET).await?.0, 200);
    assert_eq!(del(v2).await?.status(), StatusCode::OK);
    assert_eq!(del(v2).await?.status(), StatusCode::NOT_FOUND);

    // Without headers, writes are unconditional, as in Kuma.
    assert_eq!(put("ZQ==", None).await?.status(), StatusCode::CREATED);
    assert_eq!(put("Zg==", None).await?.status(), StatusCode::OK);
    Ok(())
}
