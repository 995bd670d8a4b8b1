//! Failpoints for fault-injection tests, compiled only with the `failpoints` cargo feature (test
//! builds: testkit turns it on; a release build of the product has none).
//!
//! [`failpoint!`](crate::failpoint) expands to `fail::fail_point!` with the feature and to
//! nothing without. A running replica's failpoints are set through its diagnostics listener, as
//! etcd's gofail endpoint does: `GET /failpoints` lists them (`name=actions` lines),
//! `PUT /failpoints/{name}` with a `fail` actions string as body (`return`, `return(lose)`,
//! `panic`, `sleep(500)`, `50%return`, `off`) sets one, `DELETE /failpoints/{name}` clears it.
//! `FAILPOINTS=name=actions;name2=actions` in the environment sets them at start.
//!
//! Failpoints (each named where it sits):
//! - `store.write.ack_before_commit` (`raft::store_impl`): the leader answers a write with the
//!   result it would get against its current state, before proposing it; the proposal follows in
//!   the background (`return(300)`: 300 ms later; `return(lose)`: never). Writes through the
//!   leader's API only (forwarded ones are proposed as usual). A deliberately broken build for the
//!   linearizability checker to catch.
//! - `raft.log.fsync` (`raft::log_store`): appending entries fails as a failed fsync would
//!   (`return`: EIO) or a full disk (`return(enospc)`); openraft is told and stops, and the
//!   replica exits so its supervisor restarts it from its disk.
//! - `raft.apply.crash` (`raft::state_machine`): the process aborts before applying entries that
//!   are durable in the log (a crash between append and apply).
//! - `raft.snapshot.install.crash` (`raft::state_machine`): the process aborts while installing
//!   a snapshot received from the leader: `return(before)` before the received file becomes the
//!   current snapshot, `return` (or `return(after)`) after it did and before the state is
//!   replaced.
//! - `raft.entry_format.readable` (`raft::entry_format`, read at start): `return(1)` makes the
//!   replica read log entry formats up to 1 only, as a release from before group commit would:
//!   it answers so to the leader's probes, and stops on a newer entry.
//! - `raft.propose.delay` (`raft::group_commit`): `return(200)` holds each proposal 200 ms
//!   before it goes to raft, so that concurrent writes queue behind the proposal slots (and
//!   share an entry once the cluster writes groups).

/// The argument of failpoint `name` when it is set to `return` (`Some(None)`) or `return(arg)`
/// (`Some(Some(arg))`); `None` when it is off, and always without the `failpoints` feature. For
/// sites that must do more than return (report an I/O error to openraft, crash the process).
#[cfg(feature = "failpoints")]
pub fn returned(name: &str) -> Option<Option<String>> {
    fail::eval(name, |arg| arg)
}

/// Without the `failpoints` feature no failpoint is ever set.
#[cfg(not(feature = "failpoints"))]
pub fn returned(_name: &str) -> Option<Option<String>> {
    None
}

/// The I/O error failpoint `name` injects: `return(enospc)` a full disk, anything else EIO (an
/// fsync that failed).
pub fn injected_io_error(name: &str, arg: Option<String>) -> std::io::Error {
    let code = match arg.as_deref() {
        Some("enospc") => 28,
        _ => 5,
    };
    let err = std::io::Error::from_raw_os_error(code);
    tracing::error!(failpoint = name, error = %err, "failpoint: injecting a disk fault");
    err
}

/// Crashes the process at failpoint `name` (as a power loss or kill -9 would: no destructor, no
/// flush), saying so first.
pub fn crash(name: &str, what: &str) -> ! {
    tracing::error!(failpoint = name, "failpoint: crashing {what}");
    eprintln!("failpoint {name}: crashing {what}");
    std::process::abort()
}

/// A failpoint: `fail::fail_point!` with the `failpoints` feature, nothing without.
#[cfg(feature = "failpoints")]
#[macro_export]
macro_rules! failpoint {
    ($($t:tt)*) => { ::fail::fail_point!($($t)*) };
}

/// A failpoint: `fail::fail_point!` with the `failpoints` feature, nothing without.
#[cfg(not(feature = "failpoints"))]
#[macro_export]
macro_rules! failpoint {
    ($($t:tt)*) => {};
}

/// Whether this build has failpoints.
pub const ENABLED: bool = cfg!(feature = "failpoints");

/// The environment variable read at start (`name=actions;name2=actions`).
pub const ENV: &str = "FAILPOINTS";

/// A `FAILPOINTS` entry that could not be applied.
#[derive(Debug, thiserror::Error)]
#[error(
    "{ENV}: cannot set failpoint from {entry:?}: {reason}; write name=actions entries separated by ';' (actions as the fail crate reads them, e.g. return, panic, sleep(500), off)"
)]
pub struct FailpointError {
    /// The entry as written.
    pub entry: String,
    /// Why.
    pub reason: String,
}

/// Splits a `FAILPOINTS` value into `(name, actions)` pairs.
pub fn parse_env(value: &str) -> Result<Vec<(String, String)>, FailpointError> {
    value
        .split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| match entry.split_once('=') {
            Some((name, actions)) if !name.trim().is_empty() => {
                Ok((name.trim().to_string(), actions.trim().to_string()))
            }
            _ => Err(FailpointError {
                entry: entry.to_string(),
                reason: "no name=actions".to_string(),
            }),
        })
        .collect()
}

/// Sets the failpoints `FAILPOINTS` names (without the feature: warns that they are ignored).
pub fn setup_from_env() -> Result<(), FailpointError> {
    let Ok(value) = std::env::var(ENV) else {
        return Ok(());
    };
    let entries = parse_env(&value)?;
    if !ENABLED {
        if !entries.is_empty() {
            tracing::warn!(
                "{ENV} is set but this build has no failpoints (built without the `failpoints` feature): ignored"
            );
        }
        return Ok(());
    }
    for (name, actions) in entries {
        configure(&name, &actions).map_err(|reason| FailpointError {
            entry: format!("{name}={actions}"),
            reason,
        })?;
        tracing::warn!(failpoint = %name, %actions, "failpoint set from {ENV}");
    }
    Ok(())
}

#[cfg(feature = "failpoints")]
fn configure(name: &str, actions: &str) -> Result<(), String> {
    fail::cfg(name, actions)
}

#[cfg(not(feature = "failpoints"))]
fn configure(_: &str, _: &str) -> Result<(), String> {
    Ok(())
}

/// `/failpoints` routes for the diagnostics listener.
#[cfg(feature = "failpoints")]
pub fn router() -> axum::Router {
    use axum::{
        extract::Path,
        http::StatusCode,
        routing::{get, put},
    };
    async fn list() -> String {
        let mut all = fail::list();
        all.sort();
        all.into_iter()
            .map(|(name, actions)| format!("{name}={actions}\n"))
            .collect()
    }
    async fn set(Path(name): Path<String>, body: String) -> (StatusCode, String) {
        let actions = body.trim();
        match fail::cfg(name.as_str(), actions) {
            Ok(()) => {
                tracing::warn!(failpoint = %name, %actions, "failpoint set");
                (StatusCode::NO_CONTENT, String::new())
            }
            Err(e) => (
                StatusCode::BAD_REQUEST,
                format!(
                    "cannot set failpoint {name:?} to {actions:?}: {e}; send actions as the fail crate reads them (return, panic, sleep(500), off)\n"
                ),
            ),
        }
    }
    async fn clear(Path(name): Path<String>) -> StatusCode {
        fail::remove(name.as_str());
        tracing::warn!(failpoint = %name, "failpoint cleared");
        StatusCode::NO_CONTENT
    }
    axum::Router::new()
        .route("/failpoints", get(list))
        .route("/failpoints/{name}", put(set).delete(clear))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_entries_are_name_actions_pairs() {
        assert_eq!(
            parse_env("a.b=return; c=sleep(10)->off;").unwrap(),
            vec![
                ("a.b".to_string(), "return".to_string()),
                ("c".to_string(), "sleep(10)->off".to_string())
            ]
        );
        assert!(parse_env("").unwrap().is_empty());
        let e = parse_env("noequals").unwrap_err();
        assert!(e.to_string().contains("\"noequals\""), "{e}");
    }
}
