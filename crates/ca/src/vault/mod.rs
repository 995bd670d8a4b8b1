//! The Vault PKI backend: issues data-plane certificates from `{pki}/issue/{role}` (Vault makes
//! the key), `{pki}/sign/{role}` (Mosaic makes the key the role's `key_type`/`key_bits` ask for,
//! read once per build, EC P-256 when the role cannot be read, and sends a CSR; the key never
//! leaves the process), or, in `intermediate` mode, signs them in the zone with an intermediate
//! CA that Vault signs at `intermediate.caPath` (its key in memory only). The root's key never
//! leaves Vault.
//!
//! Module map:
//! - [`error`]: `VaultError` and the hints that say what to do about each failure.
//! - [`csr_key`]: `mode: sign`'s key: chosen from the role's key parameters, and generated.
//! - [`intermediate`]: `mode: intermediate`: the zone intermediate's plan, requests and renewal.
//! - [`client`]: HTTP to Vault with the backend's TLS settings, namespace and timeout.
//! - [`auth`]: the auth methods (token, cert, AppRole, Kubernetes, AWS, agent).
//! - [`token`]: the token's lifecycle: renewal, re-login, status.
//! - [`sigv4`]: AWS Signature Version 4 (the `aws-sigv4` crate), used to sign the STS request of
//!   Vault's AWS IAM login.
//! - [`aws`]: AWS credentials and the request bodies of Vault's `auth/aws/login` (IAM and EC2).
//! - [`zone`]: `VaultZone`, what a zone brings: `{{ zone }}` expansion and its own credentials.
//! - [`probe`]: what can be checked without credentials (Vault answers, the PKI mount has a CA).

pub mod auth;
pub mod aws;
pub mod client;
pub mod csr_key;
pub mod error;
pub mod intermediate;
pub mod probe;
pub mod sigv4;
pub mod token;
pub mod zone;

use crate::datasource::ResolveDataSource as _;
use std::{sync::Arc, time::Duration};

use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

use self::csr_key::CsrKey;
use self::intermediate::{HeldIntermediate, IntermediatePlan, RETRY_AFTER_FAILURE};
pub use self::{
    auth::{AuthMethod, AuthOrigin},
    client::{ClientTls, VaultClient},
    error::{Operation, VaultError},
    intermediate::IntermediateStatus,
    token::{TokenManager, TokenStatus},
    zone::VaultZone,
};
use mosaic_core::ca::{
    CaBackend, CaError, CaErrorKind, IssueRequest, IssuedCert,
    identity::{csr_params, has_service, inspect_pem, split_pem},
};
use mosaic_core::{
    Sensitive,
    datasource::SecretSource,
    resource::mesh::{BackendType, MtlsBackend, VaultConf, VaultFromCp, VaultMode},
    template::Template,
};

/// A Vault PKI backend of one mesh.
#[derive(Debug)]
pub struct VaultCa {
    mesh: String,
    backend: String,
    pki: String,
    role: String,
    mode: VaultMode,
    template: Option<Template>,
    ttl: Duration,
    client: VaultClient,
    tokens: Arc<TokenManager>,
    /// `mode: intermediate`: the zone's intermediate.
    intermediate: Option<ZoneIntermediate>,
    /// `mode: sign`: what the role says of its keys, read at the first CSR (and again after
    /// Vault refuses a CSR's key), so once per build rather than per issuance.
    role_key: tokio::sync::Mutex<Option<RoleKey>>,
}

/// What sign mode knows of the role's key parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RoleKey {
    /// The role was read: the key it wants, or why Mosaic cannot make one.
    Read(Result<CsrKey, String>),
    /// The role could not be read (a policy granting sign only): EC P-256, as Vault's `ec` and
    /// `any` roles accept.
    Unread,
}

impl RoleKey {
    fn key(&self) -> Result<CsrKey, String> {
        match self {
            RoleKey::Read(k) => k.clone(),
            RoleKey::Unread => Ok(CsrKey::EcP256),
        }
    }
}

/// The intermediate a zone signs with (`mode: intermediate`), held in memory only.
#[derive(Debug)]
struct ZoneIntermediate {
    plan: IntermediatePlan,
    /// The current intermediate; locked while one is signed, so concurrent issuances wait for
    /// one renewal instead of each asking Vault.
    slot: tokio::sync::Mutex<Slot>,
    status: std::sync::Mutex<IntermediateStatus>,
}

#[derive(Debug, Default)]
struct Slot {
    current: Option<Arc<HeldIntermediate>>,
    /// After a failed renewal, no new attempt before this while the current one can sign.
    retry_after: Option<std::time::Instant>,
}

/// The lifetime of the test intermediate the global's admission signs (and discards).
const TEST_INTERMEDIATE_TTL: Duration = Duration::from_secs(600);

// === impl VaultCa ===

impl VaultCa {
    /// Builds the backend from `conf.fromCp` outside any zone (`{{ zone }}` does not expand):
    /// resolves its DataSources and prepares the client. No request is made to Vault yet.
    pub async fn new(
        mesh: &str,
        backend: &MtlsBackend,
        conf: &VaultConf,
        secrets: Arc<dyn SecretSource>,
    ) -> Result<Self, CaError> {
        Self::new_in(mesh, backend, conf, secrets, &VaultZone::default()).await
    }

    /// Builds the backend as `zone` uses it: `{{ zone }}` expanded to its name, and its own
    /// credentials, when it has some, in place of the Mesh's `auth` (then Vault is called at
    /// `address`, not `agentAddress`). No request is made to Vault yet.
    pub async fn new_in(
        mesh: &str,
        backend: &MtlsBackend,
        conf: &VaultConf,
        secrets: Arc<dyn SecretSource>,
        zone: &VaultZone,
    ) -> Result<Self, CaError> {
        let err = |k| CaError::new(mesh, &backend.name, k);
        let from_cp: &VaultFromCp = conf
            .from_cp()
            .ok_or_else(|| err(CaErrorKind::Config("conf.fromCp must be set".into())))?;
        let expanded = zone::expand(from_cp, zone).map_err(|m| err(CaErrorKind::Config(m)))?;
        let from_cp = &expanded;
        let resolve = |field: &str, ds: &mosaic_core::datasource::DataSource| {
            ds.resolve(mesh, secrets.as_ref()).map_err(|source| {
                err(CaErrorKind::DataSource {
                    field: format!("conf.fromCp.{field}"),
                    source,
                })
            })
        };
        let mut tls = client_tls(mesh, backend, from_cp, secrets.as_ref())?;
        if let Some(cert_auth) = from_cp.auth.as_ref().and_then(|a| a.tls.as_ref()) {
            let missing = |f: &str| {
                err(CaErrorKind::Config(format!(
                    "conf.fromCp.auth.tls.{f} must be set"
                )))
            };
            let cert = resolve(
                "auth.tls.clientCert",
                cert_auth
                    .client_cert
                    .as_ref()
                    .ok_or_else(|| missing("clientCert"))?,
            )?;
            let key = resolve(
                "auth.tls.clientKey",
                cert_auth
                    .client_key
                    .as_ref()
                    .ok_or_else(|| missing("clientKey"))?,
            )?;
            let mut pem = cert.into_inner();
            pem.push(b'\n');
            pem.extend_from_slice(key.expose());
            tls.identity_pem = Some(Sensitive::new(pem));
        }
        let (method, origin) = match (
            zone.credentials.clone(),
            AuthMethod::from_conf(from_cp.auth.as_ref()),
            from_cp.agent_address.is_empty(),
        ) {
            (Some(m), _, _) => (m, AuthOrigin::ZoneConfig),
            (None, Some(m), _) => (m, AuthOrigin::Mesh),
            (None, None, false) => (AuthMethod::Agent, AuthOrigin::Mesh),
            (None, None, true) => {
                let here = match &zone.zone {
                    Some(z) => format!("zone {z:?}'s config holds no credentials for it"),
                    None => "no zone's credentials can be used here".to_string(),
                };
                return Err(err(CaErrorKind::Config(format!(
                    "conf.fromCp.auth sets no auth method and {here}: add a [[vault_auth]] entry with mesh = {mesh:?} and backend = {:?} (token_file, approle or kubernetes) to each zone's config, or set conf.fromCp.auth (or agentAddress)",
                    backend.name
                ))));
            }
        };
        let address = if from_cp.agent_address.is_empty() || zone.credentials.is_some() {
            &from_cp.address
        } else {
            &from_cp.agent_address
        };
        let namespace = Some(from_cp.namespace.as_str()).filter(|n| !n.is_empty());
        let client = VaultClient::new(address, namespace, &tls, backend.request_timeout())
            .await
            .map_err(|e| err(CaErrorKind::from(e)))?;
        let template = from_cp
            .common_name_template()
            .map_err(|e| err(CaErrorKind::Template(e)))?;
        let tokens =
            TokenManager::with_origin(client.clone(), method, origin, mesh, secrets.clone());
        let intermediate =
            (from_cp.vault_mode() == VaultMode::Intermediate).then(|| ZoneIntermediate {
                plan: IntermediatePlan::new(mesh, zone.zone.as_deref(), from_cp),
                slot: tokio::sync::Mutex::default(),
                status: std::sync::Mutex::default(),
            });
        Ok(Self {
            mesh: mesh.to_string(),
            backend: backend.name.clone(),
            pki: from_cp.pki_path().to_string(),
            role: from_cp.role.trim().to_string(),
            mode: from_cp.vault_mode(),
            template,
            ttl: backend.cert_expiration(),
            client,
            tokens,
            intermediate,
            role_key: tokio::sync::Mutex::default(),
        })
    }

    /// The token's state (expiry, renewals, last error), for health and metrics.
    pub fn token_status(&self) -> TokenStatus {
        self.tokens.status()
    }

    /// `issue`, `sign` or `intermediate`.
    pub fn mode(&self) -> VaultMode {
        self.mode
    }

    /// The zone intermediate's state (`mode: intermediate` only), for health and metrics.
    pub fn intermediate_status(&self) -> Option<IntermediateStatus> {
        self.intermediate.as_ref().map(|z| {
            z.status
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
    }

    /// Renews the zone intermediate when one is held and due (past its renewal point, or unable
    /// to cover a whole certificate of the backend's lifetime); nothing before the first one
    /// (that one is signed when a certificate must be). Failures are kept in the status.
    pub async fn renew_intermediate_if_due(&self) {
        let Some(zca) = &self.intermediate else {
            return;
        };
        let due = zca
            .slot
            .lock()
            .await
            .current
            .as_ref()
            .is_some_and(|h| !h.fresh_for(OffsetDateTime::now_utc(), self.ttl));
        if due && let Err(e) = self.zone_intermediate(self.ttl).await {
            tracing::warn!(mesh = %self.mesh, backend = %self.backend, error = %e, "zone intermediate not renewed");
        }
    }

    fn err(&self, kind: impl Into<CaErrorKind>) -> CaError {
        CaError::new(&self.mesh, &self.backend, kind)
    }

    /// `GET {pki}/roles/{role}` with the backend's current token. A refusal does not drop the
    /// token (as [`Self::call_with_token`] does): many policies grant sign or issue only.
    pub(crate) async fn read_role(&self) -> Result<Value, VaultError> {
        let op = Operation::ReadRole {
            pki: self.pki.clone(),
            role: self.role.clone(),
        };
        let path = format!("{}/roles/{}", self.pki, self.role);
        let token = self.tokens.token().await?;
        self.client
            .call(Method::GET, &path, token.as_ref(), None, &op)
            .await
    }

    /// The key sign mode's CSRs are made with: the role's, read at the first call (or when
    /// `reread`, after Vault refused a CSR's key: an operator may have changed the role).
    async fn role_key(&self, reread: bool) -> RoleKey {
        let mut cached = self.role_key.lock().await;
        if !reread && let Some(k) = cached.as_ref() {
            return k.clone();
        }
        let learned = match self.read_role().await {
            Ok(resp) => RoleKey::Read(CsrKey::for_role_answer(&resp)),
            Err(e) => {
                tracing::debug!(mesh = %self.mesh, backend = %self.backend, error = %e, "role not readable; sign mode makes EC P-256 CSRs");
                RoleKey::Unread
            }
        };
        match &learned {
            RoleKey::Read(Ok(k)) => {
                tracing::debug!(mesh = %self.mesh, backend = %self.backend, pki = %self.pki, role = %self.role, key = %k, "sign mode's CSR key follows the role")
            }
            RoleKey::Read(Err(e)) => {
                tracing::warn!(mesh = %self.mesh, backend = %self.backend, pki = %self.pki, role = %self.role, error = %e, "sign mode cannot make the role's key")
            }
            RoleKey::Unread => {}
        }
        *cached = Some(learned.clone());
        learned
    }

    /// A new key of `kind` and a CSR for `sans` (and `cn`) signed with it. RSA keys take long
    /// to generate (tens of milliseconds to seconds), so off the async workers.
    async fn key_and_csr(
        &self,
        kind: CsrKey,
        sans: &[String],
        cn: Option<&str>,
    ) -> Result<(String, Sensitive<String>), CaError> {
        let generated = match kind {
            CsrKey::Rsa(_) => tokio::task::spawn_blocking(move || kind.generate())
                .await
                .unwrap_or_else(|e| Err(format!("could not generate {kind}: {e}"))),
            _ => kind.generate(),
        };
        let key = generated.map_err(|e| self.err(CaErrorKind::Certificate(e)))?;
        let csr = csr_params(sans, cn)
            .map_err(|e| e.to_string())
            .and_then(|p| p.serialize_request(&key).map_err(|e| e.to_string()))
            .and_then(|c| c.pem().map_err(|e| e.to_string()))
            .map_err(|e| {
                self.err(CaErrorKind::Certificate(format!(
                    "could not build the CSR: {e}"
                )))
            })?;
        Ok((csr, Sensitive::new(key.serialize_pem())))
    }

    /// `{pki}/sign/{role}` for a CSR made here with the role's key; when Vault refuses the key,
    /// the role is read again and, if it now wants another key, the CSR made anew once.
    async fn sign(
        &self,
        body: &mut Value,
        sans: &[String],
        cn: Option<&str>,
    ) -> Result<(Value, Sensitive<String>), CaError> {
        let path = format!("{}/sign/{}", self.pki, self.role);
        let op = Operation::Sign {
            pki: self.pki.clone(),
            role: self.role.clone(),
        };
        let role_err = |m: String| {
            self.err(CaErrorKind::Config(format!(
                "role {}/roles/{} (conf.fromCp.role, mode sign): {m}",
                self.pki, self.role
            )))
        };
        let kind = self.role_key(false).await.key().map_err(role_err)?;
        let (csr, key) = self.key_and_csr(kind, sans, cn).await?;
        body["csr"] = json!(csr);
        let refused = match self.call_with_token(&path, body, &op).await {
            Ok(resp) => return Ok((resp, key)),
            Err(e) if e.is_key_refusal() => e,
            Err(e) => return Err(self.err(e.for_mesh(&self.mesh))),
        };
        let again = self.role_key(true).await;
        match again.key() {
            Ok(k) if k != kind => {
                tracing::info!(mesh = %self.mesh, backend = %self.backend, was = %kind, now = %k, "Vault refused the CSR's key; the role now wants another");
                let (csr, key) = self.key_and_csr(k, sans, cn).await?;
                body["csr"] = json!(csr);
                let resp = self
                    .call_with_token(&path, body, &op)
                    .await
                    .map_err(|e| self.err(e.for_mesh(&self.mesh)))?;
                Ok((resp, key))
            }
            Err(m) => Err(role_err(m)),
            Ok(_) => Err(self.err(refused.for_mesh(&self.mesh))),
        }
    }

    /// Calls Vault with the current token; when Vault refuses a token it once accepted, the token
    /// is dropped and the call retried once with a fresh one.
    async fn call_with_token(
        &self,
        path: &str,
        body: &Value,
        op: &Operation,
    ) -> Result<Value, VaultError> {
        self.call_as(Method::POST, path, Some(body), op).await
    }

    /// [`Self::call_with_token`] with any method and an optional body.
    async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        op: &Operation,
    ) -> Result<Value, VaultError> {
        let token = self.tokens.token().await?;
        match self
            .client
            .call(method.clone(), path, token.as_ref(), body, op)
            .await
        {
            Err(e)
                if e.is_permission_denied()
                    && token.is_some()
                    && self.tokens.status().logins > 0 =>
            {
                let Some(t) = token else { return Err(e) };
                self.tokens.invalidate(&t).await;
                let fresh = self.tokens.token().await?;
                if fresh.as_ref() == Some(&t) {
                    return Err(e);
                }
                self.client
                    .call(method, path, fresh.as_ref(), body, op)
                    .await
            }
            other => other,
        }
    }

    /// The intermediate to sign a leaf of `leaf_ttl` with: the current one while it is fresh,
    /// else a new one from Vault; while Vault fails, the current one as long as it covers the
    /// leaf.
    async fn zone_intermediate(
        &self,
        leaf_ttl: Duration,
    ) -> Result<Arc<HeldIntermediate>, CaError> {
        let zca = self.intermediate.as_ref().ok_or_else(|| {
            self.err(CaErrorKind::Config(
                "conf.fromCp.mode is not intermediate".to_string(),
            ))
        })?;
        let mut slot = zca.slot.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some(h) = &slot.current {
            let held_back = slot
                .retry_after
                .is_some_and(|t| std::time::Instant::now() < t);
            if h.fresh_for(now, leaf_ttl) || (held_back && h.covers(now, leaf_ttl)) {
                return Ok(h.clone());
            }
        }
        match self
            .sign_intermediate(&zca.plan, zca.plan.ttl, leaf_ttl)
            .await
        {
            Ok(held) => {
                let held = Arc::new(held);
                tracing::info!(
                    mesh = %self.mesh,
                    backend = %self.backend,
                    serial = %held.serial,
                    not_after = %held.not_after,
                    renew_at = %held.renew_at,
                    "zone intermediate CA signed by Vault"
                );
                slot.current = Some(held.clone());
                slot.retry_after = None;
                let mut status = zca
                    .status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                status.serial = Some(held.serial.clone());
                status.not_after = Some(held.not_after);
                status.renew_at = Some(held.renew_at);
                status.signed += 1;
                status.last_error = None;
                Ok(held)
            }
            Err(e) => {
                slot.retry_after = Some(std::time::Instant::now() + RETRY_AFTER_FAILURE);
                zca.status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .last_error = Some(e.to_string());
                match &slot.current {
                    Some(h) if h.covers(now, leaf_ttl) => {
                        tracing::warn!(
                            mesh = %self.mesh,
                            backend = %self.backend,
                            error = %e,
                            serial = %h.serial,
                            not_after = %h.not_after,
                            "renewing the zone intermediate failed; the current one signs on while it outlives the certificates"
                        );
                        Ok(h.clone())
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// Has Vault sign a new intermediate valid for `ttl` (at least `min_life`): key and CSR
    /// made here, or by Vault at `csrPath` (whose copy of the key is then deleted at once).
    async fn sign_intermediate(
        &self,
        plan: &IntermediatePlan,
        ttl: Duration,
        min_life: Duration,
    ) -> Result<HeldIntermediate, CaError> {
        let vault = |e: VaultError| self.err(e.for_mesh(&self.mesh));
        let key = match &plan.csr_path {
            None => plan
                .zone_key_and_csr()
                .map_err(|m| self.err(CaErrorKind::Certificate(m)))?,
            Some(path) => {
                let name = plan.key_name(OffsetDateTime::now_utc() + ttl);
                let op = Operation::GenerateIntermediate { path: path.clone() };
                let resp = self
                    .call_with_token(path, &plan.generate_body(&name), &op)
                    .await
                    .map_err(vault)?;
                plan.read_generated(&resp)
                    .map_err(|r| vault(self.client.decode_error(&op, r)))?
            }
        };
        let op = Operation::SignIntermediate {
            path: plan.ca_path.clone(),
        };
        let signed = self
            .call_with_token(&plan.ca_path, &plan.sign_body(&key.csr_pem, ttl), &op)
            .await;
        // The zone holds the key; Vault's copy is never needed, so it goes whatever happened.
        if let (Some(mount), Some(id)) = (&plan.key_mount, &key.vault_key_id) {
            self.delete_key(mount, id).await;
        }
        let resp = signed.map_err(vault)?;
        let held = plan
            .read_signed(&resp, &key, min_life, rand::random::<f64>())
            .map_err(|m| vault(VaultError::Certificate(m)))?;
        if let Some(mount) = &plan.key_mount {
            self.sweep_keys(plan, mount).await;
        }
        Ok(held)
    }

    /// Deletes key `id` of `mount`, which Mosaic made; a failure is logged (the sweep after the
    /// next renewal tries again).
    async fn delete_key(&self, mount: &str, id: &str) {
        let op = Operation::DeleteKey {
            mount: mount.to_string(),
            key: id.to_string(),
        };
        match self
            .call_as(Method::DELETE, &format!("{mount}/key/{id}"), None, &op)
            .await
        {
            Ok(_) => {
                tracing::debug!(mesh = %self.mesh, backend = %self.backend, key = id, "Vault's copy of the intermediate's key deleted")
            }
            Err(e) => {
                tracing::warn!(mesh = %self.mesh, backend = %self.backend, key = id, error = %e, "Vault's copy of the intermediate's key not deleted; retried after the next renewal")
            }
        }
    }

    /// Deletes the keys of `mount` that this mesh and zone made for intermediates now expired
    /// (left behind by a crash between making and deleting one). Keys not named by Mosaic for
    /// this mesh and zone are never touched.
    async fn sweep_keys(&self, plan: &IntermediatePlan, mount: &str) {
        let op = Operation::ListKeys {
            mount: mount.to_string(),
        };
        let listed = match self
            .call_as(Method::GET, &format!("{mount}/keys?list=true"), None, &op)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(mesh = %self.mesh, backend = %self.backend, error = %e, "keys not listed; leftovers not swept");
                return;
            }
        };
        let now = OffsetDateTime::now_utc();
        let stale: Vec<String> = listed
            .pointer("/data/key_info")
            .and_then(Value::as_object)
            .map(|info| {
                info.iter()
                    .filter(|(_, i)| {
                        i.get("key_name")
                            .and_then(Value::as_str)
                            .and_then(|n| plan.key_name_expiry(n))
                            .is_some_and(|expiry| expiry < now)
                    })
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        for id in stale {
            self.delete_key(mount, &id).await;
        }
    }
}

#[async_trait::async_trait]
impl CaBackend for VaultCa {
    fn mesh(&self) -> &str {
        &self.mesh
    }

    fn backend_name(&self) -> &str {
        &self.backend
    }

    fn backend_type(&self) -> BackendType {
        BackendType::Vault
    }

    fn default_ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues (and discards) a test certificate; in `intermediate` mode, has Vault sign a
    /// short-lived test intermediate, signs a test leaf with it and checks that the chain
    /// verifies to the mount's roots, as a zone would.
    async fn validate(&self) -> Result<(), CaError> {
        self.validate_with(&IssueRequest::validation(self.ttl))
            .await
    }

    /// [`CaBackend::validate`] for `req` (a MeshIdentity's test SPIFFE ID, say).
    async fn validate_with(&self, req: &IssueRequest) -> Result<(), CaError> {
        let Some(zca) = &self.intermediate else {
            let cert = self.issue(req).await?;
            tracing::debug!(mesh = %self.mesh, backend = %self.backend, serial = %cert.serial, "test certificate issued");
            return Ok(());
        };
        let test_leaf = Duration::from_secs(60);
        let held = self
            .sign_intermediate(&zca.plan, TEST_INTERMEDIATE_TTL, test_leaf)
            .await?;
        let leaf = held
            .ca
            .issue(&req.uri_sans(&self.mesh), None, test_leaf)
            .map_err(|e| self.err(CaErrorKind::Certificate(e.to_string())))?;
        let roots = if held.roots.is_empty() {
            self.root_certs().await?
        } else {
            held.roots.clone()
        };
        crate::chain::verify(&leaf.chain_pem, &roots).map_err(|e| {
            self.err(VaultError::Certificate(format!(
                "a test certificate signed by the test intermediate from {} does not verify to the roots of {}: {e}; caPath must be signed by the PKI mount named in pki",
                zca.plan.ca_path, self.pki
            )))
        })?;
        tracing::debug!(mesh = %self.mesh, backend = %self.backend, intermediate = %held.serial, "test intermediate signed and verified");
        Ok(())
    }

    async fn root_certs(&self) -> Result<Vec<String>, CaError> {
        read_roots(&self.client, &self.pki)
            .await
            .map_err(|e| self.err(e))
    }

    async fn issue(&self, req: &IssueRequest) -> Result<IssuedCert, CaError> {
        if req.spiffe_id.is_none() && !has_service(&req.tags) {
            return Err(self.err(CaErrorKind::NoService));
        }
        let sans = req.uri_sans(&self.mesh);
        let common_name = match &self.template {
            Some(t) => t.render(&req.tags).map_err(|e| self.err(e))?,
            None => String::new(),
        };
        let mut body = json!({
            "common_name": common_name,
            "uri_sans": sans.join(","),
            "ttl": format!("{}s", req.ttl.as_secs().max(1)),
            "format": "pem",
            "exclude_cn_from_sans": true,
        });
        let (resp, op, local_key) = match self.mode {
            VaultMode::Intermediate => {
                let held = self.zone_intermediate(req.ttl).await?;
                let cn = Some(common_name.as_str()).filter(|c| !c.is_empty());
                let cert = held
                    .ca
                    .issue(&sans, cn, req.ttl)
                    .map_err(|e| self.err(CaErrorKind::Certificate(e.to_string())))?;
                tracing::debug!(mesh = %self.mesh, backend = %self.backend, serial = %cert.serial, intermediate = %held.serial, "certificate signed by the zone intermediate");
                return Ok(cert);
            }
            VaultMode::Issue => {
                body["private_key_format"] = json!("pkcs8");
                let op = Operation::Issue {
                    pki: self.pki.clone(),
                    role: self.role.clone(),
                };
                let resp = self
                    .call_with_token(&format!("{}/issue/{}", self.pki, self.role), &body, &op)
                    .await
                    .map_err(|e| self.err(e.for_mesh(&self.mesh)))?;
                (resp, op, None)
            }
            VaultMode::Sign => {
                let cn = Some(common_name.as_str()).filter(|c| !c.is_empty());
                let (resp, key) = self.sign(&mut body, &sans, cn).await?;
                let op = Operation::Sign {
                    pki: self.pki.clone(),
                    role: self.role.clone(),
                };
                (resp, op, Some(key))
            }
        };
        let decode = |reason: &str| self.err(self.client.decode_error(&op, reason));
        let data = resp.get("data").ok_or_else(|| decode("no data"))?;
        let leaf = data
            .get("certificate")
            .and_then(Value::as_str)
            .ok_or_else(|| decode("no data.certificate"))?;
        let key_pem = match local_key {
            Some(k) => k,
            None => Sensitive::new(
                data.get("private_key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| decode("no data.private_key"))?
                    .to_string(),
            ),
        };
        let info = inspect_pem(leaf).map_err(|e| {
            self.err(CaErrorKind::Certificate(format!(
                "Vault returned a bad certificate: {e}"
            )))
        })?;
        check_lifetime(&info.not_after, req.ttl, &resp)
            .map_err(|m| self.err(VaultError::Certificate(m)))?;
        let mut chain: Vec<String> =
            split_pem(leaf).map_err(|e| self.err(CaErrorKind::Certificate(e.to_string())))?;
        let ca_chain: Vec<String> = match data.get("ca_chain").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            None => data
                .get("issuing_ca")
                .and_then(Value::as_str)
                .map(|s| vec![s.to_string()])
                .unwrap_or_default(),
        };
        for pem in ca_chain {
            for c in
                split_pem(&pem).map_err(|e| self.err(CaErrorKind::Certificate(e.to_string())))?
            {
                let root = inspect_pem(&c).map(|i| i.self_signed).unwrap_or(true);
                if !root && !chain.contains(&c) {
                    chain.push(c);
                }
            }
        }
        tracing::debug!(mesh = %self.mesh, backend = %self.backend, serial = %info.serial, "certificate issued by Vault");
        Ok(IssuedCert {
            chain_pem: chain.concat(),
            key_pem,
            serial: info.serial,
            not_before: info.not_before,
            not_after: info.not_after,
        })
    }
}

/// Vault silently caps a certificate's TTL at the role's `max_ttl` (with a warning). Mosaic
/// refuses such a certificate, since it would rotate far earlier than configured.
fn check_lifetime(
    not_after: &OffsetDateTime,
    requested: Duration,
    resp: &Value,
) -> Result<(), String> {
    let remaining = (*not_after - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
    let remaining = Duration::from_secs(remaining.whole_seconds().max(0) as u64);
    let slack = Duration::from_secs(90).max(requested / 100);
    if remaining + slack >= requested {
        return Ok(());
    }
    let warnings: Vec<String> = resp
        .get("warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(|s| format!("{s:?}"))
                .collect()
        })
        .unwrap_or_default();
    Err(format!(
        "Vault issued a certificate valid for {} instead of the {} asked for (dpCert.rotation.expiration){}: the expiration must be lower than the role's max_ttl (and the CA's own validity); lower dpCert.rotation.expiration or raise max_ttl",
        mosaic_core::duration::format_duration(Duration::from_secs(
            (remaining.as_secs() + 30) / 60 * 60
        )),
        mosaic_core::duration::format_duration(requested),
        if warnings.is_empty() {
            String::new()
        } else {
            format!("; Vault warned: {}", warnings.join("; "))
        }
    ))
}

/// The TLS settings of `conf.fromCp.tls` (caCert resolved), without a client certificate.
pub(crate) fn client_tls(
    mesh: &str,
    backend: &MtlsBackend,
    from_cp: &VaultFromCp,
    secrets: &dyn SecretSource,
) -> Result<ClientTls, CaError> {
    let mut tls = ClientTls::default();
    if let Some(t) = &from_cp.tls {
        if let Some(ca) = &t.ca_cert {
            let pem = ca.resolve(mesh, secrets).map_err(|source| {
                CaError::new(
                    mesh,
                    &backend.name,
                    CaErrorKind::DataSource {
                        field: "conf.fromCp.tls.caCert".to_string(),
                        source,
                    },
                )
            })?;
            tls.ca_pem = Some(pem.into_inner());
        }
        tls.skip_verify = t.skip_verify;
        tls.server_name = Some(t.server_name.clone()).filter(|s| !s.is_empty());
    }
    Ok(tls)
}

/// The CA chain of PKI mount `pki` (`{pki}/cert/ca_chain`, which Vault serves without a token).
pub(crate) async fn read_roots(client: &VaultClient, pki: &str) -> Result<Vec<String>, VaultError> {
    let op = Operation::ReadCa {
        pki: pki.to_string(),
    };
    let resp = client
        .call(
            Method::GET,
            &format!("{pki}/cert/ca_chain"),
            None,
            None,
            &op,
        )
        .await?;
    let bad = |e: &dyn std::fmt::Display| VaultError::Certificate(e.to_string());
    let mut pems = Vec::new();
    if let Some(data) = resp.get("data") {
        if let Some(chain) = data.get("ca_chain").and_then(Value::as_array) {
            for c in chain.iter().filter_map(Value::as_str) {
                pems.extend(split_pem(c).map_err(|e| bad(&e))?);
            }
        }
        if pems.is_empty()
            && let Some(c) = data.get("certificate").and_then(Value::as_str)
        {
            pems.extend(split_pem(c).map_err(|e| bad(&e))?);
        }
    }
    if pems.is_empty() {
        return Err(client.decode_error(
            &op,
            format!("no CA certificate is configured on {pki}: generate or import one"),
        ));
    }
    // Every other issuer of the mount that holds a key (so can sign for it) is trusted too:
    // a new root made with `{pki}/root/rotate/internal` reaches every zone's bundle before an
    // operator makes it the default. Older Vaults without the issuers API answer 404: the
    // default issuer's chain alone is what they have.
    match signing_issuer_chains(client, pki).await {
        Ok(more) => pems.extend(more),
        Err(e) => {
            tracing::debug!(pki, error = %e, "the mount's issuers not listed; its default chain is the bundle")
        }
    }
    dedup(&mut pems);
    Ok(pems)
}

/// The chains (PEM, unexpired certificates only) of every issuer of `pki` that holds a key
/// (`LIST {pki}/issuers`, `{pki}/issuer/<id>/json`: both served without a token).
async fn signing_issuer_chains(client: &VaultClient, pki: &str) -> Result<Vec<String>, VaultError> {
    let op = Operation::ReadCa {
        pki: pki.to_string(),
    };
    let listed = client
        .call(
            Method::GET,
            &format!("{pki}/issuers?list=true"),
            None,
            None,
            &op,
        )
        .await?;
    let ids: Vec<String> = listed
        .pointer("/data/key_info")
        .and_then(Value::as_object)
        .map(|info| {
            info.iter()
                .filter(|(_, i)| {
                    i.get("key_id")
                        .and_then(Value::as_str)
                        .is_some_and(|k| !k.is_empty())
                })
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::new();
    for id in ids {
        let issuer = client
            .call(
                Method::GET,
                &format!("{pki}/issuer/{id}/json"),
                None,
                None,
                &op,
            )
            .await?;
        let data = issuer.get("data");
        let listed = data
            .and_then(|d| d.get("ca_chain"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
            .unwrap_or_default();
        let own = data
            .and_then(|d| d.get("certificate"))
            .and_then(Value::as_str);
        for pem in own.into_iter().chain(listed) {
            for c in split_pem(pem).map_err(|e| VaultError::Certificate(e.to_string()))? {
                if inspect_pem(&c).is_ok_and(|i| i.not_after > now) {
                    out.push(c);
                }
            }
        }
    }
    Ok(out)
}

fn dedup(pems: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    pems.retain(|p| seen.insert(p.clone()));
}
