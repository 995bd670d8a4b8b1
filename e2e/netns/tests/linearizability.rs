//! Linearizability under faults (issue #16): five clients create, compare-and-set, read
//! (`?consistent=true` and default) and delete three Secrets through all three globals for 15 s
//! while one fault is applied; the history must be linearizable and the default reads monotonic
//! per replica. Each scenario prints `lincheck: <ops> operations, <n> indeterminate: <verdict>`.

use std::time::Duration;

use mosaic_e2e_netns::{
    lincheck::{Globals, RaftPath},
    mosaic::WAIT,
};

/// How long the workload runs: 15 s, or `MOSAIC_LINCHECK_SECONDS` for a soak run (the faults
/// keep their times; the workload goes on longer after them).
fn workload_time() -> Duration {
    std::env::var("MOSAIC_LINCHECK_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(15), |s| Duration::from_secs(s.max(15)))
}
/// When the fault starts (into the workload).
const FAULT_AT: Duration = Duration::from_secs(4);

async fn started(scenario: &str, snapshots: Option<u64>) -> anyhow::Result<Globals> {
    started_with(scenario, snapshots, RaftPath::Direct).await
}

async fn started_with(
    scenario: &str,
    snapshots: Option<u64>,
    path: RaftPath,
) -> anyhow::Result<Globals> {
    let g = Globals::start_with(scenario, snapshots, path).await?;
    g.workload(workload_time())
        .ensure_mesh(WAIT)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(g)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lincheck_leader_kill_9() -> anyhow::Result<()> {
    let mut g = started("lin-kill", None).await?;
    let leader = g.cluster.wait_leader(WAIT).await?;
    let w = g.workload(workload_time());
    let run = tokio::spawn(w.clone().run());
    tokio::time::sleep(FAULT_AT).await;
    g.cluster.kill(leader);
    g.say(&format!("kill -9 of the leader {}", g.names[leader]));
    tokio::time::sleep(Duration::from_secs(5)).await;
    g.cluster.start(leader)?;
    let restarted = w.now();
    g.say(&format!("{} restarted", g.names[leader]));
    let history = run.await?;
    g.judge(&history, &[(leader, restarted)])?;
    g.pass();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lincheck_leader_sigstop_past_the_election_timeout() -> anyhow::Result<()> {
    let mut g = started("lin-sigstop", None).await?;
    let leader = g.cluster.wait_leader(WAIT).await?;
    let w = g.workload(workload_time());
    let run = tokio::spawn(w.clone().run());
    tokio::time::sleep(FAULT_AT).await;
    g.signal(leader, "STOP")?;
    g.say(&format!(
        "SIGSTOP of the leader {} for 6s (election timeout 1.5-3s)",
        g.names[leader]
    ));
    tokio::time::sleep(Duration::from_secs(6)).await;
    g.signal(leader, "CONT")?;
    g.say(&format!("SIGCONT of {}", g.names[leader]));
    let history = run.await?;
    g.judge(&history, &[])?;
    g.pass();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lincheck_minority_leader_partitioned_from_its_followers() -> anyhow::Result<()> {
    let mut g = started("lin-partition", None).await?;
    let leader = g.cluster.wait_leader(WAIT).await?;
    let w = g.workload(workload_time());
    let run = tokio::spawn(w.clone().run());
    tokio::time::sleep(FAULT_AT).await;
    let others = g.others(leader);
    let name = g.names[leader].clone();
    g.net.block(&name, &others)?;
    g.say(&format!(
        "the leader {name} partitioned from its followers for 7s (clients still reach it)"
    ));
    tokio::time::sleep(Duration::from_secs(7)).await;
    g.net.unblock(&name, &others)?;
    g.say("partition lifted");
    let history = run.await?;
    g.judge(&history, &[])?;
    g.pass();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lincheck_delay_200ms_with_loss() -> anyhow::Result<()> {
    const DELAY: Duration = Duration::from_millis(200);
    const LOSS: u8 = 5;
    // Without tc netem the replicas reach each other through a relay that adds the delay.
    let netem = mosaic_e2e_netns::net::netem_probe();
    let path = match netem {
        Ok(()) => RaftPath::Direct,
        Err(_) => RaftPath::Relay,
    };
    let mut g = started_with("lin-latency", None, path).await?;
    let w = g.workload(workload_time());
    let run = tokio::spawn(w.clone().run());
    tokio::time::sleep(FAULT_AT).await;
    // Loss on every link raft uses: between the replicas, or between each replica and the relay.
    let lossy = |g: &Globals, i: usize| match &g.relay {
        Some(relay) => vec![relay.ip],
        None => g.others(i),
    };
    match &netem {
        Ok(()) => {
            for i in 0..3 {
                let (name, others) = (g.names[i].clone(), g.others(i));
                g.net.try_netem_delay(&name, &others, DELAY)?;
            }
        }
        Err(_) => g.set_relay_delay(DELAY).await?,
    }
    for i in 0..3 {
        let (name, peers) = (g.names[i].clone(), lossy(&g, i));
        g.net.set_loss(&name, &peers, LOSS)?;
    }
    match &netem {
        Ok(()) => g.say(&format!(
            "tc netem adds {} ms to every packet between globals, nftables drops {LOSS}% each way, for 8s",
            DELAY.as_millis()
        )),
        Err(e) => g.say(&format!(
            "tc netem is missing on this kernel ({e}): raft goes through mosaic-netns-relay, which adds {} ms one-way to every chunk between globals (round trip +{} ms); nftables drops {LOSS}% of the packets between each global and the relay each way, for 8s",
            DELAY.as_millis(),
            2 * DELAY.as_millis()
        )),
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    for i in 0..3 {
        let (name, peers) = (g.names[i].clone(), lossy(&g, i));
        g.net.clear_netem(&name)?;
        g.net.set_loss(&name, &peers, 0)?;
    }
    if g.relay.is_some() {
        g.set_relay_delay(Duration::ZERO).await?;
    }
    g.say("delay and loss removed");
    let history = run.await?;
    g.judge(&history, &[])?;
    g.pass();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lincheck_follower_restart_during_snapshot_install() -> anyhow::Result<()> {
    // Snapshots every 20 entries: a follower down for a few seconds comes back behind the
    // leader's purged log and is sent a snapshot; it is killed again while it catches up.
    let mut g = started("lin-snapshot", Some(20)).await?;
    let leader = g.cluster.wait_leader(WAIT).await?;
    let follower = (leader + 1) % 3;
    let w = g.workload(workload_time());
    let run = tokio::spawn(w.clone().run());
    tokio::time::sleep(Duration::from_secs(2)).await;
    g.cluster.kill(follower);
    g.say(&format!("kill -9 of the follower {}", g.names[follower]));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut restarts = Vec::new();
    for _ in 0..2 {
        g.cluster.start(follower)?;
        restarts.push((follower, w.now()));
        tokio::time::sleep(Duration::from_millis(400)).await;
        g.cluster.kill(follower);
        g.say(&format!(
            "{} restarted and killed again 400 ms later, while the leader sends it a snapshot",
            g.names[follower]
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    g.cluster.start(follower)?;
    restarts.push((follower, w.now()));
    let history = run.await?;
    g.cluster.wait_ready(follower, WAIT).await?;
    let log = g.cluster.log(follower);
    g.say(&format!(
        "{} back and ready; its log mentions a snapshot install: {}",
        g.names[follower],
        log.contains("snapshot")
    ));
    g.judge(&history, &restarts)?;
    g.pass();
    Ok(())
}
