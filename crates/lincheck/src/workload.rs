//! The workload: concurrent clients on a few Secrets of one mesh, each operation through a
//! replica chosen at random, recorded as a [`History`]. Clients create with `If-None-Match: *`,
//! compare-and-set and delete with `If-Match` on the version they last saw, read with
//! `?consistent=true`, and (optionally) read without it.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::Engine as _;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

use crate::history::{History, Input, Op, Output};

/// How a workload runs.
#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    /// Concurrent clients.
    pub clients: usize,
    /// Secrets `<prefix>-0` .. `<prefix>-<keys-1>`.
    pub keys: usize,
    /// Key name prefix (distinct per run).
    pub prefix: String,
    /// The mesh the Secrets live in (created if missing).
    pub mesh: String,
    /// How long clients keep issuing operations.
    pub duration: Duration,
    /// Per-request timeout; a write that times out is indeterminate.
    pub timeout: Duration,
    /// Replicas writes go through (indexes; all when empty).
    pub write_replicas: Vec<usize>,
    /// Replicas reads go through (all when empty).
    pub read_replicas: Vec<usize>,
    /// Also issue default reads (for [`crate::check_monotonic`]).
    pub local_reads: bool,
    /// The random seed (each client adds its index).
    pub seed: u64,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        Self {
            clients: 5,
            keys: 3,
            prefix: "lin".into(),
            mesh: "default".into(),
            duration: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            write_replicas: Vec::new(),
            read_replicas: Vec::new(),
            local_reads: true,
            seed: 16,
        }
    }
}

struct Inner {
    http: reqwest::Client,
    apis: Vec<String>,
    opts: WorkloadOptions,
    start: Instant,
}

/// A workload against replicas' API base URLs (cheap to clone).
#[derive(Clone)]
pub struct Workload(Arc<Inner>);

impl Workload {
    /// Clients over `http` (with whatever auth headers the API needs) to `apis` (base URLs, index
    /// = replica). Times are counted from now.
    pub fn new(http: reqwest::Client, apis: Vec<String>, opts: WorkloadOptions) -> Self {
        Self(Arc::new(Inner {
            http,
            apis,
            opts,
            start: Instant::now(),
        }))
    }

    /// Nanoseconds since the workload was made (the history's clock).
    pub fn now(&self) -> u64 {
        u64::try_from(self.0.start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Creates the mesh through any replica (retrying up to `deadline`).
    pub async fn ensure_mesh(&self, deadline: Duration) -> Result<(), String> {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            for api in &self.0.apis {
                let url = format!("{api}/meshes/{}", self.0.opts.mesh);
                let body = json!({"type": "Mesh", "name": self.0.opts.mesh});
                match self
                    .0
                    .http
                    .put(&url)
                    .timeout(self.0.opts.timeout)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => return Ok(()),
                    Ok(r) => last = format!("PUT {url}: {}", r.status()),
                    Err(e) => last = format!("PUT {url}: {e}"),
                }
            }
            if started.elapsed() > deadline {
                return Err(format!(
                    "could not create the mesh within {deadline:?}: {last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs the clients for the configured duration and returns the history.
    pub async fn run(self) -> History {
        let mut tasks = Vec::new();
        for c in 0..self.0.opts.clients {
            let w = self.clone();
            tasks.push(tokio::spawn(async move { w.client(c).await }));
        }
        let mut ops = Vec::new();
        for t in tasks {
            if let Ok(mine) = t.await {
                ops.extend(mine);
            }
        }
        History { ops }
    }

    fn pick(&self, rng: &mut StdRng, from: &[usize]) -> usize {
        if from.is_empty() {
            rng.random_range(0..self.0.apis.len())
        } else {
            from[rng.random_range(0..from.len())]
        }
    }

    async fn client(&self, c: usize) -> Vec<Op> {
        let opts = &self.0.opts;
        let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_add(c as u64));
        // What this client last saw per key: Some(None) absent, Some(Some(v)) at v.
        let mut known: HashMap<String, Option<u64>> = HashMap::new();
        let deadline = self.0.start + opts.duration;
        let mut ops = Vec::new();
        let mut seq = 0;
        while Instant::now() < deadline {
            let key = format!("{}-{}", opts.prefix, rng.random_range(0..opts.keys.max(1)));
            seq += 1;
            let value = format!("c{c}-{seq}");
            let roll: f64 = rng.random();
            let input = match known.get(&key) {
                None => Input::Read,
                Some(None) if roll < 0.7 => Input::Create { value },
                Some(None) => Input::Read,
                Some(Some(v)) => {
                    if roll < 0.35 {
                        Input::Cas {
                            expected: *v,
                            value,
                        }
                    } else if roll < 0.45 {
                        Input::Delete { expected: *v }
                    } else if roll < 0.5 {
                        Input::Create { value }
                    } else if opts.local_reads && roll < 0.65 {
                        Input::LocalRead
                    } else {
                        Input::Read
                    }
                }
            };
            let writes = matches!(
                input,
                Input::Create { .. } | Input::Cas { .. } | Input::Delete { .. }
            );
            let replica = if writes {
                self.pick(&mut rng, &opts.write_replicas)
            } else {
                self.pick(&mut rng, &opts.read_replicas)
            };
            let call = self.now();
            let Some(output) = self.perform(replica, &key, &input).await else {
                // Never sent (connection refused): it did not happen.
                known.remove(&key);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let ret = if output == Output::Unknown {
                u64::MAX
            } else {
                self.now()
            };
            match &output {
                Output::Written { version } | Output::Value { version, .. } => {
                    known.insert(key.clone(), Some(*version));
                }
                Output::Deleted | Output::NotFound => {
                    known.insert(key.clone(), None);
                }
                Output::Conflict | Output::Unknown => {
                    known.remove(&key);
                }
            }
            let unknown = output == Output::Unknown;
            ops.push(Op {
                client: c,
                replica,
                key,
                input,
                output,
                call,
                ret,
            });
            if unknown {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        ops
    }

    /// Sends one operation; `None` when it was never sent.
    async fn perform(&self, replica: usize, key: &str, input: &Input) -> Option<Output> {
        let opts = &self.0.opts;
        let url = format!(
            "{}/meshes/{}/secrets/{key}",
            self.0.apis[replica], opts.mesh
        );
        let http = &self.0.http;
        let body = |value: &str| {
            json!({
                "type": "Secret",
                "mesh": opts.mesh,
                "name": key,
                "data": base64::engine::general_purpose::STANDARD.encode(value),
            })
        };
        let req = match input {
            Input::Create { value } => http
                .put(&url)
                .header("if-none-match", "*")
                .json(&body(value)),
            Input::Cas { expected, value } => http
                .put(&url)
                .header("if-match", format!("\"{expected}\""))
                .json(&body(value)),
            Input::Delete { expected } => http
                .delete(&url)
                .header("if-match", format!("\"{expected}\"")),
            Input::Read => http.get(format!("{url}?consistent=true")),
            Input::LocalRead => http.get(&url),
        };
        let resp = match req.timeout(opts.timeout).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return None,
            Err(_) => return Some(Output::Unknown),
        };
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_matches('"').parse::<u64>().ok());
        let body: Option<Value> = resp.json().await.ok();
        let version = || etag.or_else(|| body.as_ref().and_then(|b| b["version"].as_u64()));
        Some(match (input, status) {
            (Input::Create { .. } | Input::Cas { .. }, 200 | 201) => match version() {
                Some(version) => Output::Written { version },
                None => Output::Unknown,
            },
            (Input::Delete { .. }, 200) => Output::Deleted,
            (Input::Create { .. } | Input::Cas { .. } | Input::Delete { .. }, 409) => {
                Output::Conflict
            }
            (Input::Delete { .. } | Input::Read | Input::LocalRead, 404) => Output::NotFound,
            (Input::Read | Input::LocalRead, 200) => {
                let data = body
                    .as_ref()
                    .and_then(|b| b["data"].as_str())
                    .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                    .map(|d| String::from_utf8_lossy(&d).into_owned());
                match (data, version()) {
                    (Some(value), Some(version)) => Output::Value { value, version },
                    _ => Output::Unknown,
                }
            }
            _ => Output::Unknown,
        })
    }
}
