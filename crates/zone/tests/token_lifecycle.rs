//! Tokens over their lifetime, every part a real process on loopback (`mosaic-global`,
//! `mosaic-zone`, `mosaic-dp`): a zone token or a dataplane token that expires while its stream is
//! open ends that stream with a message on both sides, and the zone comes back once its token file
//! holds a fresh token.
//!
//! Waits poll with deadlines; nothing asserts how long anything took.

use std::time::{Duration, Instant};

use mosaic_testkit::{
    GlobalCluster,
    join::{joining_zone, wait_for_kds_ca, zone_token},
    workspace_binary,
};
use serde_json::json;

mod support;

use support::mosaic::{MESH, Mosaic, WAIT};

/// Polls `check` every 200 ms until it holds or `WAIT` passes; the error shows `context()`.
async fn wait_until(
    what: &str,
    mut check: impl FnMut() -> bool,
    context: impl Fn() -> String,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while !check() {
        anyhow::ensure!(
            start.elapsed() < WAIT,
            "{what}: not within {WAIT:?}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// The `error: ...` line an agent that exits 1 prints (empty if none).
fn error_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default()
}

/// A zone connected with a short-lived token is disconnected when it expires: the global logs it
/// with the zone's name, the zone logs the global's message (when, and the command to run), and
/// keeps retrying; once its token file holds a new token it connects again.
#[tokio::test]
async fn a_zone_whose_token_expires_is_disconnected_and_returns_with_a_new_one()
-> anyhow::Result<()> {
    let mut global = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    global.start_all()?;
    global.wait_ready(0, WAIT).await?;
    wait_for_kds_ca(&global, 0, WAIT).await?;
    let mut zone = joining_zone(
        std::path::Path::new(env!("CARGO_BIN_EXE_mosaic-zone")),
        &global,
        "east",
        "10s",
    )
    .await?;
    zone.start()?;
    zone.wait_ready(WAIT).await?;
    let connected =
        |zone: &mosaic_testkit::ZoneProcess| zone.log().matches("connected to the global").count();
    wait_until("the zone connects", || connected(&zone) >= 1, || zone.log()).await?;

    wait_until(
        "the zone logs that its token expired",
        || {
            zone.log().lines().any(|l| {
                l.contains("the global refused zone east")
                    && l.contains("the zone token expired at ")
                    && l.contains("mosaicctl generate zone-token --zone east")
            })
        },
        || zone.log(),
    )
    .await?;
    let log = global.log(0);
    assert!(
        log.lines().any(|l| l.contains("ending the KDS session")
            && l.contains("east")
            && l.contains("the zone token expired at ")),
        "the global logs the end with the zone's name:\n{log}"
    );
    let ready = zone.ready().await;
    assert_ne!(
        ready.as_ref().map(|r| r["kds"]["connected"].clone()),
        Some(json!(true)),
        "{ready:?}"
    );

    // The zone keeps retrying, reading its token file each time: a new token lets it back in.
    let before = connected(&zone);
    zone.write_token(&zone_token(&global, 0, "east", "24h").await?)?;
    wait_until(
        "the zone reconnects with the new token",
        || connected(&zone) > before,
        || zone.log(),
    )
    .await?;
    zone.stop()?;
    Ok(())
}

/// A data plane whose token expires while its SDS stream is open is cut off: `mosaic-dp` exits
/// with the zone's message (when, and the command to run), the zone logs it with the data plane's
/// name, and a data plane with a longer token keeps its stream.
#[tokio::test]
async fn a_dataplane_whose_token_expires_is_cut_off() -> anyhow::Result<()> {
    let mosaic = Mosaic::start(&["east"]).await?;
    mosaic.put_builtin_mesh().await?;
    mosaic.mesh_reached_zones(MESH).await?;
    let web = [("kuma.io/service", "web")];
    let (status, short) = mosaic
        .global
        .post(
            0,
            "/tokens/dataplane",
            &json!({"mesh": MESH, "name": "web-1", "tags": {"kuma.io/service": ["web"]}, "validFor": "15s"}),
        )
        .await?;
    anyhow::ensure!(status == 200, "{status} {short}");
    let short = short.trim().to_string();
    let mut expiring = mosaic.agent(0, |o| o, MESH, "web-1", &short, &web)?;
    let mut kept = mosaic.dataplane(0, MESH, "web-2", &web).await?;
    mosaic.files(&mut expiring).await?;
    mosaic.files(&mut kept).await?;

    let status = expiring.wait_exit(WAIT).await?;
    assert_eq!(status.code(), Some(1), "{}", expiring.log());
    let log = expiring.log();
    let line = error_line(&log);
    assert!(
        line.contains("error: the zone refused dataplane default.web-1:")
            && line.contains("the dataplane token of \"default\".\"web-1\" expired at ")
            && line.contains("mosaicctl generate dataplane-token --mesh default --name web-1"),
        "{log}"
    );
    assert!(!log.contains(&short), "the token never reaches a log");
    let zone_log = mosaic.zones[0].log();
    assert!(
        zone_log
            .lines()
            .any(|l| l.contains("SDS stream ended by the zone")
                && l.contains("web-1")
                && l.contains("expired at ")),
        "the zone logs it with the data plane's name:\n{zone_log}"
    );
    assert!(kept.exit_status().is_none(), "{}", kept.log());
    Ok(())
}
