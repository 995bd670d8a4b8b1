//! Who may use the global's and the zones' HTTP APIs, in Kuma's manner:
//!
//! - `GET /ready` and `GET /healthy` are open to anyone.
//! - A caller on a loopback address (127.0.0.0/8, `::1`, IPv4-mapped `::ffff:127.x.y.z`) is an
//!   admin when `api.localhost_is_admin` resolves to true (Kuma's `localhostIsAdmin`; the default
//!   without `api.admin_token_file`).
//! - Every other request needs `Authorization: Bearer <token>` with an admin token: 401 without
//!   one, 403 with a wrong one. Admin tokens are the one generated into
//!   `<store.data_dir>/admin-token` on first start (kept, 0600) and the one in
//!   `api.admin_token_file`, if set. Tokens are compared in constant time, as SHA-256 digests so
//!   their lengths do not leak either.
//!
//! [`prepare`] turns a server's configuration into an [`AdminAuth`]: it reads or generates the
//! tokens and refuses a non-loopback `api.listen` without `api.admin_token_file`.
//! [`require_admin`] is the middleware; it is layered over every route and the 404/405
//! fallbacks, so no method or path gets past it. The servers must serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`: a request without the peer's address
//! counts as a remote one.

use std::{
    io::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State, connect_info::MockConnectInfo},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

pub use mosaic_core::api::is_loopback;
use mosaic_core::{Sensitive, api::ApiError};

use crate::config::{ApiConfig, StoreConfig};

/// The generated admin token's file name, in `store.data_dir`.
pub const GENERATED_TOKEN_FILE: &str = "admin-token";

/// Why the admin tokens could not be set up, or why the API may not be served as configured.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    /// The configured file could not be read.
    #[error(
        "could not read api.admin_token_file {path:?}: {source}; check the path and that this user may read it"
    )]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configured file holds no token.
    #[error(
        "api.admin_token_file {path:?} is empty: write a token into it (e.g. `openssl rand -hex 32`) or unset the option"
    )]
    Empty {
        /// The file.
        path: String,
    },
    /// The generated token file could not be read or written.
    #[error(
        "could not {action} the generated admin token file {path:?}: {source}; check that store.data_dir is writable by this user"
    )]
    Generated {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The generated token file exists but holds no token.
    #[error(
        "the generated admin token file {path:?} is empty: delete it and start again to generate a new token"
    )]
    GeneratedEmpty {
        /// The file.
        path: String,
    },
    /// The operating system's random number generator failed.
    #[error("could not generate an admin token: the system's random number generator failed")]
    Random,
    /// `api.listen` is reachable from other hosts and no admin token file is configured.
    #[error(
        "api.listen {listen} is not a loopback address, so the API would be reachable from other hosts, and api.admin_token_file is not set: set api.admin_token_file (e.g. to the token generated in {generated:?}, or with the environment variable MOSAIC_API__ADMIN_TOKEN_FILE) so every caller needs that token, or set api.listen to 127.0.0.1:{port} to serve only this host",
        port = listen.port()
    )]
    Exposed {
        /// The configured `api.listen`.
        listen: SocketAddr,
        /// The generated token file.
        generated: PathBuf,
    },
}

/// What a server's API authentication is made of (from its config: `GlobalConfig::api_auth`,
/// `ZoneConfig::api_auth`).
#[derive(Clone, Debug)]
pub struct ApiAuthSettings {
    /// `api.listen`.
    pub listen: SocketAddr,
    /// `api.admin_token_file`.
    pub admin_token_file: Option<PathBuf>,
    /// The resolved `api.localhost_is_admin`.
    pub localhost_is_admin: bool,
    /// `store.data_dir`, where the generated token lives.
    pub data_dir: PathBuf,
}

impl ApiAuthSettings {
    /// A server's settings from its `[api]` (`listen`, `admin_token_file`, and
    /// `localhost_is_admin` resolved by [`ApiConfig::effective_localhost_is_admin`]) and its
    /// `[store]` (where the generated token lives).
    pub fn from_config(api: &ApiConfig, store: &StoreConfig) -> Self {
        Self {
            listen: api.listen,
            admin_token_file: api.admin_token_file.clone(),
            localhost_is_admin: api.effective_localhost_is_admin(),
            data_dir: store.data_dir.clone(),
        }
    }
}

/// The admin rule of one API: the accepted tokens and whether loopback callers are admins.
#[derive(Clone, Debug, Default)]
pub struct AdminAuth {
    tokens: Vec<Sensitive<String>>,
    localhost_is_admin: bool,
}

/// What [`AdminAuth::decide`] says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Serve it.
    Allow,
    /// 401: no bearer token.
    Unauthorized,
    /// 403: a bearer token that is no admin token.
    Forbidden,
}

// === impl AdminAuth ===

impl AdminAuth {
    /// A rule accepting `tokens` (empty ones are ignored) from anyone and, with
    /// `localhost_is_admin`, every loopback caller.
    pub fn new(
        tokens: impl IntoIterator<Item = Sensitive<String>>,
        localhost_is_admin: bool,
    ) -> Self {
        Self {
            tokens: tokens
                .into_iter()
                .filter(|t| !t.expose().is_empty())
                .collect(),
            localhost_is_admin,
        }
    }

    /// Whether loopback callers are admins without a token.
    pub fn localhost_is_admin(&self) -> bool {
        self.localhost_is_admin
    }

    /// Whether `presented` is one of the admin tokens (every token is compared, in constant time).
    pub fn accepts(&self, presented: &str) -> bool {
        self.tokens
            .iter()
            .fold(false, |ok, t| token_matches(t.expose(), presented) | ok)
    }

    /// The decision for a request: `peer` is the caller's address (`None`: unknown, treated as
    /// remote).
    pub fn decide(
        &self,
        method: &Method,
        path: &str,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Decision {
        if method == Method::GET && matches!(path, "/ready" | "/healthy") {
            return Decision::Allow;
        }
        if self.localhost_is_admin && peer.is_some_and(|p| is_loopback(p.ip())) {
            return Decision::Allow;
        }
        match bearer_token(headers) {
            None => Decision::Unauthorized,
            Some(token) if self.accepts(token) => Decision::Allow,
            Some(_) => Decision::Forbidden,
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether `presented` equals `expected`, in time independent of where they differ.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    use ring::digest::{SHA256, digest};
    let a = digest(&SHA256, expected.as_bytes());
    let b = digest(&SHA256, presented.as_bytes());
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Middleware enforcing `auth` (see the module docs); layer it over the whole router.
pub async fn require_admin(
    State(auth): State<Arc<AdminAuth>>,
    req: Request,
    next: Next,
) -> Response {
    let extensions = req.extensions();
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| extensions.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0));
    match auth.decide(req.method(), req.uri().path(), peer, req.headers()) {
        Decision::Allow => next.run(req).await,
        Decision::Unauthorized => refusal(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "this API needs the admin token: send \"Authorization: Bearer <token>\" with the token from the file api.admin_token_file names, or from admin-token in the server's store.data_dir (mosaicctl: --token, MOSAIC_TOKEN or MOSAIC_ADMIN_TOKEN_FILE)",
        ),
        Decision::Forbidden => refusal(
            StatusCode::FORBIDDEN,
            "Access Denied",
            "the bearer token is not an admin token: use the token from the file api.admin_token_file names, or from admin-token in the server's store.data_dir",
        ),
    }
}

/// A Kuma error body (the servers' `ApiFailure` shape).
fn refusal(status: StatusCode, title: &str, detail: &str) -> Response {
    let body =
        serde_json::to_vec(&ApiError::new(status.as_u16(), title, detail)).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Reads the admin token from `path` (surrounding whitespace trimmed); `None` for an empty path.
pub fn read_admin_token_file(path: &Path) -> Result<Option<Sensitive<String>>, AdminTokenError> {
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| AdminTokenError::Read {
        path: display.clone(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(AdminTokenError::Empty { path: display });
    }
    Ok(Some(Sensitive::new(token.to_string())))
}

/// The generated admin token in `<data_dir>/admin-token`: read if it exists, else 32 random
/// bytes (hex) written there with mode 0600, atomically (a temporary file linked into place, so
/// a concurrent first start cannot replace a token already handed out). The flag says whether
/// it was created now.
pub fn load_or_generate_token(
    data_dir: &Path,
) -> Result<(Sensitive<String>, bool), AdminTokenError> {
    let path = data_dir.join(GENERATED_TOKEN_FILE);
    if let Some(token) = read_generated(&path)? {
        return Ok((token, false));
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| AdminTokenError::Random)?;
    let token = Sensitive::new(hex::encode(bytes));
    let write_err = |source| AdminTokenError::Generated {
        action: "write",
        path: path.display().to_string(),
        source,
    };
    let tmp = data_dir.join(format!(
        ".{GENERATED_TOKEN_FILE}.{}.tmp",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(format!("{}\n", token.expose()).as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    // A hard link never replaces an existing file; where links are not supported, rename.
    let placed = match std::fs::hard_link(&tmp, &path) {
        Ok(()) => std::fs::remove_file(&tmp),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&tmp);
            // Another process got there first: its token is the one.
            return match read_generated(&path)? {
                Some(existing) => Ok((existing, false)),
                None => Err(AdminTokenError::GeneratedEmpty {
                    path: path.display().to_string(),
                }),
            };
        }
        Err(_) => std::fs::rename(&tmp, &path),
    };
    placed.map_err(write_err)?;
    if let Ok(dir) = std::fs::File::open(data_dir) {
        let _ = dir.sync_all();
    }
    Ok((token, true))
}

/// The token in an existing generated file (tightened to 0600 if it is wider), `None` if absent.
fn read_generated(path: &Path) -> Result<Option<Sensitive<String>>, AdminTokenError> {
    let read_err = |source| AdminTokenError::Generated {
        action: "read",
        path: path.display().to_string(),
        source,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(read_err)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the generated admin token file was readable by others; setting it to 0600");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| AdminTokenError::Generated {
                    action: "write",
                    path: path.display().to_string(),
                    source,
                },
            )?;
        }
    }
    let token = text.trim();
    if token.is_empty() {
        return Err(AdminTokenError::GeneratedEmpty {
            path: path.display().to_string(),
        });
    }
    Ok(Some(Sensitive::new(token.to_string())))
}

/// Sets up a server's API authentication: the generated token (created on first start), the
/// configured token file, and the refusal to serve a non-loopback `api.listen` without
/// `api.admin_token_file`. `api` names the server in the log line saying where the token is.
pub fn prepare(settings: &ApiAuthSettings, api: &str) -> Result<AdminAuth, AdminTokenError> {
    let (generated, created) = load_or_generate_token(&settings.data_dir)?;
    let generated_path = settings.data_dir.join(GENERATED_TOKEN_FILE);
    tracing::info!(
        api,
        path = %generated_path.display(),
        created,
        "admin token: callers may send it as \"Authorization: Bearer <token>\" (mosaicctl: MOSAIC_ADMIN_TOKEN_FILE={})",
        generated_path.display()
    );
    let configured = match &settings.admin_token_file {
        Some(path) => read_admin_token_file(path)?,
        None => None,
    };
    if configured.is_none() && !is_loopback(settings.listen.ip()) {
        return Err(AdminTokenError::Exposed {
            listen: settings.listen,
            generated: generated_path,
        });
    }
    tracing::info!(
        api,
        listen = %settings.listen,
        localhost_is_admin = settings.localhost_is_admin,
        admin_token_file = %settings
            .admin_token_file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        "API authentication: callers need an admin token{}",
        if settings.localhost_is_admin { ", except on a loopback address" } else { "" }
    );
    Ok(AdminAuth::new(
        std::iter::once(generated).chain(configured),
        settings.localhost_is_admin,
    ))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use std::net::{Ipv4Addr, Ipv6Addr};

    use axum::http::HeaderValue;

    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", "s3cret "));
        assert!(!token_matches("s3cret", ""));
    }

    #[test]
    fn loopback_addresses() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:127.9.9.9",
        ] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "::",
            "10.0.0.1",
            "192.0.2.2",
            "::ffff:10.0.0.1",
            "fd00::2",
            "::127.0.0.1",
        ] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
        assert!(is_loopback(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(is_loopback(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn decisions() {
        let none = HeaderMap::new();
        let get = Method::GET;
        let open = AdminAuth::new([Sensitive::new("gen".to_string())], true);
        let strict = AdminAuth::new(
            [
                Sensitive::new("gen".to_string()),
                Sensitive::new("conf".to_string()),
            ],
            false,
        );
        // Loopback callers are admins only with localhost_is_admin, whatever they send.
        for peer in ["127.0.0.1:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            assert_eq!(
                open.decide(&get, "/meshes", addr(peer), &none),
                Decision::Allow
            );
            assert_eq!(
                open.decide(&Method::PUT, "/x", addr(peer), &bearer("Bearer nope")),
                Decision::Allow
            );
            assert_eq!(
                strict.decide(&get, "/meshes", addr(peer), &none),
                Decision::Unauthorized
            );
        }
        // Remote and unknown callers need a token, on every method and path.
        for peer in [addr("192.0.2.2:1"), addr("[fd00::2]:1"), None] {
            for method in [
                Method::GET,
                Method::HEAD,
                Method::OPTIONS,
                Method::PUT,
                Method::POST,
                Method::DELETE,
            ] {
                for path in [
                    "/",
                    "/meshes/m/secrets/s",
                    "/tokens/zone",
                    "/nope",
                    "/ready/",
                    "//ready",
                ] {
                    assert_eq!(
                        open.decide(&method, path, peer, &none),
                        Decision::Unauthorized,
                        "{method} {path}"
                    );
                    assert_eq!(
                        strict.decide(&method, path, peer, &bearer("Bearer wrong")),
                        Decision::Forbidden
                    );
                    for ok in ["Bearer gen", "bearer conf", "  BEARER   conf  "] {
                        assert_eq!(
                            strict.decide(&method, path, peer, &bearer(ok)),
                            Decision::Allow,
                            "{ok}"
                        );
                    }
                }
            }
            assert_eq!(strict.decide(&get, "/ready", peer, &none), Decision::Allow);
            assert_eq!(
                strict.decide(&get, "/healthy", peer, &none),
                Decision::Allow
            );
            assert_eq!(
                strict.decide(&Method::POST, "/ready", peer, &none),
                Decision::Unauthorized
            );
            assert_eq!(
                strict.decide(&Method::HEAD, "/ready", peer, &none),
                Decision::Unauthorized
            );
            for wrong in ["Basic gen", "Bearer", "Bearer ", "gen"] {
                assert_ne!(
                    strict.decide(&get, "/", peer, &bearer(wrong)),
                    Decision::Allow,
                    "{wrong}"
                );
            }
        }
        // Tokens never show in Debug output.
        let debug = format!("{strict:?}");
        assert!(!debug.contains("gen") && !debug.contains("conf"), "{debug}");
        // No tokens at all: nothing but loopback (with the flag) gets in.
        let empty = AdminAuth::new([Sensitive::new(String::new())], false);
        assert_eq!(
            empty.decide(&get, "/", addr("10.0.0.1:1"), &bearer("Bearer ")),
            Decision::Unauthorized
        );
        assert_eq!(
            empty.decide(&get, "/", addr("10.0.0.1:1"), &bearer("Bearer x")),
            Decision::Forbidden
        );
    }

    #[test]
    fn token_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        assert!(read_admin_token_file(Path::new("")).unwrap().is_none());
        assert!(matches!(
            read_admin_token_file(&p),
            Err(AdminTokenError::Read { .. })
        ));
        std::fs::write(&p, "  \n").unwrap();
        assert!(matches!(
            read_admin_token_file(&p),
            Err(AdminTokenError::Empty { .. })
        ));
        std::fs::write(&p, "abc\n").unwrap();
        let t = read_admin_token_file(&p).unwrap().unwrap();
        assert_eq!(t.expose(), "abc");
    }

    #[test]
    fn generated_token_is_private_and_kept() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = load_or_generate_token(dir.path()).unwrap();
        assert!(created);
        assert_eq!(first.expose().len(), 64);
        assert!(first.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        let path = dir.path().join(GENERATED_TOKEN_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = load_or_generate_token(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(again.expose(), first.expose());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [GENERATED_TOKEN_FILE]);
        // Widened by hand: tightened again.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        load_or_generate_token(dir.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, "\n").unwrap();
        let err = load_or_generate_token(dir.path()).unwrap_err();
        assert!(err.to_string().contains("delete it"), "{err}");
    }

    #[test]
    fn exposed_listen_needs_a_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let settings = |listen: &str, file: Option<PathBuf>| ApiAuthSettings {
            listen: listen.parse().unwrap(),
            admin_token_file: file,
            localhost_is_admin: true,
            data_dir: dir.path().to_path_buf(),
        };
        for listen in ["0.0.0.0:5681", "[::]:5681", "10.0.0.1:5681"] {
            let err = prepare(&settings(listen, None), "test").unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, AdminTokenError::Exposed { .. }), "{msg}");
            for needle in [
                "reachable from other hosts",
                "api.admin_token_file",
                "MOSAIC_API__ADMIN_TOKEN_FILE",
                "127.0.0.1:5681",
                &dir.path().join(GENERATED_TOKEN_FILE).display().to_string(),
            ] {
                assert!(msg.contains(needle), "{needle}: {msg}");
            }
        }
        let file = dir.path().join("conf-token");
        std::fs::write(&file, "configured\n").unwrap();
        let auth = prepare(&settings("0.0.0.0:5681", Some(file)), "test").unwrap();
        assert!(auth.accepts("configured"));
        let (generated, _) = load_or_generate_token(dir.path()).unwrap();
        assert!(auth.accepts(generated.expose()));
        assert!(!auth.accepts("other"));
        let auth = prepare(&settings("127.0.0.1:5681", None), "test").unwrap();
        assert!(auth.accepts(generated.expose()) && auth.localhost_is_admin());
    }
}
