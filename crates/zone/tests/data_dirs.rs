//! Data directories are owner-only: a real global (raft log, snapshots, generated CAs, admin
//! token) and a real zone (its store with cached certificates) leave no file readable and no
//! directory searchable by group or others.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use mosaic_testkit::{GlobalCluster, join::joining_zone, workspace_binary};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// Every path under `dir` (itself included) whose mode lets group or others in.
fn open_paths(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut open = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            open.push((p.clone(), mode));
        }
        if meta.is_dir()
            && let Ok(rd) = std::fs::read_dir(&p)
        {
            todo.extend(rd.flatten().map(|e| e.path()));
        }
    }
    open
}

#[tokio::test]
async fn global_and_zone_data_dirs_are_owner_only() -> anyhow::Result<()> {
    // A snapshot every few entries, so raft-snapshots holds a snapshot file too.
    let mut global = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 5)?;
    global.start_all()?;
    global.wait_ready(0, WAIT).await?;
    let (status, body) = global
        .put(
            0,
            "/meshes/default",
            &json!({"type": "Mesh", "name": "default", "mtls": {"enabledBackend": "ca-1",
                "backends": [{"name": "ca-1", "type": "builtin"}]}})
            .to_string(),
        )
        .await?;
    anyhow::ensure!(status == 201, "{body}");
    for i in 0..12 {
        let (status, body) = global
            .put(
                0,
                &format!("/meshes/default/secrets/s-{i}"),
                "data: aGVsbG8=\n",
            )
            .await?;
        anyhow::ensure!(status == 201, "{body}");
    }
    let mut zone = joining_zone(
        Path::new(env!("CARGO_BIN_EXE_mosaic-zone")),
        &global,
        "east",
        "24h",
    )
    .await?;
    zone.start()?;
    zone.wait_ready(WAIT).await?;
    let start = Instant::now();
    loop {
        let (status, _) = zone.get("/meshes/default").await?;
        if status == 200 {
            break;
        }
        anyhow::ensure!(start.elapsed() < WAIT, "the zone never received the Mesh");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let g = global.data_dir(0);
    let snapshot_dir = g.join("raft-snapshots");
    let start = Instant::now();
    while std::fs::read_dir(&snapshot_dir).map_or(0, |d| d.count()) == 0 {
        anyhow::ensure!(start.elapsed() < WAIT, "no snapshot was written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in [
        "raft/db",
        "raft/conf",
        "raft-ca-key.pem",
        "kds-ca-key.pem",
        "admin-token",
    ] {
        anyhow::ensure!(g.join(p).exists(), "the global has no {p}");
    }
    let z = zone.data_dir();
    anyhow::ensure!(z.join("store").exists(), "the zone has no store");

    let open_global = open_paths(&g);
    let open_zone = open_paths(&z);
    assert!(
        open_global.is_empty(),
        "global paths open to group/others: {open_global:?}"
    );
    assert!(
        open_zone.is_empty(),
        "zone paths open to group/others: {open_zone:?}"
    );
    zone.stop()?;
    global.stop(0)?;
    Ok(())
}
