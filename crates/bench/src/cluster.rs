//! The processes the benchmarks run against: the workspace's `mosaic-global`/`mosaic-zone`
//! binaries, a single-replica global (ready, with its KDS CA written), zone tokens and
//! pre-registered Zones, a small HTTP client for the Kuma API, and bounded concurrency.

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use mosaic_testkit::{GlobalCluster, workspace_binary};
use serde_json::json;
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{error::BenchError, procs::wait_until, sim_zone::KdsTarget};

/// How long anything a benchmark sets up may take (generous: the machine is shared).
pub const SETUP_DEADLINE: Duration = Duration::from_secs(180);

/// Where the server binaries are.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// `mosaic-global`.
    pub global: PathBuf,
    /// `mosaic-zone`.
    pub zone: PathBuf,
}

impl Binaries {
    /// From `dir` (e.g. `target/release`), or else next to the running executable (the workspace's
    /// `target/<profile>`, as tests find them).
    pub fn locate(dir: Option<&Path>) -> Result<Self, BenchError> {
        let find = |name: &str| -> Result<PathBuf, BenchError> {
            match dir {
                Some(d) => {
                    let p = d.join(name);
                    if p.is_file() {
                        Ok(p)
                    } else {
                        Err(BenchError::Setup(format!(
                            "{} does not exist: build it first (cargo build --release -p mosaic-global -p mosaic-zone)",
                            p.display()
                        )))
                    }
                }
                None => Ok(workspace_binary(name)?),
            }
        };
        Ok(Self {
            global: find("mosaic-global")?,
            zone: find("mosaic-zone")?,
        })
    }
}

/// A minimal client of one Kuma-style HTTP API.
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// A client of the API at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: impl Into<String>) -> Result<Self, BenchError> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(BenchError::request("building an HTTP client"))?,
            base: base.into(),
        })
    }

    /// `PUT` YAML to `path`; fails unless 200 or 201.
    pub async fn put_yaml(&self, path: &str, yaml: &str) -> Result<(), BenchError> {
        let what = format!("PUT {path}");
        let resp = self
            .http
            .put(format!("{}{path}", self.base))
            .header("content-type", "application/yaml")
            .body(yaml.to_string())
            .send()
            .await
            .map_err(BenchError::request(what.clone()))?;
        let status = resp.status().as_u16();
        if status == 200 || status == 201 {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        Err(BenchError::http(what, status, &body))
    }

    /// `POST` JSON to `path`; returns the body text, failing unless 200.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<String, BenchError> {
        let what = format!("POST {path}");
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .map_err(BenchError::request(what.clone()))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status != 200 {
            return Err(BenchError::http(what, status, &text));
        }
        Ok(text)
    }
}

/// Runs `f` on every item, at most `limit` at a time; returns the results in item order.
pub async fn concurrent<T, R, F, Fut>(
    items: Vec<T>,
    limit: usize,
    f: F,
) -> Result<Vec<R>, BenchError>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, BenchError>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let f = Arc::new(f);
    let mut set = JoinSet::new();
    let n = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| BenchError::Setup("semaphore closed".into()))?;
        let f = f.clone();
        set.spawn(async move {
            let r = f(item).await;
            drop(permit);
            (i, r)
        });
    }
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined.map_err(|e| BenchError::Setup(format!("a task failed: {e}")))?;
        out[i] = Some(r?);
    }
    Ok(out.into_iter().flatten().collect())
}

/// A started single-replica global (no peers), ready, with its generated KDS CA on disk.
pub async fn start_single_global(bins: &Binaries) -> Result<GlobalCluster, BenchError> {
    let mut global = GlobalCluster::new(&bins.global, 1, 10_000)?;
    global.start_all()?;
    global.wait_ready(0, SETUP_DEADLINE).await?;
    let ca = global.kds_ca_path(0);
    wait_until(
        "the global's kds-ca.pem",
        SETUP_DEADLINE,
        Duration::from_millis(50),
        || {
            let exists = ca.exists();
            async move { exists.then_some(()) }
        },
    )
    .await?;
    Ok(global)
}

/// Registers Zones `names` (enabled) through the API, `limit` at a time, so zones connecting
/// later do not each trigger a Zone write that every connected zone then receives.
pub async fn create_zones(api: &Api, names: &[String], limit: usize) -> Result<(), BenchError> {
    let api = api.clone();
    concurrent(names.to_vec(), limit, move |name| {
        let api = api.clone();
        async move {
            api.put_yaml(
                &format!("/zones/{name}"),
                &format!("type: Zone\nname: {name}\nenabled: true\n"),
            )
            .await
        }
    })
    .await?;
    Ok(())
}

/// A zone token for each of `names` (`POST /tokens/zone`), in order.
pub async fn zone_tokens(api: &Api, names: &[String]) -> Result<Vec<String>, BenchError> {
    let api = api.clone();
    concurrent(names.to_vec(), 8, move |zone| {
        let api = api.clone();
        async move {
            let t = api
                .post_json("/tokens/zone", &json!({ "zone": zone }))
                .await?;
            Ok(t.trim().to_string())
        }
    })
    .await
}

/// Zones `zone-0` .. `zone-{n-1}` registered on the global, a token for each, and where their
/// KDS clients connect.
pub struct ZoneSet {
    /// The zones' names, in order.
    pub names: Vec<String>,
    /// Each zone's token, in the same order.
    pub tokens: Vec<String>,
    /// The global's KDS address and CA.
    pub target: KdsTarget,
}

/// Registers `n` zones through `api` (replica 0 of `global`) and gets their tokens.
pub async fn register_zones(
    global: &GlobalCluster,
    api: &Api,
    n: usize,
) -> Result<ZoneSet, BenchError> {
    let names: Vec<String> = (0..n).map(|i| format!("zone-{i}")).collect();
    create_zones(api, &names, 32).await?;
    let tokens = zone_tokens(api, &names).await?;
    let target = KdsTarget {
        url: global.kds_url(0),
        ca_pem: std::fs::read(global.kds_ca_path(0))
            .map_err(BenchError::io("reading the global's kds-ca.pem"))?,
    };
    Ok(ZoneSet {
        names,
        tokens,
        target,
    })
}

/// The global's `/metrics` text.
pub async fn metrics_text(global: &GlobalCluster) -> Result<String, BenchError> {
    let url = format!("http://127.0.0.1:{}/metrics", global.replicas[0].diag);
    reqwest::get(&url)
        .await
        .map_err(BenchError::request(format!("GET {url}")))?
        .text()
        .await
        .map_err(BenchError::request(format!("GET {url}")))
}
