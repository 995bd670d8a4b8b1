//! The admin token: when configured, every request except `GET /ready` and `GET /healthy` must
//! carry `Authorization: Bearer <token>` (401 without it, 403 with a wrong one). Tokens are
//! compared in constant time, as SHA-256 digests so their lengths do not leak either.

use std::path::Path;

use axum::{
    extract::{Request, State},
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use mosaic_common::Sensitive;

use super::{error::ApiFailure, state::ApiState};

/// Why the admin token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    /// The file could not be read.
    #[error("could not read api.admin_token_file {path:?}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file holds no token.
    #[error(
        "api.admin_token_file {path:?} is empty: write a token into it (e.g. `openssl rand -hex 32`) or unset the option"
    )]
    Empty {
        /// The file.
        path: String,
    },
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

/// Middleware enforcing the admin token.
pub async fn require_admin_token(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.admin_token else {
        return next.run(req).await;
    };
    let open = req.method() == Method::GET && matches!(req.uri().path(), "/ready" | "/healthy");
    if open {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    match presented {
        None => ApiFailure::Unauthorized.into_response(),
        Some(token) if token_matches(expected.expose(), &token) => next.run(req).await,
        Some(_) => ApiFailure::Forbidden.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", "s3cret "));
        assert!(!token_matches("s3cret", ""));
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
}
