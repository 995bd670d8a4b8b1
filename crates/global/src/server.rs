//! A global replica wired together: the raft node on `raft.listen`, the HTTP API on
//! `api.listen` and over HTTPS on `api.https_listen` (Kuma's 5682; `api.tls_cert`/`api.tls_key`,
//! or a certificate generated into `store.data_dir`), the KDS server on `kds.listen` (TLS: `kds.tls_cert`/`kds.tls_key`, or a
//! certificate generated into `store.data_dir`, see [`crate::kds::tls`]), diagnostics on
//! `diagnostics.listen`, raft gauges for Prometheus, and a graceful shutdown that stops the
//! listeners (KDS sessions tell their zones to reconnect elsewhere and record the disconnect)
//! before raft (so no acknowledged write is cut off).

use std::{future::Future, sync::Arc, time::Duration};

use crate::config::GlobalConfig;
use mosaic_runtime::{
    api_auth::{self, ApiAuthSettings},
    api_listeners::ApiListeners,
    serve::{self, BindError, ServerFailed, Stop},
    tls_listener::HttpsApiSettings,
};

use crate::{
    api::{self, ApiState},
    diagnostics,
    kds::{self, KdsServer, KdsSettings},
    raft::{RaftNode, RaftSettings},
    store::ResourceStore,
};

/// Why the replica could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `FAILPOINTS` could not be applied (test builds).
    #[error(transparent)]
    Failpoints(#[from] crate::failpoint::FailpointError),
    /// The data directory could not be created.
    #[error(transparent)]
    DataDir(#[from] mosaic_runtime::data_dir::DataDirError),
    /// Raft could not start.
    #[error("raft: {0}")]
    Raft(#[from] crate::raft::RaftError),
    /// The raft port's TLS material could not be set up.
    #[error(transparent)]
    RaftTls(#[from] crate::raft::RaftTlsError),
    /// A listener could not bind.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The admin tokens could not be set up, or `api.listen` is exposed without
    /// `api.admin_token_file`.
    #[error(transparent)]
    AdminToken(#[from] api::AdminTokenError),
    /// The KDS server could not start or failed.
    #[error(transparent)]
    Kds(#[from] kds::KdsError),
    /// The configured KDS certificate could not be loaded.
    #[error("kds.tls_cert/kds.tls_key: {0}")]
    KdsTls(#[from] mosaic_runtime::tls::TlsError),
    /// Metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] diagnostics::MetricsError),
    /// Raft stopped on a storage fault (a failed fsync, a full disk): the replica exits so that
    /// its supervisor restarts it from what its disk holds.
    #[error(
        "raft stopped on a storage fault: {0}; this replica exits so that systemd or Kubernetes restarts it from its disk (check the disk: free space, I/O errors in the kernel log)"
    )]
    RaftFault(String),
    /// The HTTPS API could not bind or has no usable certificate.
    #[error(transparent)]
    HttpsApi(#[from] mosaic_runtime::tls_listener::HttpsApiError),
    /// A server failed while running.
    #[error(transparent)]
    Serve(#[from] ServerFailed),
}

/// Runs a replica until `shutdown` completes.
pub async fn serve(
    config: GlobalConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    mosaic_runtime::tls::install_crypto_provider();
    let metrics = diagnostics::install_metrics()?;
    crate::failpoint::setup_from_env()?;
    let data_dir = config.store.data_dir.clone();
    mosaic_runtime::data_dir::prepare(&data_dir)?;
    // Before anything listens: refuses an exposed api.listen without api.admin_token_file.
    let api_auth = api_auth::prepare(
        &ApiAuthSettings::from_config(&config.api, &config.store),
        "global",
    )?;

    let transport = crate::raft::tls::resolve(&config.raft, &data_dir)?;
    let mut settings = RaftSettings::new(
        config.raft.node_id,
        config.raft.listen.to_string(),
        config.raft.advertise.clone(),
        config
            .raft
            .peers
            .iter()
            .map(|p| (p.id, p.addr.clone()))
            .collect(),
        data_dir,
        transport,
    );
    settings.snapshot_logs = config.raft.snapshot_after_logs.max(1);
    settings.keep_logs = (config.raft.snapshot_after_logs / 2).max(1);
    settings.join = config.raft.join;
    settings.vote_with_empty_disk = config.raft.vote_with_empty_disk;
    let node = Arc::new(RaftNode::start(settings).await?);
    tracing::info!(node_id = config.raft.node_id, raft = %config.raft.listen, "raft started");

    let api_listener = serve::bind("api.listen", config.api.listen).await?;
    let diag_listener = serve::bind("diagnostics.listen", config.diagnostics.listen).await?;
    let kds_listener = serve::bind("kds.listen", config.kds.listen).await?;
    let https_api = HttpsApiSettings::from_config(
        &config.api,
        &config.https_api_neighbours(),
        &config.store.data_dir,
        "mosaic-global API",
        vec![mosaic_runtime::tls::host_of(&config.raft.advertise)],
    );
    let api_listeners = ApiListeners::with_https(api_listener, &https_api).await?;
    let kds_configured = match (&config.kds.tls_cert, &config.kds.tls_key) {
        (Some(cert), Some(key)) => Some(mosaic_runtime::tls::load_configured(cert, key)?),
        _ => None,
    };

    let store: Arc<dyn ResourceStore> = node.store();
    let shown_config = serde_json::to_value(&config).unwrap_or_default();
    let api_router = api::router(
        ApiState::new(store, None)
            .with_auth(api_auth)
            .with_unknown_fields(config.api.unknown_fields)
            .with_config(shown_config)
            .with_members(node.membership().clone()),
    );
    let ready_node = node.clone();
    let diag_router = diagnostics::router(
        metrics,
        Arc::new(move || ready_node.metrics().leader_id.is_some()),
    );
    let gauges = tokio::spawn(publish_gauges(node.clone()));

    let stop = Stop::on(shutdown);
    let fault = tokio::spawn(watch_raft_fault(node.clone(), stop.clone()));
    tracing::info!(api = %config.api.listen, https_api = ?config.effective_https_listen(), diagnostics = %config.diagnostics.listen, "serving");
    let api_server = api_listeners.serve(api_router, &stop);
    let diag_server = serve::serve_diagnostics(diag_listener, diag_router, &stop);
    let kds_server = {
        let kds = KdsServer::new(
            node.store(),
            KdsSettings {
                unknown_fields: config.api.unknown_fields,
                ..KdsSettings::default()
            },
        );
        let store = node.store();
        let data_dir = config.store.data_dir.clone();
        let names = kds::tls::default_names(&config.raft.advertise, config.kds.listen);
        let stop = stop.clone();
        let kds_listen = config.kds.listen;
        async move {
            let result = async {
                let identity = match kds_configured {
                    Some(identity) => identity,
                    None => {
                        kds::tls::generated_identity_with_retry(
                            &data_dir,
                            &names,
                            store.as_ref(),
                            stop.receiver(),
                        )
                        .await?
                    }
                };
                tracing::info!(kds = %kds_listen, "KDS serving");
                kds.serve(kds_listener, &identity, stop.stopped()).await
            }
            .await;
            if result.is_err() {
                // Without KDS the replica is useless to zones: stop everything.
                stop.stop();
            }
            result
        }
    };
    let (api_result, diag_result, kds_result) = tokio::join!(api_server, diag_server, kds_server);
    gauges.abort();
    fault.abort();
    let fault = fault.await.ok().flatten();
    tracing::info!("listeners stopped; shutting raft down");
    if let Err(e) = node.shutdown().await {
        tracing::warn!(error = %e, "raft shutdown");
    }
    if let Some(fault) = fault {
        return Err(ServeError::RaftFault(fault));
    }
    api_result?;
    diag_result?;
    kds_result?;
    Ok(())
}

/// Waits until raft stops on its own (a storage error is fatal to openraft: its log or state
/// can no longer be trusted), then stops the listeners: until then the API answers 503, and the
/// replica then exits with the fault (see [`ServeError::RaftFault`]). `None` if raft never
/// stopped on its own.
async fn watch_raft_fault(node: Arc<RaftNode>, stop: Stop) -> Option<String> {
    let mut metrics = node.raft().metrics();
    loop {
        let state = metrics.borrow_and_update().running_state.clone();
        match state {
            Ok(()) => {}
            Err(openraft::error::Fatal::Stopped) => return None,
            Err(fatal) => {
                let fault = fatal.to_string();
                tracing::error!(error = %fault, "raft stopped on a storage fault; stopping this replica so that its supervisor restarts it");
                stop.stop();
                return Some(fault);
            }
        }
        if metrics.changed().await.is_err() {
            return None;
        }
    }
}

/// Publishes `mosaic_raft_is_leader`, `mosaic_raft_term`, `mosaic_raft_applied_index` and the
/// entry formats (`mosaic_raft_entry_format`, `mosaic_raft_readable_entry_format`) once a
/// second.
async fn publish_gauges(node: Arc<RaftNode>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let m = node.metrics();
        metrics::gauge!("mosaic_raft_is_leader").set(if m.is_leader { 1.0 } else { 0.0 });
        metrics::gauge!("mosaic_raft_term").set(m.term as f64);
        metrics::gauge!("mosaic_raft_applied_index").set(m.last_applied as f64);
        let formats = node.entry_formats();
        metrics::gauge!("mosaic_raft_entry_format").set(f64::from(formats.cluster()));
        metrics::gauge!("mosaic_raft_readable_entry_format").set(f64::from(formats.reads()));
    }
}

/// Completes on SIGTERM or SIGINT (see [`mosaic_runtime::process::shutdown_signal`]).
pub use mosaic_runtime::process::shutdown_signal;
