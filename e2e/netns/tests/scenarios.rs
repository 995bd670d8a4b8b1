//! The network-namespace scenarios of issue #7: three globals, two zones, OpenBao and mosaic-dp
//! agents, each in its own namespace at its own address in 198.18.0.0/15. Each scenario prints
//! what it checked (`netns[<scenario>]: ... ✓`). See e2e/README.md.

use std::time::Duration;

use anyhow::Context as _;

use mosaic_e2e_netns::{Mosaic, Options, mosaic::WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_both_zones_issue_from_the_one_vault_address() -> anyhow::Result<()> {
    let mut m = Mosaic::start("happy", Options::default()).await?;
    for z in 0..2 {
        let name = format!("backend-{}", &m.zones[z].name);
        m.add_agent(z, &name).await?;
    }
    for z in 0..2 {
        let zone = m.zones[z].name.clone();
        let name = format!("backend-{zone}");
        let cert = m
            .wait_agent_cert(&name, "its certificate files", WAIT, |_| true)
            .await?;
        m.check_vault_cert(&cert)?;
        let key = m.agents[&name].out_dir.join("key.pem");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key)?.permissions());
        anyhow::ensure!(mode & 0o777 == 0o600, "key.pem has mode {:o}", mode & 0o777);
        let issued = m.issue_requests_from(m.zones[z].ip);
        anyhow::ensure!(
            issued >= 1,
            "OpenBao's audit log has no issue request from {zone}"
        );
        m.say(&format!(
            "{zone} issued spiffe://default/backend from Vault at {} ✓ (agent {name} at {}: serial {}, issuer {}, valid {}s; chain verifies against the Vault root; key.pem 0600; {issued} issue request(s) from {} in OpenBao's audit log)",
            m.vault_addr,
            m.agents[&name].ip,
            cert.serial,
            cert.issuer,
            cert.lifetime_secs,
            m.zones[z].ip,
        ));
    }
    for z in 0..2 {
        m.wait_ca_health(z, true).await?;
        mosaic_e2e_netns::mosaic::poll("the zone shows online", WAIT, || async {
            m.zone_online(z).await.then_some(())
        })
        .await?;
        m.say(&format!(
            "GET /zones/_overview: {} online, CA default/vault-1 healthy ✓",
            m.zones[z].name
        ));
    }
    m.pass();
    Ok(())
}

/// A step of the writer in `the raft leader` scenario: what it wrote and whether a replica
/// acknowledged it.
#[derive(Clone, Debug)]
struct Step {
    n: u32,
    secret_acked: bool,
    mesh_acked: bool,
}

fn churn_mesh(n: u32) -> String {
    format!("type: Mesh\nname: churn\nlabels:\n  mosaic.test/seq: \"{n}\"\n")
}

fn churn_secret(n: u32) -> String {
    format!("type: Secret\nmesh: churn\nname: seq-{n}\ndata: {}\n", {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("value {n}"))
    })
}

/// PUTs `body` at `path`, trying each replica in turn (starting at `first`) until one answers
/// 2xx; whether one did, and how many attempts failed.
async fn put_acked(
    http: &reqwest::Client,
    apis: &[String],
    first: usize,
    path: &str,
    body: &str,
) -> (bool, u32) {
    let mut failed = 0;
    for k in 0..apis.len() {
        let api = &apis[(first + k) % apis.len()];
        let resp = http
            .put(format!("{api}{path}"))
            .header("content-type", "application/yaml")
            .body(body.to_string())
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => return (true, failed),
            _ => failed += 1,
        }
    }
    (false, failed)
}

fn seq_label(mesh: &serde_json::Value) -> Option<u32> {
    mesh["labels"]["mosaic.test/seq"].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_raft_leader_during_mesh_updates_loses_no_acknowledged_write()
-> anyhow::Result<()> {
    const STEPS: u32 = 50;
    const KILL_AFTER: usize = 15;
    let mut m = Mosaic::start("leader-kill", Options::default()).await?;
    m.put_any("/meshes/churn", &churn_mesh(0)).await?;
    for z in 0..2 {
        m.wait_zone_resource(z, "/meshes/churn", "the Mesh churn", |v| {
            seq_label(v) == Some(0)
        })
        .await?;
    }
    let before: Vec<Option<String>> = vec![m.zone_connected(0).await, m.zone_connected(1).await];
    let leader = m.wait_leader().await?;

    // The writer: step n PUTs Secret seq-n, then the Mesh churn with label seq=n, each through
    // the replicas in turn until one acknowledges it (2xx).
    let apis: Vec<String> = (0..3).map(|i| m.api(i)).collect();
    let steps = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Step>::new()));
    let failed_attempts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let writer = {
        let (steps, failed_attempts) = (steps.clone(), failed_attempts.clone());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .default_headers(mosaic_e2e_netns::mosaic::admin_headers()?)
            .build()?;
        tokio::spawn(async move {
            for n in 1..=STEPS {
                let first = n as usize % apis.len();
                let (secret_acked, f1) = put_acked(
                    &http,
                    &apis,
                    first,
                    &format!("/meshes/churn/secrets/seq-{n}"),
                    &churn_secret(n),
                )
                .await;
                let (mesh_acked, f2) =
                    put_acked(&http, &apis, first, "/meshes/churn", &churn_mesh(n)).await;
                failed_attempts.fetch_add(f1 + f2, std::sync::atomic::Ordering::Relaxed);
                if let Ok(mut s) = steps.lock() {
                    s.push(Step {
                        n,
                        secret_acked,
                        mesh_acked,
                    });
                }
            }
        })
    };
    mosaic_e2e_netns::mosaic::poll("the writer's first steps", WAIT, || {
        let done = steps.lock().map(|s| s.len()).unwrap_or(0);
        async move { (done >= KILL_AFTER).then_some(()) }
    })
    .await?;
    let killed_at = steps.lock().map(|s| s.len()).unwrap_or(0);
    m.kill_global(leader)?;
    let killed = m.globals[leader].name.clone();
    writer.await?;
    let steps = steps.lock().map(|s| s.clone()).unwrap_or_default();
    let new_leader = m.wait_leader().await?;
    anyhow::ensure!(
        new_leader != leader,
        "the killed replica is still the leader"
    );
    let acked_secrets: Vec<u32> = steps
        .iter()
        .filter(|s| s.secret_acked)
        .map(|s| s.n)
        .collect();
    let acked_mesh: Vec<u32> = steps.iter().filter(|s| s.mesh_acked).map(|s| s.n).collect();
    let last_acked = acked_mesh.iter().max().copied().unwrap_or(0);
    anyhow::ensure!(
        acked_mesh.iter().any(|n| *n as usize > killed_at),
        "no Mesh update was acknowledged after the leader died"
    );
    m.say(&format!(
        "kill -9 of the raft leader {killed} after {killed_at} of {STEPS} update steps; acknowledged: {} Secret PUTs, {} Mesh PUTs (last acknowledged Mesh seq={last_acked}); {} attempts failed and were retried on another replica; new leader {} ✓",
        acked_secrets.len(),
        acked_mesh.len(),
        failed_attempts.load(std::sync::atomic::Ordering::Relaxed),
        m.globals[new_leader].name
    ));

    let mut final_seq = None;
    for i in (0..3).filter(|i| *i != leader) {
        let (status, list) = m
            .get(i, "/meshes/churn/secrets?consistent=true&size=1000")
            .await?;
        anyhow::ensure!(
            status == 200,
            "list secrets on {}: {status} {list}",
            m.globals[i].name
        );
        let names: Vec<String> = list["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let lost: Vec<&u32> = acked_secrets
            .iter()
            .filter(|n| !names.contains(&format!("seq-{n}")))
            .collect();
        anyhow::ensure!(
            lost.is_empty(),
            "acknowledged Secrets lost on {}: {lost:?}",
            m.globals[i].name
        );
        let (status, mesh) = m.get(i, "/meshes/churn?consistent=true").await?;
        anyhow::ensure!(status == 200, "GET /meshes/churn: {status} {mesh}");
        let seq = seq_label(&mesh).unwrap_or(0);
        // A write that was not acknowledged may still have committed, so the value is the
        // last acknowledged one or a later attempt; never an earlier one.
        anyhow::ensure!(
            seq >= last_acked && seq <= STEPS,
            "{} reads seq={seq} but seq={last_acked} was acknowledged",
            m.globals[i].name
        );
        anyhow::ensure!(
            final_seq.is_none_or(|f| f == seq),
            "replicas disagree on the Mesh: {final_seq:?} vs {seq}"
        );
        final_seq = Some(seq);
        m.say(&format!(
            "{}: all {} acknowledged Secrets present and Mesh churn seq={seq} (?consistent=true; last acknowledged {last_acked}) ✓",
            m.globals[i].name,
            acked_secrets.len()
        ));
    }
    let final_seq = final_seq.unwrap_or(last_acked);
    for (z, before) in before.iter().enumerate() {
        m.wait_zone_resource(
            z,
            "/meshes/churn",
            "the last acknowledged Mesh update",
            |v| seq_label(v) == Some(final_seq),
        )
        .await?;
        let now = m.wait_zone_connected(z).await?;
        m.say(&format!(
            "{} converged to Mesh churn seq={final_seq} (connected to {} before, {now} after) ✓",
            m.zones[z].name,
            before.as_deref().unwrap_or("?")
        ));
    }
    m.start_global(leader)?;
    m.wait_global_ready(leader).await?;
    let (_, mesh) = m.get(leader, "/meshes/churn?consistent=true").await?;
    anyhow::ensure!(
        seq_label(&mesh) == Some(final_seq),
        "the restarted {killed} reads {mesh}"
    );
    m.say(&format!("{killed} restarted and reads seq={final_seq} ✓"));
    m.pass();
    Ok(())
}

/// `key=value` fields of a log line (quotes kept).
fn fields(line: &str) -> std::collections::BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// How long the partition and Vault-cut scenarios hold their fault: `MOSAIC_NETNS_PARTITION_SECS`
/// (default 60, the issue's minute).
fn partition_duration() -> Duration {
    let secs = std::env::var("MOSAIC_NETNS_PARTITION_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_partitioned_from_every_global_keeps_issuing_and_resumes_with_the_diff()
-> anyhow::Result<()> {
    let hold = partition_duration();
    let mut m = Mosaic::start(
        "partition",
        Options {
            expiration: "20s".to_string(),
            ..Options::default()
        },
    )
    .await?;
    m.add_agent(0, "backend-a1").await?;
    m.add_agent(1, "backend-b1").await?;
    let first = m
        .wait_agent_cert("backend-a1", "its first certificate", WAIT, |_| true)
        .await?;
    m.wait_agent_cert("backend-b1", "its first certificate", WAIT, |_| true)
        .await?;
    // Its token comes from the global, so it is created before the partition.
    m.prepare_agent(0, "backend-a2").await?;
    let globals: Vec<std::net::Ipv4Addr> = m.globals.iter().map(|g| g.ip).collect();
    let log_offsets: Vec<usize> = (0..3).map(|i| m.global_log(i).len()).collect();
    let zone_offset = m.zone_log(0).len();

    let a1_serials = m.watch_serials("backend-a1")?;
    let started = std::time::Instant::now();
    m.net.block("zone-a", &globals)?;
    m.say(&format!(
        "zone-a ({}) partitioned from every global ({}) with nftables drop rules in its namespace; OpenBao and its agents stay reachable; holding {}s (MOSAIC_NETNS_PARTITION_SECS)",
        m.zones[0].ip,
        globals.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        hold.as_secs()
    ));
    mosaic_e2e_netns::mosaic::poll("zone-a notices the partition", WAIT, || async {
        m.zone_ready(0)
            .await
            .filter(|r| r["kds"]["connected"] == false)
            .map(|_| ())
    })
    .await?;
    m.say(&format!(
        "zone-a's /ready says KDS disconnected after {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    // A change made while the zone is away: the diff it must get on reconnect.
    m.put_any(
        "/meshes/partition-diff",
        "type: Mesh\nname: partition-diff\n",
    )
    .await?;
    m.wait_zone_resource(
        1,
        "/meshes/partition-diff",
        "the Mesh made during the partition",
        |_| true,
    )
    .await?;

    m.start_agent("backend-a2")?;
    let joined = m
        .wait_agent_cert(
            "backend-a2",
            "a certificate during the partition",
            WAIT,
            |_| true,
        )
        .await?;
    m.check_vault_cert(&joined)?;
    m.say(&format!(
        "a new mosaic-dp (backend-a2, token made before the partition) registered with zone-a during the partition and got serial {} from Vault (chain verifies against the Vault root) ✓",
        joined.serial
    ));

    // Rotation with the cached Mesh: backend-a1's serial changes while the partition lasts.
    let mut never_reconnected = true;
    while started.elapsed() < hold || a1_serials.since(started).is_empty() {
        anyhow::ensure!(
            started.elapsed() < hold + WAIT,
            "backend-a1 never rotated during the partition (serial {})",
            first.serial
        );
        if m.zone_connected(0).await.is_some() {
            never_reconnected = false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rotated = a1_serials.since(started);
    let held = started.elapsed();
    anyhow::ensure!(
        never_reconnected,
        "zone-a reached a global through the partition"
    );
    let (status, _) = m.zone_get(0, "/meshes/partition-diff").await?;
    anyhow::ensure!(
        status == 404,
        "zone-a has the Mesh made during the partition ({status})"
    );
    let now = m
        .agent_cert("backend-a1")
        .context("backend-a1's files are gone")?;
    m.check_vault_cert(&now)?;
    m.say(&format!(
        "zone-a rotated backend-a1 {} time(s) during the {:.0}s partition with its cached Mesh (20s certificates: serial {} → {}; the current one verifies against the Vault root); it got nothing from the globals meanwhile ✓",
        rotated.len(),
        held.as_secs_f64(),
        first.serial,
        rotated.join(" → ")
    ));

    m.net.unblock("zone-a", &globals)?;
    let healed = std::time::Instant::now();
    let g = m.wait_zone_connected(0).await?;
    m.wait_zone_resource(
        0,
        "/meshes/partition-diff",
        "the Mesh made during the partition",
        |_| true,
    )
    .await?;
    m.say(&format!(
        "partition lifted: zone-a reconnected to {g} and has Mesh partition-diff {:.1}s later ✓",
        healed.elapsed().as_secs_f64()
    ));

    // The resume: the global's authoritative sync for zone-a after the reconnect lists what
    // the zone said it knows and what was sent.
    let syncs = mosaic_e2e_netns::mosaic::poll("the global logs zone-a's resume", WAIT, || {
        let lines: Vec<String> = (0..3)
            .flat_map(|i| {
                m.global_log(i)[log_offsets[i].min(m.global_log(i).len())..]
                    .lines()
                    .filter(|l| l.contains("authoritative sync") && l.contains("zone=zone-a"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        let has_mesh = lines.iter().any(|l| l.contains("type=Mesh"));
        async move { has_mesh.then_some(lines) }
    })
    .await?;
    // Lines start with their RFC 3339 timestamp: the earliest line of each type is the first
    // resume. (Should the first session fail half-way, a later one may resend the Mesh again,
    // but never anything unchanged.)
    let mut syncs = syncs;
    syncs.sort();
    let mut first: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for l in &syncs {
        let f = fields(l);
        let t = f.get("type").cloned().unwrap_or_default();
        let known: usize = f.get("known").and_then(|v| v.parse().ok()).unwrap_or(0);
        let sent: usize = f
            .get("sent")
            .and_then(|v| v.parse().ok())
            .unwrap_or(usize::MAX);
        let allowed = usize::from(t == "Mesh");
        anyhow::ensure!(
            sent <= allowed,
            "the resume re-sent unchanged {t} (only one Mesh changed): {l}"
        );
        first.entry(t).or_insert((known, sent));
    }
    let (mesh_known, mesh_sent) = first.get("Mesh").copied().unwrap_or_default();
    anyhow::ensure!(
        mesh_known >= 1 && mesh_sent == 1,
        "the first resume did not send exactly the Mesh made during the partition: Mesh known={mesh_known} sent={mesh_sent}"
    );
    let sent_total: usize = first.values().map(|(_, s)| s).sum();
    let summary: Vec<String> = first
        .iter()
        .map(|(t, (k, s))| format!("{t} known={k} sent={s}"))
        .collect();
    let zone_side: Vec<String> = m.zone_log(0)[zone_offset..]
        .lines()
        .filter(|l| {
            l.contains("applied a response from the global") && l.contains("authoritative=true")
        })
        .map(|l| {
            let f = fields(l);
            format!(
                "{} received={}",
                f.get("type").map(String::as_str).unwrap_or("?"),
                f.get("received").map(String::as_str).unwrap_or("?")
            )
        })
        .collect();
    m.say(&format!(
        "resume sent only the diff: global log `authoritative sync` for zone-a: {} (total sent={sent_total}); zone-a applied: {} ✓",
        summary.join(", "),
        zone_side.join(", ")
    ));
    mosaic_e2e_netns::mosaic::poll("the global lists backend-a2 from zone-a", WAIT, || async {
        let list = m.get_any("/meshes/default/dataplanes").await.ok()?;
        list["items"]
            .as_array()?
            .iter()
            .any(|d| d["name"] == "backend-a2")
            .then_some(())
    })
    .await?;
    m.say("the Dataplane registered during the partition reached the global after it ✓");
    m.pass();
    Ok(())
}

fn files(m: &Mosaic, agent: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let dir = &m.agents[agent].out_dir;
    ["cert.pem", "key.pem", "ca.pem"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).with_context(|| format!("{agent}: {f}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_cut_from_vault_keeps_serving_reports_unhealthy_and_recovers_without_a_stampede()
-> anyhow::Result<()> {
    const PENDING: [&str; 3] = ["backend-a3", "backend-a4", "backend-a5"];
    let mut m = Mosaic::start("vault-cut", Options::default()).await?;
    for (z, name) in [(0, "backend-a1"), (0, "backend-a2"), (1, "backend-b1")] {
        m.add_agent(z, name).await?;
    }
    for name in ["backend-a1", "backend-a2", "backend-b1"] {
        m.wait_agent_cert(name, "its certificate", WAIT, |_| true)
            .await?;
    }
    for name in PENDING {
        m.prepare_agent(0, name).await?;
    }
    m.prepare_agent(1, "backend-b2").await?;
    m.wait_ca_health(0, true).await?;
    m.wait_ca_health(1, true).await?;
    let a1_files = files(&m, "backend-a1")?;
    let a1_streams = m.agent_connections("backend-a1");
    let a2 = m
        .agent_cert("backend-a2")
        .context("backend-a2's certificate")?;
    let zone_a = m.zones[0].ip;
    let before_cut = m.issue_requests_from(zone_a);

    // A request the zone sent on a kept-alive connection just as the cut began is retransmitted
    // by the kernel for up to ~100 s after the zone gave up on it (an orphaned socket), and may
    // reach OpenBao after the link returns: that is not recovery traffic. Orphans in zone-a's
    // namespace are given up quickly, long before the link returns, so the count below only
    // sees requests the zone makes once it can reach Vault again.
    m.net.sysctl("zone-a", "net.ipv4.tcp_orphan_retries", "1")?;
    let cut = std::time::Instant::now();
    m.net.block("zone-a", &[m.vault_ip])?;
    m.say(&format!(
        "zone-a ({zone_a}) cut from OpenBao ({}) only: nftables drop rules in zone-a's namespace; globals and agents stay reachable",
        m.vault_ip
    ));
    for name in PENDING {
        m.start_agent(name)?;
    }
    m.start_agent("backend-b2")?;
    let b2 = m
        .wait_agent_cert("backend-b2", "a certificate from zone-b", WAIT, |_| true)
        .await?;
    m.check_vault_cert(&b2)?;
    m.say("zone-b still issues from the same Vault (backend-b2 got a certificate) ✓");
    let error = m.wait_ca_health(0, false).await?;
    let (b_healthy, _) = m.ca_health(1).await.context("zone-b's CA health")?;
    anyhow::ensure!(b_healthy, "zone-b's CA is reported unhealthy");
    m.say(&format!(
        "GET /zones/_overview: zone-a CA default/vault-1 unhealthy after {:.1}s (lastError: {error}), zone-b healthy ✓",
        cut.elapsed().as_secs_f64()
    ));

    // A still-valid certificate keeps being served: an agent that restarts with empty files
    // gets its cached certificate again, without Vault.
    m.net.kill("dp-backend-a2")?;
    std::fs::remove_dir_all(&m.agents["backend-a2"].out_dir)?;
    m.start_agent("backend-a2")?;
    let again = m
        .wait_agent_cert("backend-a2", "its cached certificate", WAIT, |_| true)
        .await?;
    anyhow::ensure!(
        again.serial == a2.serial,
        "backend-a2 got serial {} instead of its still-valid {}",
        again.serial,
        a2.serial
    );
    m.check_vault_cert(&again)?;
    m.say(&format!(
        "backend-a2 restarted with empty files (kill -9) during the cut and was served its still-valid certificate (serial {}) from zone-a's cache ✓",
        again.serial
    ));

    // Hold the cut long enough for the zone's retries to back off.
    while cut.elapsed() < partition_duration().min(Duration::from_secs(30)) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for name in PENDING {
        anyhow::ensure!(
            m.agent_cert(name).is_none(),
            "{name} got a certificate while zone-a could not reach Vault"
        );
    }
    anyhow::ensure!(
        files(&m, "backend-a1")? == a1_files,
        "backend-a1's files changed during the cut"
    );
    anyhow::ensure!(
        m.agent_connections("backend-a1") == a1_streams && m.net.is_running("dp-backend-a1"),
        "backend-a1's SDS stream did not stay up"
    );
    let during = m.issue_requests_from(zone_a) - before_cut;
    let issue_errors = m
        .zone_metric_sum(0, "mosaic_cert_issue_errors_total")
        .await? as u64;
    m.say(&format!(
        "after {:.0}s of cut: backend-a1's files unchanged and its SDS stream still the first one; {} pending agents wait without files; zone-a counted {issue_errors} failed issue attempts, {during} reached OpenBao ✓",
        cut.elapsed().as_secs_f64(),
        PENDING.len()
    ));

    let at_restore = m.issue_requests_from(zone_a);
    m.net.unblock("zone-a", &[m.vault_ip])?;
    let restored = std::time::Instant::now();
    for name in PENDING {
        let c = m
            .wait_agent_cert(name, "its certificate after the cut", WAIT, |_| true)
            .await?;
        m.check_vault_cert(&c)?;
    }
    m.wait_ca_health(0, true).await?;
    let recovered = restored.elapsed();
    // Let any retry storm show itself before counting.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let recovery = m.issue_requests_from(zone_a) - at_restore;
    anyhow::ensure!(
        recovery <= PENDING.len(),
        "{recovery} issue requests from zone-a reached OpenBao during recovery for {} dataplanes that needed a certificate",
        PENDING.len()
    );
    m.say(&format!(
        "link back: the {} pending agents got certificates and zone-a's CA is healthy again after {:.1}s; OpenBao's audit log shows {recovery} issue request(s) from zone-a for the {} dataplanes that needed one (no stampede) ✓",
        PENDING.len(),
        recovered.as_secs_f64(),
        PENDING.len()
    ));
    anyhow::ensure!(
        m.exited_agents().is_empty(),
        "agents exited: {:?}",
        m.exited_agents()
    );
    m.pass();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_the_globals_under_load_fails_no_issuance() -> anyhow::Result<()> {
    let mut m = Mosaic::start(
        "rolling-restart",
        Options {
            expiration: "30s".to_string(),
            ..Options::default()
        },
    )
    .await?;
    let initial = ["backend-a1", "backend-a2", "backend-b1", "backend-b2"];
    for name in initial {
        let z = usize::from(name.starts_with("backend-b"));
        m.add_agent(z, name).await?;
    }
    let mut firsts = Vec::new();
    for name in initial {
        firsts.push(
            m.wait_agent_cert(name, "its first certificate", WAIT, |_| true)
                .await?
                .serial,
        );
    }
    let watches = initial
        .iter()
        .map(|n| m.watch_serials(n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Tokens of the agents that register during the restart come from the global beforehand.
    let mut joining = Vec::new();
    for k in 0..6 {
        let z = k % 2;
        let name = format!("backend-{}{}", ["a", "b"][z], k / 2 + 3);
        m.prepare_agent(z, &name).await?;
        joining.push(name);
    }
    let mut joining = joining.into_iter();
    let started = std::time::Instant::now();
    for i in 0..3 {
        let name = m.globals[i].name.clone();
        let mut joined = Vec::new();
        joined.extend(joining.next());
        if let Some(a) = joined.last() {
            m.start_agent(a)?;
        }
        let down = std::time::Instant::now();
        let status = m.stop_global(i)?;
        anyhow::ensure!(status.success(), "{name} exited with {status} on SIGTERM");
        joined.extend(joining.next());
        if let Some(a) = joined.last() {
            m.start_agent(a)?;
        }
        // While the replica is down: the newcomers get certificates, an agent rotates, and both
        // zones are connected to a replica that runs.
        for a in &joined {
            m.wait_agent_cert(a, "a certificate while a global is down", WAIT, |_| true)
                .await?;
        }
        mosaic_e2e_netns::mosaic::poll("a rotation while a global is down", WAIT, || {
            let rotated = watches.iter().any(|w| !w.since(down).is_empty());
            async move { rotated.then_some(()) }
        })
        .await?;
        let mut attached = Vec::new();
        for z in 0..2 {
            let dead = format!("{}:", m.globals[i].ip);
            let g = mosaic_e2e_netns::mosaic::poll(
                &format!("{} connected to a running global", m.zones[z].name),
                WAIT,
                || async { m.zone_connected(z).await.filter(|g| !g.contains(&dead)) },
            )
            .await?;
            attached.push(format!("{} → {g}", m.zones[z].name));
        }
        let rotated: usize = watches.iter().map(|w| w.since(down).len()).sum();
        let t = std::time::Instant::now();
        m.start_global(i)?;
        m.wait_global_ready(i).await?;
        let leader = m.wait_leader().await?;
        m.say(&format!(
            "{name}: SIGTERM (exit 0); while it was down {:.0}s: {} registered and got certificates, {rotated} rotation(s), {}; restarted and ready after {:.1}s (leader {}) ✓",
            down.elapsed().as_secs_f64(),
            joined.join(", "),
            attached.join(", "),
            t.elapsed().as_secs_f64(),
            m.globals[leader].name
        ));
    }
    let restart_took = started.elapsed();
    let all: Vec<String> = m.agents.keys().cloned().collect();
    for name in &all {
        let c = m
            .wait_agent_cert(name, "its certificate", WAIT, |_| true)
            .await?;
        m.check_vault_cert(&c)?;
    }
    let mut rotations = Vec::new();
    for (k, name) in initial.iter().enumerate() {
        // Rotation kept going: a later serial than the first one (during or after the restart).
        mosaic_e2e_netns::mosaic::poll(&format!("{name} rotates"), WAIT, || {
            let rotated = watches[k].serials().iter().any(|(_, s)| *s != firsts[k]);
            async move { rotated.then_some(()) }
        })
        .await?;
        let during = watches[k]
            .serials()
            .iter()
            .filter(|(t, s)| *t >= started && *t <= started + restart_took && *s != firsts[k])
            .count();
        rotations.push(format!("{name} {during}"));
    }
    let exited = m.exited_agents();
    anyhow::ensure!(exited.is_empty(), "agents exited: {exited:?}");
    let mut counts = Vec::new();
    for z in 0..2 {
        let issued = m.zone_metric_sum(z, "mosaic_certs_issued_total").await? as u64;
        let errors = m
            .zone_metric_sum(z, "mosaic_cert_issue_errors_total")
            .await? as u64;
        anyhow::ensure!(
            issued > 0,
            "{} reports no issued certificate",
            m.zones[z].name
        );
        anyhow::ensure!(
            errors == 0,
            "{} counted {errors} failed issuances",
            m.zones[z].name
        );
        counts.push(format!(
            "{} issued {issued}, failed {errors}",
            m.zones[z].name
        ));
    }
    m.say(&format!(
        "rolling restart took {:.1}s; all {} agents ({} registered during it) have verifying certificates and none exited; rotations during the restart: {}; mosaic_certs_issued_total / mosaic_cert_issue_errors_total: {} ✓",
        restart_took.as_secs_f64(),
        all.len(),
        all.len() - initial.len(),
        rotations.join(", "),
        counts.join(", ")
    ));
    m.pass();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_loss_between_zones_and_globals_still_converge_and_issue() -> anyhow::Result<()>
{
    const DELAY: Duration = Duration::from_millis(200);
    const LOSS: u8 = 5;
    let netem = mosaic_e2e_netns::net::netem_probe();
    let kds = match netem {
        Ok(()) => mosaic_e2e_netns::KdsPath::Direct,
        Err(_) => mosaic_e2e_netns::KdsPath::Relay,
    };
    let mut m = Mosaic::start(
        "latency-loss",
        Options {
            kds,
            ..Options::default()
        },
    )
    .await?;
    let globals: Vec<std::net::Ipv4Addr> = m.globals.iter().map(|g| g.ip).collect();
    let zones: Vec<std::net::Ipv4Addr> = m.zones.iter().map(|z| z.ip).collect();
    let lossy_peers = match m.relay_ip() {
        None => {
            for z in 0..2 {
                let name = m.zones[z].name.clone();
                m.net.try_netem_delay(&name, &globals, DELAY)?;
            }
            for i in 0..3 {
                let name = m.globals[i].name.clone();
                m.net.try_netem_delay(&name, &zones, DELAY)?;
            }
            m.say(&format!(
                "delay: tc netem adds {} ms to every packet zones send to globals and globals send to zones",
                DELAY.as_millis()
            ));
            globals.clone()
        }
        Some(relay) => {
            m.set_relay_delay(DELAY)?;
            let applied =
                mosaic_e2e_netns::mosaic::poll("the relay applies the delay", WAIT, || {
                    let ok = m.relay_applies(DELAY);
                    async move { ok.then_some(()) }
                })
                .await;
            applied?;
            m.say(&format!(
                "delay: tc netem is missing on this kernel ({}), so the zones dial mosaic-netns-relay at {relay} (a namespace between zones and globals), which adds {} ms one-way in each direction to every chunk (round trip +{} ms); netem was NOT used",
                netem.as_ref().err().map(String::as_str).unwrap_or("?"),
                DELAY.as_millis(),
                2 * DELAY.as_millis()
            ));
            vec![relay]
        }
    };
    for z in 0..2 {
        let name = m.zones[z].name.clone();
        m.net.set_loss(&name, &lossy_peers, LOSS)?;
    }
    m.say(&format!(
        "loss: nftables `numgen random mod 100 < {LOSS} drop` in zone-a's and zone-b's namespaces on packets to and from {}",
        lossy_peers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));

    for z in 0..2 {
        let g = m.wait_zone_connected(z).await?;
        m.say(&format!(
            "{} is connected to the global at {g}",
            m.zones[z].name
        ));
    }
    let t = std::time::Instant::now();
    let changed = m.mesh_yaml("24h").replace(
        "name: default\n",
        "name: default\nlabels:\n  mosaic.test/change: under-latency\n",
    );
    m.put_any("/meshes/default", &changed).await?;
    for z in 0..2 {
        m.wait_zone_mesh(z, "the Mesh change", |v| {
            v["labels"]["mosaic.test/change"] == "under-latency"
        })
        .await?;
        m.say(&format!(
            "{} has the Mesh change {:.1}s after the PUT ✓",
            m.zones[z].name,
            t.elapsed().as_secs_f64()
        ));
    }
    // A zone that restarts now must reconnect (TLS, resume) through the impaired path.
    m.kill_zone(1)?;
    let restarted = std::time::Instant::now();
    m.restart_zone(1)?;
    let g = m.wait_zone_connected(1).await?;
    m.wait_zone_mesh(1, "the changed Mesh after its restart", |v| {
        v["labels"]["mosaic.test/change"] == "under-latency"
    })
    .await?;
    m.say(&format!(
        "zone-b killed (-9) and restarted: reconnected to {g} through the delay and loss and serves the changed Mesh {:.1}s later ✓",
        restarted.elapsed().as_secs_f64()
    ));
    let t = std::time::Instant::now();
    for z in 0..2 {
        let name = format!("backend-{}-late", m.zones[z].name);
        m.add_agent(z, &name).await?;
    }
    for z in 0..2 {
        let name = format!("backend-{}-late", m.zones[z].name);
        let c = m
            .wait_agent_cert(&name, "a certificate under latency and loss", WAIT, |_| {
                true
            })
            .await?;
        m.check_vault_cert(&c)?;
        mosaic_e2e_netns::mosaic::poll(&format!("the global lists {name}"), WAIT, || async {
            let list = m.get_any("/meshes/default/dataplanes").await.ok()?;
            list["items"]
                .as_array()?
                .iter()
                .any(|d| d["name"] == name.as_str())
                .then_some(())
        })
        .await?;
        m.say(&format!(
            "{name} (new) got serial {} from {} and its Dataplane reached the global over the impaired link, {:.1}s after it started ✓",
            c.serial,
            m.zones[z].name,
            t.elapsed().as_secs_f64()
        ));
    }
    m.pass();
    Ok(())
}
