//! Who may use the global's API: the rule shared with the zones' APIs,
//! [`mosaic_runtime::api_auth`] (loopback callers are admins with `api.localhost_is_admin`; every
//! other request except `GET /ready` and `GET /healthy` needs an admin token: the generated
//! `<data_dir>/admin-token` or the one in `api.admin_token_file`; 401 without, 403 wrong).

pub use mosaic_runtime::api_auth::{
    AdminAuth, AdminTokenError, read_admin_token_file, require_admin, token_matches,
};
