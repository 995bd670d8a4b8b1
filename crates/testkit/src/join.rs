//! A zone joining a [`GlobalCluster`]: waiting for a replica's KDS CA, a zone token from the
//! global's API, and the (not yet started) [`ZoneProcess`] that uses both.

use std::{path::Path, time::Duration};

use serde_json::json;

use crate::{global::GlobalCluster, zone::ZoneProcess};

/// Waits (at most `timeout`) until replica `i` has written the KDS CA zones trust
/// ([`GlobalCluster::kds_ca_path`]).
pub async fn wait_for_kds_ca(
    cluster: &GlobalCluster,
    i: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    while !cluster.kds_ca_path(i).exists() {
        anyhow::ensure!(
            start.elapsed() < timeout,
            "replica {} never wrote kds-ca.pem",
            i + 1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A token for zone `zone`, valid for `valid_for` (a Kuma duration, e.g. `24h`), from replica
/// `i`'s `POST /tokens/zone`; an error unless it answers 200.
pub async fn zone_token(
    cluster: &GlobalCluster,
    i: usize,
    zone: &str,
    valid_for: &str,
) -> anyhow::Result<String> {
    let (status, token) = cluster
        .post(
            i,
            "/tokens/zone",
            &json!({"zone": zone, "validFor": valid_for}),
        )
        .await?;
    anyhow::ensure!(status == 200, "zone token for {zone}: {status} {token}");
    Ok(token.trim().to_string())
}

/// Zone `name` (binary `binary`, not started) of `cluster`: a fresh token valid for `valid_for`,
/// replica 0's KDS address and CA.
pub async fn joining_zone(
    binary: &Path,
    cluster: &GlobalCluster,
    name: &str,
    valid_for: &str,
) -> anyhow::Result<ZoneProcess> {
    let token = zone_token(cluster, 0, name, valid_for).await?;
    ZoneProcess::new(
        binary,
        cluster.dir(),
        name,
        &cluster.kds_url(0),
        &cluster.kds_ca_path(0),
        &token,
    )
}
