//! A fake Kubernetes API server answering `TokenReview`s, for Vault's Kubernetes auth method.
//!
//! What OpenBao 2.7's Kubernetes auth sends (checked against the real server): it first parses the
//! login JWT itself (so it must be a syntactically valid JWS; the signature is not verified unless
//! `pem_keys` is configured) and compares its service-account claims with the review's result; then
//! it `POST`s `/apis/authentication.k8s.io/v1/tokenreviews` with body
//! `{"metadata":{},"spec":{"token":JWT},"status":{"user":{}}}` and `Authorization: Bearer JWT`
//! (with `disable_local_ca_jwt=true` and no `token_reviewer_jwt`). Plain `http://` hosts work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Makes a Kubernetes service-account JWT (ES256, signed with a throw-away key) carrying both the
/// legacy `kubernetes.io/serviceaccount/*` claims and the projected-token `kubernetes.io` claim.
pub fn service_account_jwt(namespace: &str, service_account: &str, uid: &str) -> Result<String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow!("generating JWT signing key"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| anyhow!("loading JWT signing key"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": "mosaic-testkit" });
    let claims = json!({
        "iss": "kubernetes/serviceaccount",
        "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
        "iat": now,
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/secret.name": format!("{service_account}-token"),
        "kubernetes.io/serviceaccount/service-account.name": service_account,
        "kubernetes.io/serviceaccount/service-account.uid": uid,
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": { "name": service_account, "uid": uid },
        },
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key
        .sign(&rng, signing_input.as_bytes())
        .map_err(|_| anyhow!("signing JWT"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(sig.as_ref())
    ))
}

struct Shared {
    jwt: String,
    namespace: String,
    service_account: String,
    uid: String,
    accepting: AtomicBool,
    reviews: AtomicUsize,
}

/// An axum server on a free loopback port that implements the Kubernetes `TokenReview` API for one
/// service account: the JWT from [`FakeKubernetesApi::jwt`] is `authenticated: true` with username
/// `system:serviceaccount:<ns>:<sa>`; anything else is `authenticated: false`. Stopped on drop.
pub struct FakeKubernetesApi {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FakeKubernetesApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKubernetesApi")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeKubernetesApi {
    /// Starts the fake API accepting a freshly made JWT for `<namespace>/<service_account>`.
    pub async fn start(namespace: &str, service_account: &str) -> Result<Self> {
        let uid = format!("uid-{namespace}-{service_account}");
        let jwt = service_account_jwt(namespace, service_account, &uid)?;
        let shared = Arc::new(Shared {
            jwt,
            namespace: namespace.into(),
            service_account: service_account.into(),
            uid,
            accepting: AtomicBool::new(true),
            reviews: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route(
                "/apis/authentication.k8s.io/v1/tokenreviews",
                post(token_review),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding fake Kubernetes API")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT`, for `kubernetes_host`.
    pub fn addr(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The one accepted service-account JWT.
    pub fn jwt(&self) -> &str {
        &self.shared.jwt
    }

    /// The service account's namespace.
    pub fn namespace(&self) -> &str {
        &self.shared.namespace
    }

    /// The service account's name.
    pub fn service_account(&self) -> &str {
        &self.shared.service_account
    }

    /// How many TokenReviews were answered so far.
    pub fn review_count(&self) -> usize {
        self.shared.reviews.load(Ordering::SeqCst)
    }

    /// Whether the accepted JWT still authenticates (false simulates a deleted service account).
    pub fn set_accepting(&self, accepting: bool) {
        self.shared.accepting.store(accepting, Ordering::SeqCst);
    }
}

impl Drop for FakeKubernetesApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn token_review(
    State(shared): State<Arc<Shared>>,
    Json(req): Json<Value>,
) -> (StatusCode, Json<Value>) {
    shared.reviews.fetch_add(1, Ordering::SeqCst);
    let token = req
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let spec = req.get("spec").cloned().unwrap_or_else(|| json!({}));
    let ok = token == shared.jwt && shared.accepting.load(Ordering::SeqCst);
    let status = if ok {
        json!({
            "authenticated": true,
            "user": {
                "username": format!("system:serviceaccount:{}:{}", shared.namespace, shared.service_account),
                "uid": shared.uid,
                "groups": [
                    "system:serviceaccounts",
                    format!("system:serviceaccounts:{}", shared.namespace),
                    "system:authenticated",
                ],
            },
            "audiences": spec.get("audiences").cloned().unwrap_or_else(|| json!([])),
        })
    } else {
        json!({ "authenticated": false, "user": {}, "error": "invalid bearer token" })
    };
    (
        StatusCode::CREATED,
        Json(json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": { "creationTimestamp": null },
            "spec": spec,
            "status": status,
        })),
    )
}
