//! A real Prometheus server (Debian's `prometheus` package) on a free loopback port, with its
//! own TSDB in a temporary directory, killed and cleaned up on drop; and a client for its query
//! and rules APIs. Also finds `promtool`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::binary::is_executable;

/// The error text when no `prometheus` binary can be found. Tests must fail with it, never skip.
pub const PROMETHEUS_NOT_FOUND: &str = "the `prometheus` binary was not found; run \
./scripts/setup-test-env.sh (installs Debian's `prometheus` package, which ships prometheus and \
promtool) or set MOSAIC_PROMETHEUS_BIN";

/// Finds `prometheus`: `$MOSAIC_PROMETHEUS_BIN`, else `prometheus` on `PATH`, else
/// `/usr/bin/prometheus`. Errors with [`PROMETHEUS_NOT_FOUND`] if none exists.
pub fn prometheus_binary() -> anyhow::Result<PathBuf> {
    find_tool("prometheus", "MOSAIC_PROMETHEUS_BIN")
}

/// Finds `promtool`: `$MOSAIC_PROMTOOL_BIN`, else next to [`prometheus_binary`], else on `PATH`,
/// else `/usr/bin/promtool`.
pub fn promtool_binary() -> anyhow::Result<PathBuf> {
    if std::env::var_os("MOSAIC_PROMTOOL_BIN").is_none()
        && let Ok(prometheus) = prometheus_binary()
        && let Some(sibling) = prometheus.parent().map(|d| d.join("promtool"))
        && is_executable(&sibling)
    {
        return Ok(sibling);
    }
    find_tool("promtool", "MOSAIC_PROMTOOL_BIN")
}

fn find_tool(name: &str, env: &str) -> anyhow::Result<PathBuf> {
    if let Some(from_env) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(from_env);
        if is_executable(&path) {
            return Ok(path);
        }
        bail!(
            "{env}={} is not an executable file. {PROMETHEUS_NOT_FOUND}",
            path.display()
        );
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    let usr = Path::new("/usr/bin").join(name);
    if is_executable(&usr) {
        return Ok(usr);
    }
    bail!("`{name}` not found (looked at ${env}, PATH, /usr/bin). {PROMETHEUS_NOT_FOUND}")
}

/// One sample of an instant-query result.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The series' labels (`__name__` included when the query keeps it).
    pub labels: serde_json::Map<String, Value>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or `""`.
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).and_then(Value::as_str).unwrap_or("")
    }
}

/// A running Prometheus server.
pub struct Prometheus {
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus with `config` (the YAML of `prometheus.yml`) on a free port; returns once
    /// `/-/ready` answers 200 (or fails with its log after [`crate::READY_TIMEOUT`]).
    pub async fn start(config: &str) -> anyhow::Result<Self> {
        let binary = prometheus_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("mosaic-prometheus-")
            .tempdir()?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let port = crate::free_port()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut prometheus = Self {
            port,
            dir,
            child: Some(child),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        };
        prometheus.wait_ready(crate::READY_TIMEOUT).await?;
        Ok(prometheus)
    }

    async fn wait_ready(&mut self, deadline: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "prometheus exited ({status}) before it was ready; log:\n{}",
                    self.log()
                );
            }
            if let Ok(r) = self.http.get(self.url("/-/ready")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if start.elapsed() > deadline {
                bail!(
                    "prometheus not ready after {deadline:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its log (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>` with query parameters; the `data` field of a `success` answer.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> anyhow::Result<Value> {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let resp = self
            .http
            .get(self.url(&format!("/api/v1/{path}?{}", query.join("&"))))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.context("prometheus answered non-JSON")?;
        if !status.is_success() || body["status"] != "success" {
            bail!("prometheus /api/v1/{path} {params:?}: {status} {body}");
        }
        Ok(body["data"].clone())
    }

    /// An instant query (`/api/v1/query`): its vector result.
    pub async fn query(&self, promql: &str) -> anyhow::Result<Vec<Sample>> {
        let data = self.api("query", &[("query", promql)]).await?;
        if data["resultType"] != "vector" {
            bail!("query {promql:?} did not return a vector: {data}");
        }
        let mut out = Vec::new();
        for item in data["result"].as_array().into_iter().flatten() {
            let labels = item["metric"].as_object().cloned().unwrap_or_default();
            let value = item["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .with_context(|| format!("query {promql:?}: bad sample {item}"))?;
            out.push(Sample { labels, value });
        }
        Ok(out)
    }

    /// Polls `promql` until `check` accepts its result; fails after `deadline` showing the last
    /// result (and Prometheus's log tail).
    pub async fn wait_for(
        &self,
        promql: &str,
        what: &str,
        deadline: Duration,
        mut check: impl FnMut(&[Sample]) -> bool,
    ) -> anyhow::Result<Vec<Sample>> {
        let start = Instant::now();
        loop {
            let last = match self.query(promql).await {
                Ok(samples) if check(&samples) => return Ok(samples),
                Ok(samples) => format!("{samples:?}"),
                Err(e) => format!("{e:#}"),
            };
            if start.elapsed() > deadline {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                bail!(
                    "{what}: `{promql}` not satisfied within {deadline:?}; last result: {last}\nprometheus log tail:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Percent-encodes a query-string component (everything but RFC 3986's unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
