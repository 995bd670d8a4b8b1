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

/// The operator's rotation of a mesh's dataplane-token signing key with `mosaicctl`: after
/// `rotate signing-key`, a data plane on a token of the old key keeps running (and a new one on
/// such a token still connects), new tokens name the new key; `retire signing-key` of the old key
/// cuts off its data planes (the zone learns the key is gone over KDS) and refuses their token
/// naming the key, while data planes on new tokens keep running; the newest key cannot be
/// retired.
#[tokio::test]
async fn dataplane_signing_keys_rotate_and_retire_with_mosaicctl() -> anyhow::Result<()> {
    use mosaic_core::token::signing_key_of;
    let mosaic = Mosaic::start(&["east"]).await?;
    mosaic.put_builtin_mesh().await?;
    mosaic.mesh_reached_zones(MESH).await?;
    let web = [("kuma.io/service", "web")];
    let old = mosaic.dataplane_token(MESH, "web-1", &web).await?;
    let old_3 = mosaic.dataplane_token(MESH, "web-3", &web).await?;
    let old_kid = signing_key_of(&old).map(|k| k.1).unwrap_or_default();
    let mut on_old = mosaic.agent(0, |o| o, MESH, "web-1", &old, &web)?;
    mosaic.files(&mut on_old).await?;

    let (code, out, err) = mosaic.ctl(&["rotate", "signing-key", "dataplane", "--mesh", MESH])?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("signing key 2 (kid "), "{out}");
    let (code, listed, err) = mosaic.ctl(&[
        "get",
        "signing-keys",
        "dataplane",
        "--mesh",
        MESH,
        "-o",
        "json",
    ])?;
    assert_eq!(code, 0, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&listed)?;
    let new_kid = listed["items"][1]["kid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(listed["items"][0]["kid"], old_kid.as_str());
    assert_eq!(listed["items"][0]["state"], "verifying");
    assert_eq!(listed["items"][1]["state"], "signing");
    let (_, table, _) = mosaic.ctl(&["get", "signing-keys", "dataplane", "--mesh", MESH])?;
    assert!(
        table.starts_with("SERIAL") && table.contains("VERIFYING") && table.contains("SIGNING"),
        "{table}"
    );

    let new = mosaic.dataplane_token(MESH, "web-2", &web).await?;
    assert_eq!(signing_key_of(&new).map(|k| k.1), Some(new_kid.clone()));
    let mut on_new = mosaic.agent(0, |o| o, MESH, "web-2", &new, &web)?;
    mosaic.files(&mut on_new).await?;
    // A token of the old key (issued before the rotation) still connects after it.
    let mut second_old = mosaic.agent(0, |o| o, MESH, "web-3", &old_3, &web)?;
    mosaic.files(&mut second_old).await?;
    assert!(on_old.exit_status().is_none(), "{}", on_old.log());

    // The newest key cannot be retired.
    let (code, out, err) =
        mosaic.ctl(&["retire", "signing-key", "dataplane", "2", "--mesh", MESH])?;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("409") || err.contains("is the newest"),
        "{err}"
    );
    assert!(err.contains("it signs every new token"), "{err}");

    let (code, out, err) =
        mosaic.ctl(&["retire", "signing-key", "dataplane", "1", "--mesh", MESH])?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("signing key 1 (kid {old_kid})")),
        "{out}"
    );
    for agent in [&mut on_old, &mut second_old] {
        let status = agent.wait_exit(WAIT).await?;
        assert_eq!(status.code(), Some(1), "{}", agent.log());
        let log = agent.log();
        let line = error_line(&log);
        assert!(
            line.contains(&format!(
                "error: the zone refused dataplane default.{}:",
                agent.name
            )) && line.contains(&format!("signed by key \"{old_kid}\""))
                && line.contains("retired"),
            "{log}"
        );
    }
    // A new connection with the old token is refused, naming the key.
    let mut again = mosaic.agent(0, |o| o, MESH, "web-1", &old, &web)?;
    assert_eq!(again.wait_exit(WAIT).await?.code(), Some(1));
    assert!(again.log().contains(&old_kid), "{}", again.log());
    assert!(on_new.exit_status().is_none(), "{}", on_new.log());
    Ok(())
}
