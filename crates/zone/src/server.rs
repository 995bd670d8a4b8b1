//! `mosaic-zone run` wired together: the store (opened first, so the API serves the cached Mesh
//! before any reconnect), the KDS client, the certificate issuer (reporting CA health into the
//! ZoneInsight), the SDS server on `dp_server.listen`, the HTTP API on `api.listen` (and over
//! HTTPS on `api.https_listen`, Kuma's 5682), diagnostics
//! on `diagnostics.listen`, and a graceful shutdown that stops the listeners and the KDS client,
//! then flushes the store.

use std::{future::Future, sync::Arc};

use mosaic_runtime::{
    api_auth::{self, AdminTokenError, ApiAuthSettings},
    api_listeners::ApiListeners,
    serve::{self, BindError, ServerFailed, Stop},
    tls::{self, ServerIdentity, TlsError},
    tls_listener::HttpsApiSettings,
};

use crate::{
    api::{self, ApiState},
    config::ZoneConfig,
    diagnostics,
    insight::ZoneInsightReporter,
    issuer::{CaHealthHook, Issuer, IssuerSettings, ZoneVault},
    kds::{EndpointError, KdsClient, KdsClientConfig, KdsOptions},
    sds::{self, SdsServer},
    store::{StoreError, ZoneStore},
};

/// Why the zone could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory could not be created.
    #[error(transparent)]
    DataDir(#[from] mosaic_runtime::data_dir::DataDirError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The admin tokens could not be set up, or `api.listen` is exposed without
    /// `api.admin_token_file`.
    #[error(transparent)]
    AdminToken(#[from] AdminTokenError),
    /// `[global]` is unusable.
    #[error(transparent)]
    Global(#[from] EndpointError),
    /// A listener could not bind.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The dataplane server's TLS certificate could not be loaded or generated.
    #[error("dp_server TLS: {0}")]
    DpServerTls(#[from] TlsError),
    /// The dataplane (SDS) server failed.
    #[error(transparent)]
    Sds(#[from] sds::ServeError),
    /// The HTTPS API could not bind or has no usable certificate.
    #[error(transparent)]
    HttpsApi(#[from] mosaic_runtime::tls_listener::HttpsApiError),
    /// A server failed while running.
    #[error(transparent)]
    Serve(#[from] ServerFailed),
}

/// Runs the zone until `shutdown` completes.
pub async fn serve(
    config: ZoneConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with(config, KdsOptions::default(), shutdown).await
}

/// [`serve`] with explicit KDS tunables (tests shorten the backoff).
pub async fn serve_with(
    config: ZoneConfig,
    options: KdsOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    mosaic_runtime::tls::install_crypto_provider();
    let zone = config.zone.as_str().to_string();
    let mut kds_config = KdsClientConfig::from_zone_config(&config)?;
    kds_config.options = options;
    let metrics = diagnostics::metrics_handle();

    let data_dir = config.store.data_dir.clone();
    mosaic_runtime::data_dir::prepare(&data_dir)?;
    // Before anything listens: refuses an exposed api.listen without api.admin_token_file.
    let api_auth = api_auth::prepare(
        &ApiAuthSettings::from_config(&config.api, &config.store),
        "zone",
    )?;
    let store = Arc::new(ZoneStore::open(&data_dir)?);
    tracing::info!(zone = %zone, data_dir = %data_dir.display(), "zone store open");

    let api_listener = serve::bind("api.listen", config.api.listen).await?;
    let diag_listener = serve::bind("diagnostics.listen", config.diagnostics.listen).await?;
    let dp_listener = serve::bind("dp_server.listen", config.dp_server.listen).await?;
    let https_api = HttpsApiSettings::from_config(
        &config.api,
        &config.https_api_neighbours(),
        &config.store.data_dir,
        "mosaic-zone API",
        Vec::new(),
    );
    let api_listeners = ApiListeners::with_https(api_listener, &https_api).await?;
    let dp_identity = dp_server_identity(&config)?;

    let insight = ZoneInsightReporter::new(store.clone(), &zone);
    let settings = IssuerSettings {
        max_in_flight: config.issuer.max_in_flight,
        vault: ZoneVault::from_config(&config),
        ..IssuerSettings::default()
    };
    let hook: Arc<dyn CaHealthHook> = Arc::new(insight.clone());
    let issuer = Issuer::new(store.clone(), Some(hook), settings);
    let rules = sds::TokenRules {
        require_all_tags: config.dataplane_tokens.require_all_tags,
    };
    let sds = SdsServer::with_options(
        store.clone(),
        issuer.clone(),
        &zone,
        rules,
        config.api.unknown_fields,
    );
    let client = KdsClient::new(kds_config, store.clone(), insight);
    let api_router = api::router(ApiState {
        store: store.clone(),
        zone: zone.clone(),
        auth: Arc::new(api_auth),
        unknown_fields: config.api.unknown_fields,
        config: Arc::new(serde_json::to_value(&config).unwrap_or_default()),
    });
    let diag_router = diagnostics::router(metrics, client.status());

    let stop = Stop::on(shutdown);
    let kds_task = tokio::spawn(client.run(stop.receiver()));
    tracing::info!(
        zone = %zone,
        api = %config.api.listen,
        https_api = ?config.effective_https_listen(),
        dp_server = %config.dp_server.listen,
        diagnostics = %config.diagnostics.listen,
        global = %config.global.address,
        "serving"
    );
    let api_server = api_listeners.serve(api_router, &stop);
    let diag_server = serve::serve_diagnostics(diag_listener, diag_router, &stop);
    let sds_server = sds.serve(dp_listener, &dp_identity, stop.stopped());
    let (api_result, diag_result, sds_result) = tokio::join!(api_server, diag_server, sds_server);
    if let Err(e) = kds_task.await {
        tracing::warn!(zone = %zone, error = %e, "KDS client task failed");
    }
    // Certificates are cached off the issuance path: let the last ones reach the disk.
    issuer.flush().await;
    if let Err(e) = store.flush().await {
        tracing::warn!(zone = %zone, error = %e, "final store flush failed");
    }
    tracing::info!(zone = %zone, "stopped");
    api_result?;
    diag_result?;
    sds_result?;
    Ok(())
}

/// The dataplane server's certificate: the configured pair, or one issued from a CA generated
/// once into the data dir (`dp-server-ca.pem`, which data planes pass as `--ca-cert-file`).
fn dp_server_identity(config: &ZoneConfig) -> Result<ServerIdentity, TlsError> {
    let dp = &config.dp_server;
    if let (Some(cert), Some(key)) = (&dp.tls_cert, &dp.tls_key) {
        return tls::load_configured(cert, key);
    }
    let names = tls::default_server_names(&[], dp.listen);
    let identity = tls::load_or_generate(
        &config.store.data_dir,
        DP_SERVER_FILE_PREFIX,
        "mosaic-zone dataplane server",
        &names,
    )?;
    if let Some(ca) = &identity.ca_path {
        tracing::info!(zone = %config.zone, ca = %ca.display(), names = ?names, "dataplane server certificate generated; data planes trust it with --ca-cert-file");
    }
    Ok(identity)
}

/// Prefix of the generated dataplane-server files in the data dir (`dp-server-ca.pem`, ...).
pub const DP_SERVER_FILE_PREFIX: &str = "dp-server";

/// Completes on SIGTERM or SIGINT (see [`mosaic_runtime::process::shutdown_signal`]).
pub use mosaic_runtime::process::shutdown_signal;
