//! What the two stream loops of one KDS session share.

use std::sync::Arc;

use super::KdsOptions;
use crate::{insight::ZoneInsightReporter, store::ZoneStore};

/// The context of one session (both streams).
#[derive(Clone, Debug)]
pub struct SessionCtx {
    /// The zone store.
    pub store: Arc<ZoneStore>,
    /// The zone's insight (response counters).
    pub insight: ZoneInsightReporter,
    /// This zone's name.
    pub zone: String,
    /// This session's id.
    pub session_id: String,
    /// Client options (chunk size, ACK deadline).
    pub options: KdsOptions,
}
