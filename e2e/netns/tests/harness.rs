//! The harness checks its own faults before the scenarios rely on them: namespaces on one
//! bridge, a link cut, an address block, the loss rule, the delaying relay, kill -9 and restart,
//! and that dropping the run removes every namespace and link (also of killed runs).

use std::{
    ffi::OsString,
    net::SocketAddr,
    time::{Duration, Instant},
};

use mosaic_e2e_netns::Net;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

/// One round trip of `payload` through an echo server at `to`; `Err` if it cannot connect within
/// `patience` or the answer differs.
async fn echo(to: SocketAddr, payload: &[u8], patience: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut s = tokio::time::timeout(patience, TcpStream::connect(to))
        .await
        .map_err(|_| anyhow::anyhow!("no connection to {to} within {patience:?}"))??;
    s.write_all(payload).await?;
    let mut back = vec![0; payload.len()];
    tokio::time::timeout(patience, s.read_exact(&mut back))
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {to} within {patience:?}"))??;
    anyhow::ensure!(back == payload, "the echo from {to} differs");
    Ok(start.elapsed())
}

fn namespaces() -> String {
    String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list")
            .stdout,
    )
    .into_owned()
}

fn relay_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_mosaic-netns-relay"))
}

#[tokio::test]
async fn harness_faults_work_and_everything_is_removed() -> anyhow::Result<()> {
    let mut net = Net::new("harness")?;
    let id = net.id().to_string();
    let a = net.add_node("echo", 40)?;
    let r = net.add_node("relay", 41)?;
    let port = 7000;
    let echo_addr = SocketAddr::from((a.ip, port));
    net.spawn(
        "echo",
        "echo",
        &relay_bin(),
        &[
            OsString::from("--echo"),
            OsString::from(echo_addr.to_string()),
        ],
        &[],
    )?;
    let delay_file = net.dir().join("delay-ms");
    std::fs::write(&delay_file, "150\n")?;
    let relay_addr = SocketAddr::from((r.ip, port));
    net.spawn(
        "relay",
        "relay",
        &relay_bin(),
        &[
            "--route".into(),
            format!("{relay_addr}={echo_addr}").into(),
            "--delay-file".into(),
            delay_file.clone().into(),
        ],
        &[],
    )?;
    let patience = Duration::from_secs(3);
    let mut up = false;
    for _ in 0..100 {
        if echo(echo_addr, b"ping", patience).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(up, "the echo server in its namespace never answered");
    let direct = echo(echo_addr, b"direct", patience).await?;
    println!(
        "netns[harness]: the test ({}) reaches {} in namespace {} over the bridge ({direct:?}) ✓",
        net.host_ip(),
        a.ip,
        a.ns
    );

    // The relay: the bytes come back intact, no sooner than its delay allows (each direction
    // waits 150 ms before writing: a lower bound by construction, not a timing measurement).
    let relayed = echo(relay_addr, b"through the relay", Duration::from_secs(10)).await?;
    anyhow::ensure!(
        relayed >= Duration::from_millis(300),
        "the relay answered in {relayed:?}, before its delay elapsed"
    );
    println!(
        "netns[harness]: mosaic-netns-relay at {relay_addr} forwards with 150 ms one-way delay (round trip {relayed:?}) ✓"
    );

    // Cut: nothing gets through; restore: it does again.
    net.cut("echo")?;
    anyhow::ensure!(
        echo(echo_addr, b"cut", Duration::from_secs(2))
            .await
            .is_err(),
        "the echo server answered with its link cut"
    );
    net.restore("echo")?;
    let mut back = false;
    for _ in 0..50 {
        if echo(echo_addr, b"restored", patience).await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(back, "no answer after the link was restored");
    println!(
        "netns[harness]: ip link set down cuts {} and up restores it ✓",
        a.ip
    );

    // Block one peer: the test is refused, the relay still gets through.
    net.block("echo", &[net.host_ip()])?;
    anyhow::ensure!(
        echo(echo_addr, b"blocked", Duration::from_secs(2))
            .await
            .is_err(),
        "a blocked peer got through"
    );
    echo(relay_addr, b"others pass", Duration::from_secs(10)).await?;
    net.unblock("echo", &[net.host_ip()])?;
    echo(echo_addr, b"unblocked", patience).await?;
    println!(
        "netns[harness]: nftables drop between {} and {} only, then lifted ✓",
        a.ip,
        net.host_ip()
    );

    // Loss: the rule is installed as written; TCP still gets every byte through.
    net.set_loss("echo", &[net.host_ip()], 5)?;
    let rules = net.ruleset("echo")?;
    anyhow::ensure!(
        rules.contains("numgen random mod 100 < 5 drop"),
        "the loss rule is missing:\n{rules}"
    );
    for i in 0..20 {
        echo(
            echo_addr,
            format!("lossy {i}").as_bytes(),
            Duration::from_secs(30),
        )
        .await?;
    }
    net.set_loss("echo", &[net.host_ip()], 0)?;
    println!(
        "netns[harness]: 5% loss (numgen random mod 100 < 5 drop) installed; TCP still delivers ✓"
    );

    match mosaic_e2e_netns::net::netem_probe() {
        Ok(()) => println!("netns[harness]: tc netem is available on this kernel"),
        Err(why) => println!(
            "netns[harness]: tc netem is NOT available on this kernel ({why}); scenarios add delay with mosaic-netns-relay"
        ),
    }

    // kill -9 and restart.
    let pid = net.pid("echo").unwrap_or_default();
    net.kill("echo")?;
    anyhow::ensure!(!net.is_running("echo"));
    anyhow::ensure!(
        echo(echo_addr, b"dead", Duration::from_secs(2))
            .await
            .is_err(),
        "a killed echo server answered"
    );
    net.start("echo")?;
    let mut again = false;
    for _ in 0..100 {
        if echo(echo_addr, b"again", patience).await.is_ok() {
            again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(again, "the restarted echo server never answered");
    println!(
        "netns[harness]: kill -9 of pid {pid} and restart as pid {} ✓",
        net.pid("echo").unwrap_or_default()
    );

    net.pass();
    drop(net);
    let left = namespaces();
    anyhow::ensure!(
        !left.lines().any(|l| l.starts_with(&format!("{id}-"))),
        "namespaces of {id} are left:\n{left}"
    );
    let links = String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["-o", "link", "show"])
            .output()?
            .stdout,
    )
    .into_owned();
    anyhow::ensure!(
        !links.contains(&format!("{id}h")),
        "the test's leg {id}h is left:\n{links}"
    );
    println!("netns[harness]: every namespace and link of {id} is gone after drop ✓");
    Ok(())
}

#[tokio::test]
async fn leftovers_of_a_killed_run_are_removed_and_a_panicking_run_cleans_up() -> anyhow::Result<()>
{
    // A leftover as a SIGKILLed run leaves it: a namespace named after a pid that is gone.
    let dead_pid = {
        let mut child = std::process::Command::new("true").spawn()?;
        let pid = child.id();
        child.wait()?;
        pid
    };
    let stale = format!("mz{dead_pid}n0-leftover");
    let out = std::process::Command::new("ip")
        .args(["netns", "add", &stale])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "ip netns add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let removed = mosaic_e2e_netns::net::remove_stale();
    anyhow::ensure!(
        !namespaces().lines().any(|l| l.starts_with(&stale)),
        "the stale namespace {stale} is still there"
    );
    println!("netns[cleanup]: removed leftovers {removed:?} ✓");

    // A test that panics with processes running still removes its namespaces.
    let (id, dir) = std::thread::spawn(|| {
        let mut net = Net::new("cleanup").expect("net");
        let id = net.id().to_string();
        let dir = net.dir().to_path_buf();
        net.add_node("a", 2).expect("node");
        net.spawn(
            "sleeper",
            "a",
            std::path::Path::new("sleep"),
            &["600".into()],
            &[],
        )
        .expect("spawn");
        // Marked passed only so that this deliberate failure does not print logs.
        net.pass();
        // The panic is deliberate: keep its message and backtrace out of the output.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _net = net;
            panic!("deliberate panic with a process running");
        }));
        std::panic::set_hook(hook);
        assert!(result.is_err());
        (id, dir)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the cleanup thread failed"))?;
    let left = namespaces();
    anyhow::ensure!(
        !left.lines().any(|l| l.starts_with(&format!("{id}-"))),
        "a panicking run left namespaces:\n{left}"
    );
    anyhow::ensure!(
        !dir.exists(),
        "the run's directory {} is left",
        dir.display()
    );
    println!("netns[cleanup]: a run that panicked removed its namespaces and process ✓");
    Ok(())
}
