//! `TokenManager`: holds the backend's current Vault token, renews renewable tokens at about 2/3
//! of their TTL, logs in again when a login token reaches its max TTL or stops working, and backs
//! off with jitter on errors (never a tight loop). Its [`TokenStatus`] reports expiry for metrics.

use std::{
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant, SystemTime},
};

use rand::Rng as _;
use reqwest::Method;
use serde_json::json;
use tokio::sync::Notify;

use super::{
    auth::{AuthMethod, AuthOrigin, TokenLease, lease_from_auth},
    client::VaultClient,
    error::{Operation, VaultError},
};
use mosaic_core::{Sensitive, datasource::SecretSource};

/// Fraction of a token's TTL after which it is renewed (or replaced).
pub const RENEW_AT: f64 = 2.0 / 3.0;
/// First retry delay after a failed renewal or login.
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the manager knows about its token, for health and metrics. Never holds the token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenStatus {
    /// Auth method name.
    pub method: &'static str,
    /// When the current token expires, if it does and Vault said.
    pub expires_at: Option<SystemTime>,
    /// Whether the current token is renewable.
    pub renewable: bool,
    /// Successful renewals.
    pub renewals: u64,
    /// Successful logins (or reads of a static token).
    pub logins: u64,
    /// The last renewal or login error, cleared by the next success.
    pub last_error: Option<String>,
}

impl TokenStatus {
    /// Seconds of validity left, if the token expires.
    pub fn ttl_remaining(&self) -> Option<Duration> {
        self.expires_at
            .map(|t| t.duration_since(SystemTime::now()).unwrap_or_default())
    }
}

#[derive(Debug)]
struct Current {
    lease: TokenLease,
    obtained: Instant,
    /// TTL the token had when first obtained: the increment asked for on renewal.
    original_ttl: Option<Duration>,
    /// A renewal came back shorter than asked: the token is at its max TTL.
    capped: bool,
    generation: u64,
}

enum Action {
    Renew,
    Relogin,
    Expire,
}

/// Owns the token of one Vault backend.
pub struct TokenManager {
    client: VaultClient,
    method: AuthMethod,
    origin: AuthOrigin,
    mesh: String,
    secrets: Arc<dyn SecretSource>,
    current: tokio::sync::Mutex<Option<Current>>,
    status: Mutex<TokenStatus>,
    wake: Arc<Notify>,
    renewer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    generation: std::sync::atomic::AtomicU64,
}

// === impl TokenManager ===

impl TokenManager {
    /// A manager for `method` of the Mesh's `auth`; no request is made until a token is needed.
    pub fn new(
        client: VaultClient,
        method: AuthMethod,
        mesh: &str,
        secrets: Arc<dyn SecretSource>,
    ) -> Arc<Self> {
        Self::with_origin(client, method, AuthOrigin::Mesh, mesh, secrets)
    }

    /// A manager for `method` configured at `origin` (named in errors).
    pub fn with_origin(
        client: VaultClient,
        method: AuthMethod,
        origin: AuthOrigin,
        mesh: &str,
        secrets: Arc<dyn SecretSource>,
    ) -> Arc<Self> {
        let status = TokenStatus {
            method: method.name(),
            ..TokenStatus::default()
        };
        Arc::new(Self {
            client,
            method,
            origin,
            mesh: mesh.to_string(),
            secrets,
            current: tokio::sync::Mutex::new(None),
            status: Mutex::new(status),
            wake: Arc::new(Notify::new()),
            renewer: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The auth method.
    pub fn method(&self) -> &AuthMethod {
        &self.method
    }

    /// A snapshot of the token's state.
    pub fn status(&self) -> TokenStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The current token, obtaining one if there is none or it has expired. `None` with an agent.
    pub async fn token(self: &Arc<Self>) -> Result<Option<Sensitive<String>>, VaultError> {
        if matches!(self.method, AuthMethod::Agent) {
            return Ok(None);
        }
        let mut cur = self.current.lock().await;
        if let Some(c) = cur.as_ref()
            && !expired(c)
        {
            return Ok(Some(c.lease.token.clone()));
        }
        let lease = self.obtain_recorded().await?;
        let token = lease.token.clone();
        *cur = Some(self.install(lease));
        drop(cur);
        self.ensure_renewer();
        self.wake.notify_one();
        Ok(Some(token))
    }

    /// Forgets `token` if it is still the current one (Vault refused it), so the next call to
    /// [`TokenManager::token`] logs in again or re-reads the static token.
    pub async fn invalidate(&self, token: &Sensitive<String>) {
        let mut cur = self.current.lock().await;
        if cur.as_ref().is_some_and(|c| c.lease.token == *token) {
            *cur = None;
        }
    }

    async fn obtain_recorded(&self) -> Result<TokenLease, VaultError> {
        match self
            .method
            .obtain(&self.client, &self.mesh, &self.secrets, self.origin)
            .await
        {
            Ok(Some(lease)) => {
                self.update_status(|s| {
                    s.logins += 1;
                    s.last_error = None;
                    s.renewable = lease.renewable;
                    s.expires_at = lease.ttl.map(|t| SystemTime::now() + t);
                });
                Ok(lease)
            }
            Ok(None) => Err(VaultError::Config(
                "the auth method yielded no token".to_string(),
            )),
            Err(e) => {
                let msg = e.to_string();
                self.update_status(|s| s.last_error = Some(msg));
                Err(e)
            }
        }
    }

    fn install(&self, lease: TokenLease) -> Current {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        Current {
            original_ttl: lease.ttl,
            lease,
            obtained: Instant::now(),
            capped: false,
            generation,
        }
    }

    fn update_status(&self, f: impl FnOnce(&mut TokenStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    fn ensure_renewer(self: &Arc<Self>) {
        let Ok(mut slot) = self.renewer.lock() else {
            return;
        };
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let weak = Arc::downgrade(self);
        let wake = self.wake.clone();
        *slot = Some(tokio::spawn(renew_loop(weak, wake)));
    }

    /// When and what to do next, or `None` to wait for a new token.
    async fn plan(&self) -> Option<(Instant, Action, u64)> {
        let cur = self.current.lock().await;
        let c = cur.as_ref()?;
        let ttl = c.lease.ttl?;
        let jitter = rand::rng().random_range(0.9..=1.0);
        let at = c.obtained + ttl.mul_f64(RENEW_AT * jitter);
        let action = if c.lease.renewable && !c.capped {
            Action::Renew
        } else if self.method.is_login() {
            Action::Relogin
        } else {
            return Some((c.obtained + ttl, Action::Expire, c.generation));
        };
        Some((at, action, c.generation))
    }

    async fn renew(&self, generation: u64) -> Result<(), VaultError> {
        let (token, increment) = {
            let cur = self.current.lock().await;
            match cur.as_ref() {
                Some(c) if c.generation == generation => (c.lease.token.clone(), c.original_ttl),
                _ => return Ok(()),
            }
        };
        let body = increment.map(|i| json!({"increment": format!("{}s", i.as_secs())}));
        let resp = self
            .client
            .call(
                Method::POST,
                "auth/token/renew-self",
                Some(&token),
                body.as_ref(),
                &Operation::Renew,
            )
            .await?;
        let lease = lease_from_auth(&resp).ok_or_else(|| {
            self.client
                .decode_error(&Operation::Renew, "no auth in the renew response")
        })?;
        let mut cur = self.current.lock().await;
        if let Some(c) = cur.as_mut()
            && c.generation == generation
        {
            let capped = match (lease.ttl, increment) {
                (Some(got), Some(asked)) => got + Duration::from_secs(1) < asked,
                _ => false,
            };
            c.capped = capped;
            c.obtained = Instant::now();
            c.lease.ttl = lease.ttl;
            c.lease.renewable = lease.renewable;
            if capped {
                tracing::info!(mesh = %self.mesh, ttl_secs = lease.ttl.map(|t| t.as_secs()), "Vault token reached its max TTL; it will be replaced before it expires");
            }
            self.update_status(|s| {
                s.renewals += 1;
                s.last_error = None;
                s.renewable = lease.renewable;
                s.expires_at = lease.ttl.map(|t| SystemTime::now() + t);
            });
        }
        Ok(())
    }

    async fn relogin(&self, generation: u64) -> Result<(), VaultError> {
        let lease = self.obtain_recorded().await?;
        let mut cur = self.current.lock().await;
        if cur.as_ref().is_none_or(|c| c.generation == generation) {
            *cur = Some(self.install(lease));
        }
        Ok(())
    }
}

impl Drop for TokenManager {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.renewer.lock()
            && let Some(h) = slot.take()
        {
            h.abort();
        }
    }
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("method", &self.method.name())
            .field("status", &self.status())
            .finish()
    }
}

fn expired(c: &Current) -> bool {
    c.lease
        .ttl
        .is_some_and(|ttl| c.obtained.elapsed() + Duration::from_secs(1) >= ttl)
}

fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.8..=1.2))
}

async fn renew_loop(weak: Weak<TokenManager>, wake: Arc<Notify>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let Some(this) = weak.upgrade() else { return };
        let plan = this.plan().await;
        drop(this);
        let Some((at, action, generation)) = plan else {
            wake.notified().await;
            continue;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            _ = wake.notified() => continue,
        }
        let Some(this) = weak.upgrade() else { return };
        let result = match action {
            Action::Renew => match this.renew(generation).await {
                Err(e) if e.is_permission_denied() && this.method.is_login() => {
                    tracing::warn!(mesh = %this.mesh, error = %e, "Vault refused to renew the token; logging in again");
                    this.relogin(generation).await
                }
                other => other,
            },
            Action::Relogin => this.relogin(generation).await,
            Action::Expire => {
                let msg = "the Vault token has expired and cannot be renewed: give the mesh a new token (auth.token)".to_string();
                tracing::error!(mesh = %this.mesh, "{msg}");
                this.update_status(|s| s.last_error = Some(msg));
                drop(this);
                wake.notified().await;
                continue;
            }
        };
        match result {
            Ok(()) => backoff = MIN_BACKOFF,
            Err(e) => {
                let msg = e.to_string();
                tracing::warn!(mesh = %this.mesh, error = %msg, retry_in_secs = backoff.as_secs(), "Vault token renewal failed");
                this.update_status(|s| s.last_error = Some(msg));
                drop(this);
                tokio::select! {
                    _ = tokio::time::sleep(jittered(backoff)) => {}
                    _ = wake.notified() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
