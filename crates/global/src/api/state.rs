//! `ApiState`: what every handler shares (the store, the admin rule, the clock, admission).

use std::sync::Arc;

use mosaic_core::{Sensitive, resource::UnknownFields};
use mosaic_runtime::api_auth::AdminAuth;
use time::OffsetDateTime;

use crate::{admission::Admission, raft::Membership, store::ResourceStore, tokens::Tokens};

/// The clock writes are stamped with (a function, so tests can fix it).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Shared state of the HTTP API.
#[derive(Clone)]
pub struct ApiState {
    /// Where resources are read and written.
    pub store: Arc<dyn ResourceStore>,
    /// Who is an admin (every request except `GET /ready` and `GET /healthy` must come from
    /// one): see [`mosaic_runtime::api_auth`].
    pub auth: Arc<AdminAuth>,
    /// Stamps writes (`creationTime`, `modificationTime`).
    pub clock: Clock,
    /// Validates writes and turns them into store commands.
    pub validator: Arc<Admission>,
    /// Issues zone and dataplane tokens.
    pub tokens: Arc<Tokens>,
    /// `api.unknown_fields`: what a PUT does with fields Mosaic does not know.
    pub unknown_fields: UnknownFields,
    /// The effective configuration, as `GET /config` shows it.
    pub config: Arc<serde_json::Value>,
    /// The raft membership behind `/raft/members` (none over an embedded store).
    pub members: Option<Membership>,
}

// === impl ApiState ===

impl ApiState {
    /// State over `store` with the system clock and admission reading the same store. With
    /// `admin_token`, every caller needs it (as with `api.admin_token_file` alone); without,
    /// loopback callers are admins and nobody else is.
    pub fn new(store: Arc<dyn ResourceStore>, admin_token: Option<Sensitive<String>>) -> Self {
        let localhost_is_admin = admin_token.is_none();
        Self {
            validator: Arc::new(Admission::new(store.clone())),
            tokens: Arc::new(Tokens::new(store.clone())),
            store,
            auth: Arc::new(AdminAuth::new(admin_token, localhost_is_admin)),
            clock: Arc::new(OffsetDateTime::now_utc),
            unknown_fields: UnknownFields::default(),
            config: Arc::new(serde_json::Value::Object(Default::default())),
            members: None,
        }
    }

    /// Replaces the unknown-field policy (the server's `api.unknown_fields`).
    pub fn with_unknown_fields(mut self, policy: UnknownFields) -> Self {
        self.unknown_fields = policy;
        self
    }

    /// Sets what `GET /config` shows (the server's loaded configuration).
    pub fn with_config(mut self, config: serde_json::Value) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// Serves `/raft/members` over this replica's membership.
    pub fn with_members(mut self, members: Membership) -> Self {
        self.members = Some(members);
        self
    }

    /// Replaces the admin rule (the server's, from [`mosaic_runtime::api_auth::prepare`]).
    pub fn with_auth(mut self, auth: AdminAuth) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The current time by [`ApiState::clock`].
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}
