//! One `StreamSecrets` stream: the first request authenticates and registers the data plane;
//! then the session pushes its secrets whenever the certificate rotates or the mesh's trust
//! bundle changes, follows ACKs and NACKs (an ACK of a response holding the trust bundle is
//! reported to the issuer, which waits for them before serving certificates of a new root),
//! re-issues when the Dataplane's tags change, and ends
//! the stream (with a status saying why) when the Dataplane is deleted, its token expires (a
//! timer at its `exp`), stops verifying (its signing key retired) or is revoked, or the zone
//! shuts down.

use std::{
    collections::{BTreeSet, VecDeque},
    sync::Arc,
};

use mosaic_core::{
    Sensitive,
    resource::{MeshSpec, ResourceType, Spec, mesh_identity::best_match},
    revocation::dataplane_token_revocations,
    sds::{SECRET_TYPE_URL, SecretName},
    template::Tags,
    token::{expires_at, time_left},
};
use mosaic_proto::envoy::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_stream::StreamExt as _;
use tonic::Streaming;
use tracing::Instrument as _;

use super::{
    Shared,
    auth::{Caller, authenticate},
    error::SdsError,
    feed::FeedEvent,
    insight,
    registry::{self, dataplane_key},
    secrets::Material,
};
use crate::{
    issuer::{DataplaneCert, publish::BundleReader},
    store::{Change, ChangeOp, KdsType, StoreKey},
};

type Outbound = mosaic_runtime::stream_channel::Sender<DiscoveryResponse>;

/// A verified, registered data plane and what it asked for.
pub(super) struct Opened {
    /// Who it is.
    pub caller: Caller,
    /// Its vouched-for tags.
    pub tags: Tags,
    /// The secrets it subscribed to.
    pub names: BTreeSet<SecretName>,
}

/// Authenticates `first`, registers the data plane and checks what it asks for. Nothing is
/// stored when a check fails.
pub(super) fn open(
    shared: &Shared,
    token: &Sensitive<String>,
    first: &DiscoveryRequest,
) -> Result<Opened, SdsError> {
    let node = first.node.as_ref().ok_or(SdsError::NoNode)?;
    if node.id.is_empty() {
        return Err(SdsError::NoNode);
    }
    let caller = authenticate(
        &shared.store,
        &shared.zone,
        shared.rules,
        token,
        &node.id,
        OffsetDateTime::now_utc(),
    )?;
    check_type_url(&first.type_url)?;
    let names = secret_names(&caller, &first.resource_names)?;
    // The Mesh must exist before anything is registered; whether it gives this data plane a
    // certificate (an enabled backend, or a MeshIdentity selecting it by its labels) is known
    // once its Dataplane is.
    mesh_exists(shared, &caller.mesh)?;
    let sent = registry::dataplane_text(node.metadata.as_ref())?;
    let tags = registry::register(
        &shared.store,
        &shared.zone,
        &caller,
        sent,
        shared.unknown_fields,
    )?;
    mtls_enabled(shared, &caller.mesh, &caller.name)?;
    Ok(Opened {
        caller,
        tags,
        names,
    })
}

/// Runs one stream until the client goes away or the session ends it.
pub(super) async fn run(
    shared: Arc<Shared>,
    token: Sensitive<String>,
    mut inbound: Streaming<DiscoveryRequest>,
    tx: Outbound,
) {
    let first = match inbound.next().await {
        Some(Ok(req)) => req,
        Some(Err(status)) => {
            tracing::debug!(status = %status, "SDS stream failed before its first request");
            return;
        }
        None => return,
    };
    let opened = match open(&shared, &token, &first) {
        Ok(o) => o,
        Err(e) => {
            let node = first.node.as_ref().map(|n| n.id.as_str()).unwrap_or("");
            tracing::warn!(zone = %shared.zone, node, error = %e, "SDS stream refused");
            let _ = tx.send(Err(e.into())).await;
            return;
        }
    };
    let span = tracing::info_span!(
        "sds",
        zone = %shared.zone,
        mesh = %opened.caller.mesh,
        dataplane = %opened.caller.name
    );
    let mut session = Session::new(shared, token, opened, tx);
    async move {
        match session.serve(inbound).await {
            Ok(()) => tracing::info!("SDS stream closed by the data plane"),
            Err(e) => {
                tracing::warn!(error = %e, "SDS stream ended by the zone");
                let _ = session.tx.send(Err(e.into())).await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// The state of one open stream.
struct Session {
    shared: Arc<Shared>,
    token: Sensitive<String>,
    caller: Caller,
    tags: Tags,
    /// The Dataplane's labels (which MeshIdentity selects it) as of the current watch.
    labels: Option<std::collections::BTreeMap<String, String>>,
    names: BTreeSet<SecretName>,
    tx: Outbound,
    cert: watch::Receiver<Option<Arc<DataplaneCert>>>,
    bundle: Vec<String>,
    /// The generation of `bundle`.
    bundle_generation: u64,
    /// Where this stream's bundle confirmations go.
    reader: Arc<BundleReader>,
    /// The bundle generation of each response sent with the bundle and not ACKed yet, by nonce.
    unconfirmed: VecDeque<(u64, u64)>,
    sent_version: Option<String>,
    recorded_serial: Option<String>,
    nonce: u64,
    /// When the stream was authenticated: re-checks of the token (its keys or revocations
    /// changed) use this instant; its expiry is the timer in `serve`.
    opened_at: OffsetDateTime,
}

// === impl Session ===

impl Session {
    fn new(shared: Arc<Shared>, token: Sensitive<String>, opened: Opened, tx: Outbound) -> Self {
        let cert = shared.issuer.watch(
            &opened.caller.mesh,
            &opened.caller.name,
            opened.tags.clone(),
        );
        let reader = shared.issuer.bundle_reader(&opened.caller.mesh);
        let labels = shared
            .store
            .get_resource(
                ResourceType::Dataplane,
                Some(&opened.caller.mesh),
                &opened.caller.name,
            )
            .ok()
            .flatten()
            .map(|r| r.meta.labels);
        Self {
            reader,
            bundle_generation: 0,
            unconfirmed: VecDeque::new(),
            shared,
            token,
            caller: opened.caller,
            tags: opened.tags,
            labels,
            names: opened.names,
            tx,
            cert,
            bundle: Vec::new(),
            sent_version: None,
            recorded_serial: None,
            nonce: 0,
            opened_at: OffsetDateTime::now_utc(),
        }
    }

    /// Serves until the client closes (`Ok`) or the session must end the stream (`Err`).
    async fn serve(&mut self, mut inbound: Streaming<DiscoveryRequest>) -> Result<(), SdsError> {
        tracing::info!(names = ?self.names.iter().map(ToString::to_string).collect::<Vec<_>>(), "SDS stream opened");
        let mut mesh_changes = self.shared.issuer.mesh_changes(&self.caller.mesh);
        let mut feed = self
            .shared
            .feed
            .subscribe(&self.caller.mesh, &self.caller.name);
        let mut stop = self.shared.stop.clone();
        (self.bundle_generation, self.bundle) = self
            .shared
            .issuer
            .trust_bundle_generation(&self.caller.mesh)
            .await;
        let exp = self.caller.claims.exp;
        let expiry = tokio::time::sleep(time_left(exp, OffsetDateTime::now_utc()));
        tokio::pin!(expiry);
        loop {
            self.push().await?;
            tokio::select! {
                () = &mut expiry => {
                    return Err(SdsError::Expired {
                        mesh: self.caller.mesh.clone(),
                        name: self.caller.name.clone(),
                        at: expires_at(exp),
                    });
                }
                req = inbound.next() => match req {
                    None => return Ok(()),
                    Some(Err(status)) => {
                        tracing::debug!(status = %status, "SDS stream failed");
                        return Ok(());
                    }
                    Some(Ok(req)) => self.request(req)?,
                },
                changed = self.cert.changed() => {
                    if changed.is_err() {
                        return Err(SdsError::ShuttingDown);
                    }
                }
                changed = mesh_changes.changed() => {
                    if changed.is_err() {
                        return Err(SdsError::ShuttingDown);
                    }
                    self.mesh_changed().await?;
                }
                event = feed.recv() => match event {
                    Some(FeedEvent::Change(change)) => self.store_changed(&change).await?,
                    Some(FeedEvent::Lagged) => self.recheck_all().await?,
                    None => return Err(SdsError::ShuttingDown),
                },
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => return Err(SdsError::ShuttingDown),
                _ = self.tx.closed() => return Ok(()),
            }
        }
    }

    /// Sends the secrets if they changed since the last response (and are all ready).
    async fn push(&mut self) -> Result<(), SdsError> {
        let current = self.cert.borrow().clone();
        if let Some(c) = &current
            && self.recorded_serial.as_deref() != Some(c.cert.serial.as_str())
        {
            let backends = self.shared.issuer.backend_names(&c.mesh).await;
            if let Err(e) = insight::record(&self.shared.store, c, backends) {
                tracing::warn!(error = %e, "DataplaneInsight not updated");
            }
            self.recorded_serial = Some(c.cert.serial.clone());
        }
        let material = Material {
            identity: current.as_deref(),
            bundle: &self.bundle,
        };
        let version = material.version();
        if self.sent_version.as_deref() == Some(version.as_str()) {
            return Ok(());
        }
        self.nonce += 1;
        let Some(response) = material.response(&self.names, self.nonce.to_string()) else {
            return Ok(());
        };
        tracing::info!(
            version = %version,
            nonce = self.nonce,
            serial = current.as_ref().map(|c| c.cert.serial.as_str()).unwrap_or(""),
            "secrets pushed"
        );
        if self.tx.send(Ok(response)).await.is_err() {
            return Ok(());
        }
        if self
            .names
            .iter()
            .any(|n| matches!(n, SecretName::MeshCa(_)))
        {
            self.reader.sent();
            // A data plane that never ACKs must not make this grow without end.
            if self.unconfirmed.len() >= 64 {
                self.unconfirmed.pop_front();
            }
            self.unconfirmed
                .push_back((self.nonce, self.bundle_generation));
        }
        self.sent_version = Some(version);
        Ok(())
    }

    /// An ACK, a NACK or a change of subscription.
    fn request(&mut self, req: DiscoveryRequest) -> Result<(), SdsError> {
        if let Some(node) = &req.node
            && !node.id.is_empty()
            && node.id != self.caller.node_id
        {
            return Err(SdsError::NodeChanged {
                first: self.caller.node_id.clone(),
                now: node.id.clone(),
            });
        }
        check_type_url(&req.type_url)?;
        match &req.error_detail {
            Some(status) => tracing::warn!(
                nonce = %req.response_nonce,
                kept_version = %req.version_info,
                code = status.code,
                message = %status.message,
                "the data plane rejected the secrets (NACK)"
            ),
            None if !req.response_nonce.is_empty() => {
                tracing::debug!(nonce = %req.response_nonce, version = %req.version_info, "ACK");
                self.confirmed(&req.response_nonce);
            }
            None => {}
        }
        let names = secret_names(&self.caller, &req.resource_names)?;
        if names != self.names {
            tracing::info!(names = ?names.iter().map(ToString::to_string).collect::<Vec<_>>(), "subscription changed");
            self.names = names;
            self.sent_version = None;
        }
        Ok(())
    }

    /// The data plane ACKed the response of `nonce`: the bundle it held is confirmed.
    fn confirmed(&mut self, nonce: &str) {
        let Ok(nonce) = nonce.parse::<u64>() else {
            return;
        };
        let mut generation = None;
        while let Some(&(n, g)) = self.unconfirmed.front() {
            if n > nonce {
                break;
            }
            if n == nonce {
                generation = Some(g);
            }
            self.unconfirmed.pop_front();
        }
        if let Some(g) = generation {
            self.shared
                .issuer
                .bundle_confirmed(&self.caller.mesh, &self.reader, g);
        }
    }

    /// The Mesh or its Secrets changed (or a backend's roots did): it must still exist with mTLS
    /// on; refresh the bundle.
    async fn mesh_changed(&mut self) -> Result<(), SdsError> {
        mtls_enabled(&self.shared, &self.caller.mesh, &self.caller.name)?;
        (self.bundle_generation, self.bundle) = self
            .shared
            .issuer
            .trust_bundle_generation(&self.caller.mesh)
            .await;
        Ok(())
    }

    /// Reacts to a change of this data plane's Dataplane or of its mesh's token keys or token
    /// revocations.
    async fn store_changed(&mut self, change: &Change) -> Result<(), SdsError> {
        if change.key == dataplane_key(&self.caller) {
            return self.dataplane_changed(change.op);
        }
        if change.key == StoreKey::new(KdsType::DataplaneTokenKey, None, &self.caller.mesh)
            || change.key
                == StoreKey::new(
                    ResourceType::Secret,
                    Some(&self.caller.mesh),
                    &dataplane_token_revocations(&self.caller.mesh),
                )
        {
            return self.reauthenticate();
        }
        if change.key.kind == KdsType::Resource(ResourceType::Mesh)
            && change.key.name == self.caller.mesh
            && change.op == ChangeOp::Delete
        {
            return Err(SdsError::UnknownMesh {
                mesh: self.caller.mesh.clone(),
                zone: self.shared.zone.clone(),
            });
        }
        Ok(())
    }

    /// After missed changes: check everything again.
    async fn recheck_all(&mut self) -> Result<(), SdsError> {
        self.reauthenticate()?;
        self.dataplane_changed(ChangeOp::Put)?;
        self.mesh_changed().await
    }

    fn dataplane_changed(&mut self, op: ChangeOp) -> Result<(), SdsError> {
        let stored = match op {
            ChangeOp::Delete => None,
            ChangeOp::Put => self.shared.store.get_resource(
                ResourceType::Dataplane,
                Some(&self.caller.mesh),
                &self.caller.name,
            )?,
        };
        let Some(stored) = stored else {
            return Err(SdsError::Deleted {
                mesh: self.caller.mesh.clone(),
                name: self.caller.name.clone(),
            });
        };
        let tags = registry::vouched_tags(&self.shared.store, &self.caller, &stored)?;
        let labels_changed = self
            .labels
            .as_ref()
            .is_some_and(|l| *l != stored.meta.labels);
        self.labels = Some(stored.meta.labels);
        if tags != self.tags || labels_changed {
            tracing::info!(
                ?tags,
                labels_changed,
                "the Dataplane's tags or labels changed; issuing a certificate for them"
            );
            self.tags = tags.clone();
            self.cert = self
                .shared
                .issuer
                .watch(&self.caller.mesh, &self.caller.name, tags);
        }
        Ok(())
    }

    /// The mesh's token keys changed (e.g. the Mesh was re-created): the token must still verify
    /// with them (its expiry was checked when the stream opened).
    fn reauthenticate(&mut self) -> Result<(), SdsError> {
        self.caller = authenticate(
            &self.shared.store,
            &self.shared.zone,
            self.shared.rules,
            &self.token,
            &self.caller.node_id,
            self.opened_at,
        )?;
        Ok(())
    }
}

/// Checks a request's type URL (empty means the stream's type).
fn check_type_url(type_url: &str) -> Result<(), SdsError> {
    if type_url.is_empty() || type_url == SECRET_TYPE_URL {
        return Ok(());
    }
    Err(SdsError::TypeUrl {
        got: type_url.to_string(),
        expected: SECRET_TYPE_URL,
    })
}

/// The secrets asked for, all of the caller's mesh; no names means both.
pub(super) fn secret_names(
    caller: &Caller,
    names: &[String],
) -> Result<BTreeSet<SecretName>, SdsError> {
    if names.is_empty() {
        return Ok([
            SecretName::IdentityCert(caller.mesh.clone()),
            SecretName::MeshCa(caller.mesh.clone()),
        ]
        .into());
    }
    names
        .iter()
        .map(|n| {
            let parsed = SecretName::parse(n).ok_or_else(|| SdsError::ResourceName {
                name: n.clone(),
                mesh: caller.mesh.clone(),
            })?;
            if parsed.mesh() != caller.mesh {
                return Err(SdsError::OtherMesh {
                    name: n.clone(),
                    mesh: caller.mesh.clone(),
                });
            }
            Ok(parsed)
        })
        .collect()
}

/// The Mesh exists in the zone.
fn mesh_exists(shared: &Shared, mesh: &str) -> Result<MeshSpec, SdsError> {
    let unknown = || SdsError::UnknownMesh {
        mesh: mesh.to_string(),
        zone: shared.zone.clone(),
    };
    let resource = shared
        .store
        .get_resource(ResourceType::Mesh, None, mesh)?
        .ok_or_else(unknown)?;
    match resource.spec {
        Spec::Mesh(spec) => Ok(spec),
        _ => Err(unknown()),
    }
}

/// The Mesh exists in the zone and gives `dataplane` a certificate: it has an enabled mTLS
/// backend, or a MeshIdentity with a provider selects the data plane by its labels.
pub(super) fn mtls_enabled(shared: &Shared, mesh: &str, dataplane: &str) -> Result<(), SdsError> {
    let spec = mesh_exists(shared, mesh)?;
    if spec
        .mtls
        .as_ref()
        .is_some_and(|m| !m.enabled_backend.is_empty())
    {
        return Ok(());
    }
    let labels = shared
        .store
        .get_resource(ResourceType::Dataplane, Some(mesh), dataplane)?
        .map(|r| r.meta.labels)
        .unwrap_or_default();
    let identities = shared
        .store
        .list_resources(ResourceType::MeshIdentity, Some(mesh))?;
    let issuing = identities.iter().filter_map(|r| match &r.spec {
        Spec::MeshIdentity(m) if m.spec.provider.is_some() => Some((r.meta.name.as_str(), &m.spec)),
        _ => None,
    });
    if best_match(issuing, &labels).is_some() {
        return Ok(());
    }
    Err(SdsError::MtlsDisabled(mesh.to_string()))
}

#[cfg(test)]
mod tests {
    //! Hostile SDS requests (#16 item 6): any type URL and resource names; only the caller's
    //! mesh's two secrets are ever subscribed. `PROPTEST_CASES=N` raises the case count.

    use std::collections::BTreeMap;

    use mosaic_core::token::DataplaneClaims;
    use proptest::prelude::*;

    use super::*;
    use crate::sds::auth::TokenRules;

    fn caller() -> Caller {
        Caller {
            node_id: "default.web-1".into(),
            mesh: "default".into(),
            name: "web-1".into(),
            claims: DataplaneClaims::new(
                "default",
                "web-1",
                BTreeMap::new(),
                OffsetDateTime::now_utc(),
                std::time::Duration::from_secs(60),
            ),
            rules: TokenRules::default(),
        }
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("identity_cert:secret:default".to_string()),
            Just("mesh_ca:secret:default".to_string()),
            Just("mesh_ca:secret:other".to_string()),
            Just("identity_cert:secret:".to_string()),
            "(identity_cert:secret:|mesh_ca:secret:|)[a-z:.]{0,10}",
            "\\PC{0,32}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn requests_subscribe_only_the_callers_secrets(
            names in prop::collection::vec(name(), 0..5),
            type_url in prop_oneof![Just(String::new()), Just(SECRET_TYPE_URL.to_string()), "\\PC{0,40}"],
        ) {
            match secret_names(&caller(), &names) {
                Ok(set) => {
                    prop_assert!(!set.is_empty() && set.len() <= 2);
                    prop_assert!(set.iter().all(|n| n.mesh() == "default"));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            let ok = type_url.is_empty() || type_url == SECRET_TYPE_URL;
            prop_assert_eq!(check_type_url(&type_url).is_ok(), ok);
        }
    }
}
