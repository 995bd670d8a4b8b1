//! `BenchError`: why a benchmark could not run or finish.

use std::time::Duration;

/// Why a benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Something the benchmark needs is missing or would not start.
    #[error("{0}")]
    Setup(String),
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
    /// A server answered with an unexpected status.
    #[error("{what}: HTTP {status}: {body}")]
    Http {
        /// The request.
        what: String,
        /// The status.
        status: u16,
        /// The body (truncated).
        body: String,
    },
    /// A request could not be made.
    #[error("{what}: {source}")]
    Request {
        /// The request.
        what: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A simulated zone's or data plane's stream failed.
    #[error("{0}")]
    Stream(String),
    /// The test harness (`mosaic-testkit`: OpenBao, global and zone processes) failed.
    #[error("{0:#}")]
    Harness(#[from] anyhow::Error),
}

impl BenchError {
    /// A [`BenchError::Http`] with the body cut to 300 characters.
    pub fn http(what: impl Into<String>, status: u16, body: &str) -> Self {
        BenchError::Http {
            what: what.into(),
            status,
            body: body.chars().take(300).collect(),
        }
    }

    /// A [`BenchError::Io`].
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }

    /// A [`BenchError::Request`].
    pub fn request(what: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let what = what.into();
        move |source| BenchError::Request { what, source }
    }
}
