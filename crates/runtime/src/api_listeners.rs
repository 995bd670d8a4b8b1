//! The HTTP API's listeners, served together: plain HTTP on `api.listen` and, unless it is off
//! or yields, the HTTPS API on `api.https_listen` ([`crate::tls_listener`]), one router on both
//! until the stop signal.

use axum::Router;
use tokio::net::TcpListener;

use crate::{
    serve::{self, ServerFailed, Stop},
    tls_listener::{self, HttpsApiError, HttpsApiSettings, TlsListener},
};

/// A server's bound API listeners.
#[derive(Debug)]
pub struct ApiListeners {
    http: TcpListener,
    https: Option<TlsListener>,
}

// === impl ApiListeners ===

impl ApiListeners {
    /// `http` (bound on `api.listen`) with the HTTPS API bound and its certificate set up from
    /// `settings` ([`tls_listener::prepare`]).
    pub async fn with_https(
        http: TcpListener,
        settings: &HttpsApiSettings,
    ) -> Result<Self, HttpsApiError> {
        let https = tls_listener::prepare(settings).await?;
        Ok(Self { http, https })
    }

    /// Serves `router` on both listeners until `stop` ([`serve::serve_api`],
    /// [`tls_listener::serve_api_tls`]); when both fail, the plain HTTP listener's error.
    pub async fn serve(self, router: Router, stop: &Stop) -> Result<(), ServerFailed> {
        let Self { http, https } = self;
        let https = async {
            match https {
                Some(listener) => tls_listener::serve_api_tls(listener, router.clone(), stop).await,
                None => Ok(()),
            }
        };
        let http = serve::serve_api(http, router.clone(), stop);
        let (http_result, https_result) = tokio::join!(http, https);
        http_result?;
        https_result
    }
}
