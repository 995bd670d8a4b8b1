//! The raft port as an attacker on the same network sees it: a 3-replica global (real processes,
//! mutual TLS with a cluster CA made by `mosaic-global generate raft-ca`), and clients that try
//! `Forward` (write a Mesh), `AppendEntries` and `Vote` (take over the term) on the leader and on
//! a follower: in plaintext, over TLS without a client certificate, with a certificate from
//! another CA that claims to be node 1, and with a certificate of the right CA for a node that is
//! not a member. Every attempt is refused, nothing is stored, the term does not move, and the
//! cluster keeps working.

use std::time::Duration;

use mosaic_global::{
    config::GlobalConfig,
    raft::{TypeConfig, tls::node_name},
    store::Command,
};
use mosaic_proto::raft::{RaftPayload, raft_service_client::RaftServiceClient};
use mosaic_runtime::tls::{self as common_tls, CaPem};
use mosaic_testkit::GlobalCluster as Cluster;
use openraft::{
    Vote,
    raft::{AppendEntriesRequest, VoteRequest},
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// `127.0.0.1:<port>`.
fn loopback(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

const READY: Duration = Duration::from_secs(60);

/// How the attacker dials.
enum Dial {
    Plaintext,
    /// TLS trusting the cluster CA (so the attacker gets as far as it can), with an optional
    /// client certificate and key.
    Tls(Option<(String, String)>),
}

fn payload<T: serde::Serialize>(value: &T) -> RaftPayload {
    RaftPayload {
        data: serde_json::to_vec(value).unwrap(),
        error: Vec::new(),
    }
}

/// Forward, AppendEntries and Vote against node `target` at `port`; the status of each attempt
/// (`Ok` if the server answered at all).
async fn attack(
    port: u16,
    target: u64,
    dial: &Dial,
    cluster_ca: &str,
) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    let endpoint = match dial {
        Dial::Plaintext => Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap(),
        Dial::Tls(identity) => {
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(cluster_ca))
                .domain_name(node_name(target));
            if let Some((cert, key)) = identity {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
                .unwrap()
                .tls_config(tls)
                .unwrap()
        }
    };
    let channel = endpoint
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect_lazy();
    let mut client = RaftServiceClient::new(channel);

    let forward = Command::Put {
        resource: serde_json::json!({"type": "Mesh", "name": "pwned"}),
        now: time::OffsetDateTime::now_utc(),
        expect_version: None,
    };
    let append: AppendEntriesRequest<TypeConfig> = AppendEntriesRequest {
        vote: Vote::new_committed(1_000, 9),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    let vote: VoteRequest<u64> = VoteRequest {
        vote: Vote::new(1_000, 9),
        last_log_id: None,
    };
    vec![
        (
            "Forward",
            client.forward(payload(&forward)).await.map(|_| ()),
        ),
        (
            "AppendEntries",
            client.append_entries(payload(&append)).await.map(|_| ()),
        ),
        ("Vote", client.vote(payload(&vote)).await.map(|_| ())),
    ]
}

/// `(term, applied index)` from replica `i`'s `/metrics`.
async fn term_and_applied(cluster: &Cluster, i: usize) -> Option<(u64, u64)> {
    let url = format!("http://127.0.0.1:{}/metrics", cluster.replicas[i].diag);
    let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    };
    Some((
        gauge("mosaic_raft_term ")?,
        gauge("mosaic_raft_applied_index ")?,
    ))
}

/// Waits until every replica's gauges show an applied index beyond `after` (so they were
/// published after whatever happened before the write that got there), and returns their terms.
async fn terms_after(cluster: &Cluster, after: &[u64]) -> Vec<(u64, u64)> {
    let deadline = std::time::Instant::now() + READY;
    let mut seen = Vec::new();
    for (i, floor) in after.iter().enumerate() {
        loop {
            if let Some((term, applied)) = term_and_applied(cluster, i).await
                && applied > *floor
            {
                seen.push((term, applied));
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "replica {} never published an applied index beyond {floor}",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    seen
}

fn foreign_identity(node: u64) -> (String, String) {
    let other = common_tls::generate_ca("attacker CA").unwrap();
    let (cert, key) = common_tls::issue_peer_cert(&other, "impostor", &[node_name(node)]).unwrap();
    (cert, key.expose().clone())
}

fn member_ca(cluster: &Cluster) -> CaPem {
    let dir = cluster.raft_ca_dir();
    CaPem {
        cert_pem: std::fs::read_to_string(dir.join("raft-ca.pem")).unwrap(),
        key_pem: mosaic_core::Sensitive::new(
            std::fs::read_to_string(dir.join("raft-ca-key.pem")).unwrap(),
        ),
    }
}

#[tokio::test]
async fn the_raft_port_refuses_everyone_but_members() -> anyhow::Result<()> {
    mosaic_runtime::tls::install_crypto_provider();
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_mosaic-global")),
        3,
        10_000,
    )?;
    cluster.start_all()?;
    for i in 0..3 {
        cluster.wait_ready(i, READY).await?;
    }
    let leader = cluster.wait_leader(READY).await?;
    let follower = (leader + 1) % 3;
    let (status, body) = cluster
        .put(leader, "/meshes/before", "type: Mesh\nname: before\n")
        .await?;
    assert_eq!(status, 201, "{body}");
    let before = terms_after(&cluster, &[0, 0, 0]).await;

    let ca = member_ca(&cluster);
    let outsider = {
        // The right CA, but a node id that is in neither raft.peers nor the membership.
        let (cert, key) = common_tls::issue_peer_cert(&ca, "outsider", &[node_name(9)]).unwrap();
        (cert, key.expose().clone())
    };
    let dials = [
        ("plaintext", Dial::Plaintext),
        ("TLS without a client certificate", Dial::Tls(None)),
        (
            "a certificate from another CA claiming node 1",
            Dial::Tls(Some(foreign_identity(1))),
        ),
        (
            "a cluster certificate for non-member node 9",
            Dial::Tls(Some(outsider)),
        ),
    ];
    for (who, dial) in &dials {
        for (role, i) in [("leader", leader), ("follower", follower)] {
            let port = cluster.replicas[i].raft;
            let target = cluster.replicas[i].id;
            for (rpc, result) in attack(port, target, dial, &ca.cert_pem).await {
                let Err(status) = result else {
                    panic!("{rpc} from {who} was answered by the {role}");
                };
                if who.contains("non-member") {
                    assert_eq!(
                        status.code(),
                        tonic::Code::PermissionDenied,
                        "{rpc} from {who} on the {role}: {status:?}"
                    );
                    assert!(
                        status.message().contains("node 9 is not a member"),
                        "{status:?}"
                    );
                }
            }
        }
    }

    // Nothing was stored, on any replica.
    for i in 0..3 {
        let (status, body) = cluster.get(i, "/meshes/pwned?consistent=true").await?;
        assert_eq!(status, 404, "replica {}: {body}", i + 1);
    }
    // The cluster still works, and no vote or append moved anyone's term.
    let (status, body) = cluster
        .put(follower, "/meshes/after", "type: Mesh\nname: after\n")
        .await?;
    assert_eq!(status, 201, "{body}");
    let floors: Vec<u64> = before.iter().map(|(_, applied)| *applied).collect();
    let after = terms_after(&cluster, &floors).await;
    for i in 0..3 {
        assert_eq!(
            after[i].0,
            before[i].0,
            "replica {}'s term moved: {before:?} -> {after:?}",
            i + 1
        );
    }
    assert_eq!(
        cluster.wait_leader(READY).await?,
        leader,
        "leadership moved"
    );
    assert!(
        cluster
            .log(leader)
            .lines()
            .any(|l| l.contains("not a member") && l.contains("peer=9")),
        "the leader logs the refused peer:\n{}",
        cluster.log_tail(leader)
    );
    Ok(())
}

/// `raft.insecure = false` with several replicas and no cluster CA: the replica refuses to start
/// and says how to make one.
#[tokio::test]
async fn several_replicas_without_a_cluster_ca_refuse_to_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("global.toml");
    let mut c = GlobalConfig::default();
    c.store.data_dir = dir.path().join("data");
    c.raft.listen = loopback(0);
    c.raft.advertise = "127.0.0.1:1".into();
    c.raft.peers = ["1=127.0.0.1:1", "2=127.0.0.1:2", "3=127.0.0.1:3"]
        .iter()
        .map(|p| p.parse().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    c.api.listen = loopback(0);
    c.kds.listen = loopback(0);
    c.diagnostics.listen = loopback(0);
    std::fs::write(&cfg, toml::to_string(&c)?)?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mosaic-global"))
        .args(["run", "--config"])
        .arg(&cfg)
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: raft TLS: raft.peers lists 3 replicas")
            && stderr.contains("mosaic-global generate raft-ca --out DIR"),
        "{stderr}"
    );
    Ok(())
}

/// The documented bootstrap: `generate raft-ca` once, `generate raft-cert` per replica, and a
/// replica started with that certificate and without the CA key serves raft over mTLS.
#[tokio::test]
async fn generate_raft_ca_and_cert_make_files_a_replica_starts_with() -> anyhow::Result<()> {
    mosaic_runtime::tls::install_crypto_provider();
    let bin = env!("CARGO_BIN_EXE_mosaic-global");
    let dir = tempfile::tempdir()?;
    let ca_dir = dir.path().join("ca");
    let out = std::process::Command::new(bin)
        .args(["generate", "raft-ca", "--out"])
        .arg(&ca_dir)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(ca_dir.join("raft-ca-key.pem"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the CA key is owner-only");
    }
    // Again into the same directory: refused, the CA is kept.
    let kept = std::fs::read_to_string(ca_dir.join("raft-ca.pem"))?;
    let again = std::process::Command::new(bin)
        .args(["generate", "raft-ca", "--out"])
        .arg(&ca_dir)
        .output()?;
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(ca_dir.join("raft-ca.pem"))?, kept);

    let node_dir = dir.path().join("node-1");
    let out = std::process::Command::new(bin)
        .args(["generate", "raft-cert", "--node-id", "1", "--ca-cert"])
        .arg(ca_dir.join("raft-ca.pem"))
        .arg("--ca-key")
        .arg(ca_dir.join("raft-ca-key.pem"))
        .arg("--out")
        .arg(&node_dir)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = std::fs::read_to_string(node_dir.join("raft-node-1.pem"))?;
    let der = common_tls::first_certificate_der(&cert).unwrap();
    assert_eq!(mosaic_global::raft::tls::node_id_of(&der), Some(1));

    // A replica with that certificate and no CA key starts and serves.
    let ports = mosaic_testkit::free_ports(4)?;
    let data = dir.path().join("data");
    let cfg = dir.path().join("global.toml");
    let mut c = GlobalConfig::default();
    c.store.data_dir = data.clone();
    c.raft.listen = loopback(ports[0]);
    c.raft.advertise = loopback(ports[0]).to_string();
    c.raft.ca_cert = Some(ca_dir.join("raft-ca.pem"));
    c.raft.tls_cert = Some(node_dir.join("raft-node-1.pem"));
    c.raft.tls_key = Some(node_dir.join("raft-node-1-key.pem"));
    c.api.listen = loopback(ports[1]);
    c.kds.listen = loopback(ports[2]);
    c.diagnostics.listen = loopback(ports[3]);
    std::fs::write(&cfg, toml::to_string(&c)?)?;
    let mut child = std::process::Command::new(bin)
        .args(["run", "--config"])
        .arg(&cfg)
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let ready = async {
        let url = format!("http://127.0.0.1:{}/meshes", ports[1]);
        let deadline = std::time::Instant::now() + READY;
        while std::time::Instant::now() < deadline {
            if let Ok(r) = reqwest::get(&url).await
                && r.status() == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        ready,
        "the replica with an off-line issued certificate did not serve"
    );
    assert!(
        !data.join("raft-ca-key.pem").exists(),
        "no CA is generated when a certificate is configured"
    );
    Ok(())
}
