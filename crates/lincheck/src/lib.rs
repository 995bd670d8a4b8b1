//! Test-only linearizability checking for the global's resource API (issue #16).
//!
//! A workload of concurrent clients (create with `If-None-Match: *`, compare-and-set with
//! `If-Match`, `GET ?consistent=true`, delete with `If-Match`, and default reads) runs against the
//! replicas and records a [`History`]; [`check`] decides whether its linearizable part is
//! linearizable for a versioned register per key (linearizability is compositional, so keys are
//! checked one by one), and [`check_monotonic`] whether default reads never went back in time on a
//! replica. Indeterminate operations (timeouts, connection resets, 5xx) may or may not have taken
//! effect: they stay open to the end of the history.
//!
//! Module map:
//! - [`history`]: operations (input, output, call and return times), histories, their text form.
//! - [`model`]: the versioned register: what each operation may do to a key's state.
//! - [`checker`]: the Wing–Gong/Lowe search with memoization of (linearized set, state).
//! - [`monotonic`]: default reads per replica never older than what that replica returned.
//! - [`workload`]: the HTTP clients that make a history against running replicas.

pub mod checker;
pub mod history;
pub mod model;
pub mod monotonic;
pub mod workload;

pub use checker::{Verdict, check, check_key};
pub use history::{History, Input, Op, Output};
pub use monotonic::check_monotonic;
pub use workload::{Workload, WorkloadOptions};
