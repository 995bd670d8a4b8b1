//! `ApiState`: what every handler shares (the store, the admin token, the clock, admission).

use std::sync::Arc;

use mosaic_common::Sensitive;
use time::OffsetDateTime;

use crate::{admission::Admission, store::ResourceStore, tokens::Tokens};

/// The clock writes are stamped with (a function, so tests can fix it).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Shared state of the HTTP API.
#[derive(Clone)]
pub struct ApiState {
    /// Where resources are read and written.
    pub store: Arc<dyn ResourceStore>,
    /// When set, every request except `GET /ready` and `GET /healthy` must carry
    /// `Authorization: Bearer <token>`.
    pub admin_token: Option<Sensitive<String>>,
    /// Stamps writes (`creationTime`, `modificationTime`).
    pub clock: Clock,
    /// Validates writes and turns them into store commands.
    pub validator: Arc<Admission>,
    /// Issues zone and dataplane tokens.
    pub tokens: Arc<Tokens>,
}

// === impl ApiState ===

impl ApiState {
    /// State over `store` with the system clock and admission reading the same store.
    pub fn new(store: Arc<dyn ResourceStore>, admin_token: Option<Sensitive<String>>) -> Self {
        Self {
            validator: Arc::new(Admission::new(store.clone())),
            tokens: Arc::new(Tokens::new(store.clone())),
            store,
            admin_token,
            clock: Arc::new(OffsetDateTime::now_utc),
        }
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
            .field("admin_token", &self.admin_token)
            .finish_non_exhaustive()
    }
}
