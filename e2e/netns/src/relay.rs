//! A userspace TCP relay that adds a fixed delay, for kernels without `tc netem`.
//!
//! Each route listens on one address and forwards every accepted connection to one upstream.
//! Every chunk read from either side is written to the other side `delay` after it was read
//! (one-way delay per direction; order is kept and chunks in flight overlap, so throughput is not
//! limited by the delay). The upstream connection is opened `delay` after the accept, like a
//! delayed SYN. The delay in milliseconds is read from a file (re-read every 100 ms), so a test
//! can change it while connections stay open. The `--echo` mode is a plain echo server for the
//! harness's own checks.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    time::Instant,
};

/// What the relay does.
#[derive(Clone, Debug, Default)]
pub struct RelayConfig {
    /// `(listen, upstream)` pairs.
    pub routes: Vec<(SocketAddr, SocketAddr)>,
    /// A file holding the one-way delay in milliseconds (missing or empty = 0).
    pub delay_file: Option<PathBuf>,
    /// Addresses to run an echo server on.
    pub echo: Vec<SocketAddr>,
}

/// The usage line of `mosaic-netns-relay`.
pub const USAGE: &str =
    "usage: mosaic-netns-relay [--route LISTEN=UPSTREAM]... [--delay-file FILE] [--echo LISTEN]...";

impl RelayConfig {
    /// Parses the command line (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Self> {
        let mut cfg = Self::default();
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            let mut value = |flag: &str| {
                args.next()
                    .with_context(|| format!("{flag} needs a value; {USAGE}"))
            };
            match a.as_str() {
                "--route" => {
                    let v = value("--route")?;
                    let (l, u) = v
                        .split_once('=')
                        .with_context(|| format!("--route {v}: expected LISTEN=UPSTREAM"))?;
                    cfg.routes.push((
                        l.parse()
                            .with_context(|| format!("--route listen address {l}"))?,
                        u.parse()
                            .with_context(|| format!("--route upstream address {u}"))?,
                    ));
                }
                "--delay-file" => cfg.delay_file = Some(value("--delay-file")?.into()),
                "--echo" => {
                    let v = value("--echo")?;
                    cfg.echo
                        .push(v.parse().with_context(|| format!("--echo {v}"))?);
                }
                other => bail!("unknown argument {other:?}; {USAGE}"),
            }
        }
        if cfg.routes.is_empty() && cfg.echo.is_empty() {
            bail!("nothing to do; {USAGE}");
        }
        Ok(cfg)
    }
}

/// Reads the delay file: milliseconds, 0 when missing or unreadable.
fn read_delay(file: &Option<PathBuf>) -> u64 {
    file.as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs the relay until the process is killed.
pub async fn run(cfg: RelayConfig) -> anyhow::Result<()> {
    let delay = Arc::new(AtomicU64::new(read_delay(&cfg.delay_file)));
    {
        let delay = delay.clone();
        let file = cfg.delay_file.clone();
        tokio::spawn(async move {
            loop {
                let ms = read_delay(&file);
                if delay.swap(ms, Ordering::Relaxed) != ms {
                    eprintln!("relay: one-way delay is now {ms} ms");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let mut tasks = Vec::new();
    for addr in cfg.echo {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        eprintln!("relay: echo server on {addr}");
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        }));
    }
    for (listen, upstream) in cfg.routes {
        let l = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        eprintln!(
            "relay: {listen} -> {upstream}, one-way delay {} ms",
            delay.load(Ordering::Relaxed)
        );
        let delay = delay.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((client, from)) = l.accept().await else {
                    continue;
                };
                let delay = delay.clone();
                tokio::spawn(async move {
                    match relay(client, upstream, delay).await {
                        Ok(()) => eprintln!("relay: {from} -> {upstream} closed"),
                        Err(e) => eprintln!("relay: {from} -> {upstream} ended: {e:#}"),
                    }
                });
            }
        }));
    }
    // The listeners run until the process is killed.
    let _tasks = tasks;
    std::future::pending::<anyhow::Result<()>>().await
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    delay: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(delay.load(Ordering::Relaxed))).await;
    let server = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(upstream))
        .await
        .context("connect timed out")?
        .context("connect")?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::try_join!(pipe(cr, sw, delay.clone()), pipe(sr, cw, delay))?;
    Ok(())
}

/// Copies `r` to `w`, each chunk written `delay` after it was read; shuts `w` down at EOF.
async fn pipe(
    mut r: impl AsyncRead + Unpin,
    mut w: impl AsyncWrite + Unpin,
    delay: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(());
            }
            let due = Instant::now() + Duration::from_millis(delay.load(Ordering::Relaxed));
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            w.write_all(&chunk).await?;
        }
        w.shutdown().await?;
        anyhow::Ok(())
    };
    tokio::try_join!(reader, writer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routes_and_refuses_nonsense() {
        let cfg = RelayConfig::parse(
            [
                "--route",
                "10.0.0.1:5685=10.0.0.2:5685",
                "--delay-file",
                "/tmp/d",
            ]
            .map(String::from),
        )
        .unwrap();
        assert_eq!(cfg.routes.len(), 1);
        assert_eq!(
            cfg.delay_file.as_deref(),
            Some(std::path::Path::new("/tmp/d"))
        );
        assert!(RelayConfig::parse(Vec::<String>::new()).is_err());
        assert!(RelayConfig::parse(["--route".to_string(), "nope".to_string()]).is_err());
    }

    #[tokio::test]
    async fn a_relayed_echo_comes_back_intact_and_no_earlier_than_twice_the_delay() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_addr = front.local_addr().unwrap();
        let delay = Arc::new(AtomicU64::new(50));
        tokio::spawn(async move {
            let (c, _) = front.accept().await.unwrap();
            let _ = relay(c, echo_addr, delay).await;
        });
        let mut s = TcpStream::connect(front_addr).await.unwrap();
        let started = Instant::now();
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = s.split();
        let send = async {
            w.write_all(&payload).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let recv = async {
            r.read_to_end(&mut back).await.unwrap();
        };
        tokio::join!(send, recv);
        assert_eq!(back, payload);
        // By construction (each direction sleeps 50 ms before writing): a lower bound only.
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
