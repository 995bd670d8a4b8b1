//! Test builds carry failpoints (testkit turns on mosaic-global's `failpoints` feature): a running
//! replica's failpoints are set from `FAILPOINTS` at start and through `/failpoints` on its
//! diagnostics listener.

use std::time::Duration;

use mosaic_testkit::GlobalCluster as Cluster;

#[tokio::test]
async fn failpoints_are_set_from_the_environment_and_over_http() -> anyhow::Result<()> {
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_mosaic-global")),
        1,
        10_000,
    )?;
    cluster.set_env("FAILPOINTS", "test.from_env=sleep(1)");
    cluster.start_all()?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    let fp = cluster.failpoints(0);
    assert_eq!(
        fp.list().await?,
        [("test.from_env".to_string(), "sleep(1)".to_string())]
    );

    fp.set("store.write.ack_before_commit", "off").await?;
    let listed = fp.list().await?;
    assert!(
        listed.contains(&("store.write.ack_before_commit".into(), "off".into())),
        "{listed:?}"
    );
    let refused = fp.set("test.bad", "no-such-action(").await.unwrap_err();
    assert!(refused.to_string().contains("400"), "{refused:#}");

    fp.clear("test.from_env").await?;
    fp.clear("store.write.ack_before_commit").await?;
    assert!(fp.list().await?.is_empty());
    // With the failpoint off, writes are answered as usual.
    let (status, body) = cluster
        .put(0, "/meshes/default", "type: Mesh\nname: default\n")
        .await?;
    assert!(status == 201 || status == 200, "{status} {body}");
    Ok(())
}
