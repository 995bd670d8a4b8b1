//! The agent loop: open a stream to the zone, turn every response into files (then run the
//! rotation hook) and answer it with an ACK, or NACK it and keep the old files; when the stream
//! fails, wait (jittered exponential backoff, 1 s → 30 s) and open a new one. Only a refusal by
//! the zone (bad token, wrong Dataplane, ...) ends the loop.
//!
//! Per response: decode and check ([`crate::secrets`]); merge into what the agent holds (a
//! response may carry one secret or both); once both are known, write the files that changed
//! ([`crate::files`]); if any did, run `--exec-on-rotate`; then ACK. The ACK therefore tells the
//! zone that the files are on disk and the hook has run. A file that cannot be written ends the
//! stream (no ACK) and the agent retries.

use std::{convert::Infallible, path::PathBuf, time::Duration};

use mosaic_core::{Sensitive, sds::node_id};
use mosaic_proto::envoy::envoy::service::discovery::v3::DiscoveryResponse;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    backoff::Backoff,
    files::{CA_FILE, CERT_FILE, FilesError, KEY_FILE, Material, OutDir, Written},
    inputs,
    rotate_hook::RotateHook,
    sds_client::{
        NodeIdentity, SdsError, SdsStream, ZoneAddress, ZoneEndpoint, ack_request, nack_request,
    },
    secrets::{IdentityPem, SecretSet, TrustBundlePem, decode_response},
};

/// How long the agent waits for the zone's first answer on a stream before it logs that it is
/// still waiting (it keeps waiting: the zone may be issuing the certificate).
const FIRST_ANSWER_PATIENCE: Duration = Duration::from_secs(30);

/// Everything the agent needs, checked by the caller.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// `--zone`.
    pub zone: ZoneAddress,
    /// `--ca-cert-file`'s content.
    pub ca_pem: Vec<u8>,
    /// Mesh, name and the Dataplane text.
    pub node: NodeIdentity,
    /// `--token-file` (re-read before every connection attempt).
    pub token_file: PathBuf,
    /// The token read at start.
    pub token: Sensitive<String>,
    /// `--out-dir`.
    pub out_dir: PathBuf,
    /// `--exec-on-rotate`.
    pub exec_on_rotate: Option<String>,
    /// Delays between attempts.
    pub backoff: Backoff,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The zone refused this data plane.
    #[error("the zone refused dataplane {node_id}: {message}")]
    Refused {
        /// `<mesh>.<name>`.
        node_id: String,
        /// The zone's message.
        message: String,
    },
    /// The channel cannot be configured.
    #[error(transparent)]
    Setup(SdsError),
    /// The output directory cannot be used.
    #[error(transparent)]
    OutDir(FilesError),
}

/// Why one stream ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Sds(#[from] SdsError),
    #[error("{0}; the previous files stay in place")]
    Files(#[from] FilesError),
}

/// What the agent holds.
#[derive(Debug, Default)]
struct Held {
    identity: Option<IdentityPem>,
    trust_bundle: Option<TrustBundlePem>,
    /// `version_info` of the last accepted response.
    accepted_version: String,
    /// Whether the files have been checked against a complete set since start.
    files_current: bool,
}

/// The running agent.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    endpoint: ZoneEndpoint,
    out: OutDir,
    hook: Option<RotateHook>,
    token: Sensitive<String>,
    held: Held,
}

// === impl Held ===

impl Held {
    fn merge(&mut self, set: SecretSet) {
        if let Some(id) = set.identity {
            self.identity = Some(id);
        }
        if let Some(ca) = set.trust_bundle {
            self.trust_bundle = Some(ca);
        }
    }

    fn material(&self) -> Option<Material<'_>> {
        let id = self.identity.as_ref()?;
        let ca = self.trust_bundle.as_ref()?;
        Some(Material {
            cert_chain: &id.cert_chain,
            key: &id.key,
            trust_bundle: &ca.pem,
        })
    }

    fn missing(&self) -> &'static str {
        match (&self.identity, &self.trust_bundle) {
            (None, None) => "identity_cert and mesh_ca",
            (None, Some(_)) => "identity_cert",
            (Some(_), None) => "mesh_ca",
            (Some(_), Some(_)) => "nothing",
        }
    }
}

// === impl Agent ===

impl Agent {
    /// Prepares the channel and the output directory (created 0700 if missing).
    pub fn new(config: AgentConfig) -> Result<Self, AgentError> {
        let endpoint =
            ZoneEndpoint::new(&config.zone, &config.ca_pem).map_err(AgentError::Setup)?;
        let out = OutDir::prepare(&config.out_dir).map_err(AgentError::OutDir)?;
        let hook = config.exec_on_rotate.clone().map(|cmd| {
            RotateHook::new(
                cmd,
                out.file(CERT_FILE),
                out.file(KEY_FILE),
                out.file(CA_FILE),
            )
        });
        Ok(Self {
            token: config.token.clone(),
            config,
            endpoint,
            out,
            hook,
            held: Held::default(),
        })
    }

    /// Runs until the zone refuses the data plane; every other failure is retried.
    pub async fn run(mut self) -> Result<Infallible, AgentError> {
        let mut backoff = self.config.backoff.clone();
        let node_id = node_id(&self.config.node.mesh, &self.config.node.name);
        loop {
            self.reload_token();
            let error = match self.session(&mut backoff).await {
                Ok(never) => match never {},
                Err(e) => e,
            };
            if let SessionError::Sds(SdsError::Refused { message, .. }) = error {
                return Err(AgentError::Refused { node_id, message });
            }
            let delay = backoff.next_delay();
            tracing::warn!(
                zone = self.endpoint.url(),
                error = %error,
                retry_in = ?delay,
                attempt = backoff.failures(),
                "zone connection failed; retrying (the files on disk stay in place)"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Re-reads the token file so a replaced token is used on the next attempt; keeps the old
    /// token if the file cannot be read or is unusable.
    fn reload_token(&mut self) {
        let path = &self.config.token_file;
        let fresh = inputs::read_file("--token-file", path)
            .and_then(|content| inputs::token(path, &content));
        match fresh {
            Ok(t) if t != self.token => {
                tracing::info!(token_file = %path.display(), "the token file changed; using the new token");
                self.token = t;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-read the token; using the one read before");
            }
        }
    }

    /// One stream, until it fails.
    async fn session(&mut self, backoff: &mut Backoff) -> Result<Infallible, SessionError> {
        let mut stream = SdsStream::open(&self.endpoint, &self.token, &self.config.node).await?;
        tracing::info!(
            zone = self.endpoint.url(),
            node_id = %node_id(&self.config.node.mesh, &self.config.node.name),
            "connected to the zone; asked for identity_cert and mesh_ca"
        );
        let first = {
            let recv = stream.recv();
            tokio::pin!(recv);
            loop {
                tokio::select! {
                    r = &mut recv => break r?,
                    () = tokio::time::sleep(FIRST_ANSWER_PATIENCE) => tracing::warn!(
                        zone = self.endpoint.url(),
                        waited = ?FIRST_ANSWER_PATIENCE,
                        "the zone has not answered yet; still waiting"
                    ),
                }
            }
        };
        backoff.reset();
        self.handle(&stream, first).await?;
        loop {
            let response = stream.recv().await?;
            self.handle(&stream, response).await?;
        }
    }

    /// Applies one response and answers it.
    async fn handle(
        &mut self,
        stream: &SdsStream,
        response: DiscoveryResponse,
    ) -> Result<(), SessionError> {
        let mesh = self.config.node.mesh.clone();
        let set = match decode_response(&response, &mesh) {
            Ok(set) => set,
            Err(reason) => {
                tracing::warn!(
                    version = %response.version_info,
                    nonce = %response.nonce,
                    reason = %reason,
                    "rejecting (NACK) the zone's response; the files stay as they are"
                );
                let reason = reason.to_string();
                stream
                    .send(nack_request(
                        &mesh,
                        &self.held.accepted_version,
                        &response.nonce,
                        &reason,
                    ))
                    .await?;
                return Ok(());
            }
        };
        self.held.merge(set);
        let mut written = Written::default();
        match self.held.material() {
            Some(material) => {
                written = self.out.write(&material)?;
                if written.any() {
                    self.log_rotation(written);
                } else if !self.held.files_current {
                    tracing::info!(out_dir = %self.out.path().display(), "the files on disk are already current");
                }
                self.held.files_current = true;
            }
            None => tracing::info!(
                version = %response.version_info,
                waiting_for = self.held.missing(),
                "accepted a partial response; the files are written once both secrets are known"
            ),
        }
        if written.any()
            && let Some(hook) = &self.hook
        {
            hook.run().await;
        }
        self.held
            .accepted_version
            .clone_from(&response.version_info);
        stream
            .send(ack_request(&mesh, &response.version_info, &response.nonce))
            .await?;
        tracing::debug!(version = %response.version_info, nonce = %response.nonce, "ACK sent");
        Ok(())
    }

    fn log_rotation(&self, written: Written) {
        let files = written.names().join(",");
        let out_dir = self.out.path().display().to_string();
        let roots = self.held.trust_bundle.as_ref().map_or(0, |b| b.roots);
        let Some(id) = &self.held.identity else {
            return;
        };
        let leaf = &id.leaf;
        let spiffe_ids: Vec<&str> = leaf
            .uri_sans
            .iter()
            .filter(|s| s.starts_with("spiffe://"))
            .map(String::as_str)
            .collect();
        let not_after = leaf
            .not_after
            .format(&Rfc3339)
            .unwrap_or_else(|_| leaf.not_after.to_string());
        tracing::info!(
            files,
            out_dir,
            spiffe_ids = spiffe_ids.join(","),
            serial = %leaf.serial,
            issuer = %leaf.issuer,
            not_after,
            chain_len = id.chain_len,
            trust_bundle_roots = roots,
            "certificate files updated"
        );
        let now = OffsetDateTime::now_utc();
        if leaf.not_after <= now {
            tracing::warn!(not_after = %leaf.not_after, "the zone sent a certificate that has already expired; check the clocks of this host and the zone");
        } else if leaf.not_before > now {
            tracing::warn!(not_before = %leaf.not_before, "the zone sent a certificate that is not valid yet; check the clocks of this host and the zone");
        }
    }
}
