//! `VaultProxy`: a measuring HTTP/1.1 proxy in front of the real OpenBao. The Mesh's Vault
//! address is the proxy's; every request is forwarded to OpenBao and its answer returned as is.
//! It counts requests by method and path, tracks how many are in flight at Vault (and the peak
//! since the last reset), and timestamps each one.
//!
//! "Vault down" ([`VaultProxy::set_down`]) closes the listening socket and every open connection
//! (requests in flight are cut), so new connections are refused (`ECONNREFUSED`) exactly as with
//! a stopped Vault on the same address; "up" binds the same address again. OpenBao itself keeps
//! running (its dev mode holds everything in memory, so really stopping it would lose the PKI).

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::error::BenchError;

/// One request the proxy forwarded.
#[derive(Clone, Debug)]
pub struct Call {
    /// `GET`, `POST`, `PUT`, ...
    pub method: String,
    /// The path without the query (`/v1/pki-b/issue/role-b`).
    pub path: String,
    /// When the proxy received it.
    pub started: Instant,
    /// When Vault's answer was complete (`None`: cut by "Vault down" or failed upstream).
    pub finished: Option<Instant>,
    /// Vault's status (0 when there was no answer).
    pub status: u16,
}

#[derive(Debug)]
struct State {
    upstream: String,
    http: reqwest::Client,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    calls: Mutex<Vec<Call>>,
}

/// The proxy (runs until dropped).
#[derive(Debug)]
pub struct VaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    up: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for VaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Decrements the in-flight count when a forwarded request ends, however it ends.
struct InFlight<'a>(&'a State);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

// === impl VaultProxy ===

impl VaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> Result<Self, BenchError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(BenchError::io("binding the Vault proxy"))?;
        let addr = listener
            .local_addr()
            .map_err(BenchError::io("reading the Vault proxy's address"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(BenchError::request("building the proxy's HTTP client"))?;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            http,
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            calls: Mutex::default(),
        });
        let (up, up_rx) = watch::channel(true);
        let task = tokio::spawn(serve(addr, Some(listener), state.clone(), up_rx));
        Ok(Self {
            addr,
            state,
            up,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`: what the Mesh names as its Vault address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// "Vault down" (`true`): refuse new connections and cut the open ones; `false`: accept
    /// again on the same address.
    pub fn set_down(&self, down: bool) {
        self.up.send_replace(!down);
    }

    /// Waits until the proxy's state is what [`VaultProxy::set_down`] asked: refusing (down) or
    /// accepting (up) connections.
    pub async fn wait_state(&self, down: bool, deadline: Duration) -> Result<(), BenchError> {
        let addr = self.addr;
        crate::procs::wait_until(
            if down {
                "the Vault proxy to refuse connections"
            } else {
                "the Vault proxy to accept connections"
            },
            deadline,
            Duration::from_millis(5),
            || async move {
                let accepts = tokio::net::TcpStream::connect(addr).await.is_ok();
                (accepts != down).then_some(())
            },
        )
        .await
    }

    /// Requests now in flight at Vault.
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests in flight at once since the last [`VaultProxy::reset_peak`].
    pub fn peak(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    /// Starts a new peak measurement (from what is in flight now).
    pub fn reset_peak(&self) {
        self.state.peak.store(
            self.state.in_flight.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
    }

    /// How many requests were received so far (an index for [`VaultProxy::calls_since`]).
    pub fn mark(&self) -> usize {
        self.lock().len()
    }

    /// Every request received since `mark`.
    pub fn calls_since(&self, mark: usize) -> Vec<Call> {
        self.lock()
            .get(mark..)
            .map(<[Call]>::to_vec)
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Call>> {
        self.state
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Calls counted by `METHOD path`, sorted.
pub fn by_path(calls: &[Call]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(format!("{} {}", c.method, c.path)).or_insert(0) += 1;
    }
    out
}

/// How busy Vault was with the issuance calls among `calls` over `window`: their latency at
/// Vault (p50, ms) and the mean number in flight (their summed time / `window`). Attribution for
/// a slow mass issuance: a mean near `max_in_flight` with a high latency says Vault was the
/// bottleneck; a low mean says the zone did not keep it busy.
pub fn vault_load(calls: &[Call], window: std::time::Duration) -> (f64, f64) {
    let mut ms: Vec<f64> = calls
        .iter()
        .filter(|c| is_issuance(c))
        .filter_map(|c| c.finished.map(|f| (f - c.started).as_secs_f64() * 1000.0))
        .collect();
    ms.sort_by(f64::total_cmp);
    let p50 = ms.get(ms.len() / 2).copied().unwrap_or(0.0);
    let busy: f64 = ms.iter().sum::<f64>() / 1000.0;
    let mean = busy / window.as_secs_f64().max(f64::MIN_POSITIVE);
    (p50, mean)
}

/// Whether `call` is a certificate issuance or signing (`.../issue/<role>`, `.../sign/<role>`).
pub fn is_issuance(call: &Call) -> bool {
    call.path.contains("/issue/") || call.path.contains("/sign/")
}

/// Accepts while up; when down, drops the listener and every connection, then binds again once
/// up.
async fn serve(
    addr: SocketAddr,
    mut listener: Option<TcpListener>,
    state: Arc<State>,
    mut up: watch::Receiver<bool>,
) {
    loop {
        let current = match listener.take() {
            Some(l) => l,
            None => match bind_again(addr).await {
                Some(l) => l,
                None => return,
            },
        };
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = current.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let _ = stream.set_nodelay(true);
                        let state = state.clone();
                        connections.spawn(async move {
                            let service = service_fn(move |req| {
                                let state = state.clone();
                                async move { Ok::<_, Infallible>(forward(&state, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .keep_alive(true)
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                changed = up.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if !*up.borrow() {
                        break;
                    }
                }
            }
        }
        drop(current);
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        // Down: wait to be up again.
        while !*up.borrow_and_update() {
            if up.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Binds `addr` again (the port was just released; retried briefly).
async fn bind_again(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..200 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("mosaic-bench: the Vault proxy could not bind {addr} again");
    None
}

/// Forwards one request to OpenBao and records it.
async fn forward(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_string());
    let index = {
        let mut calls = state.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.push(Call {
            method: method.to_string(),
            path: path.clone(),
            started,
            finished: None,
            status: 0,
        });
        calls.len() - 1
    };
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(state);

    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return failure(502, &format!("reading the request body: {e}")),
    };
    let mut upstream = state
        .http
        .request(method, format!("{}{path_and_query}", state.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            upstream = upstream.header(name, value);
        }
    }
    let resp = match upstream.send().await {
        Ok(r) => r,
        Err(e) => return failure(502, &format!("OpenBao: {e}")),
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return failure(502, &format!("OpenBao's answer: {e}")),
    };
    let finished = Instant::now();
    if let Some(call) = state
        .calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_mut(index)
    {
        call.finished = Some(finished);
        call.status = status.as_u16();
    }
    let mut out = Response::new(Full::new(bytes));
    *out.status_mut() = status;
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
}

fn failure(status: u16, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "errors": [message] }).to_string();
    let mut out = Response::new(Full::new(Bytes::from(body)));
    *out.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method_and_path() {
        let at = Instant::now();
        let call = |m: &str, p: &str| Call {
            method: m.into(),
            path: p.into(),
            started: at,
            finished: None,
            status: 0,
        };
        let calls = vec![
            call("POST", "/v1/pki-b/issue/r"),
            call("POST", "/v1/pki-b/issue/r"),
            call("GET", "/v1/pki-b/cert/ca_chain"),
        ];
        let counts = by_path(&calls);
        assert_eq!(counts["POST /v1/pki-b/issue/r"], 2);
        assert_eq!(counts["GET /v1/pki-b/cert/ca_chain"], 1);
        assert!(is_issuance(&calls[0]) && !is_issuance(&calls[2]));
    }
}
