//! Tracing set-up shared by the binaries: logs go to stderr, filtered by `RUST_LOG` (default `info`),
//! as human-readable text or one JSON object per line (`--log-format json|text`).

use std::{fmt, io::IsTerminal, str::FromStr};

use tracing_subscriber::EnvFilter;

/// Filter used when `RUST_LOG` is unset or empty.
pub const DEFAULT_FILTER: &str = "info";

/// Log line format, from `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` is not a valid filter directive.
    #[error("invalid RUST_LOG {value:?} (expected e.g. \"info\" or \"mosaic_global=debug,info\")")]
    InvalidFilter {
        /// The value of `RUST_LOG`.
        value: String,
        /// The parser's error.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed in this process.
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// `--log-format` was neither `text` nor `json`.
#[derive(Debug, thiserror::Error)]
#[error("unknown log format {0:?}; use `text` or `json`")]
pub struct UnknownLogFormat(String);

// === impl LogFormat ===

impl LogFormat {
    /// The accepted spellings, for help texts.
    pub const VARIANTS: [&'static str; 2] = ["text", "json"];
}

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownLogFormat(s.to_owned())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

// === init ===

/// Installs the global tracing subscriber: stderr, `RUST_LOG` filter (default `info`), `format` lines.
pub fn init(format: LogFormat) -> Result<(), TelemetryError> {
    let filter = env_filter(std::env::var("RUST_LOG").ok().as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)
}

/// Builds the filter from the value of `RUST_LOG` (unset or blank = [`DEFAULT_FILTER`]).
fn env_filter(rust_log: Option<&str>) -> Result<EnvFilter, TelemetryError> {
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(EnvFilter::new(DEFAULT_FILTER)),
        Some(value) => EnvFilter::try_new(value).map_err(|source| TelemetryError::InvalidFilter {
            value: value.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parses() {
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
        let err = "yaml".parse::<LogFormat>().unwrap_err().to_string();
        assert!(err.contains("yaml") && err.contains("json"), "{err}");
        assert_eq!(LogFormat::default(), LogFormat::Text);
        for v in LogFormat::VARIANTS {
            assert_eq!(v.parse::<LogFormat>().unwrap().to_string(), v);
        }
    }

    #[test]
    fn filter_defaults_to_info_and_rejects_garbage() {
        assert_eq!(env_filter(None).unwrap().to_string(), "info");
        assert_eq!(env_filter(Some("  ")).unwrap().to_string(), "info");
        assert!(env_filter(Some("mosaic_global=debug,warn")).is_ok());
        let err = env_filter(Some("foo=notalevel")).unwrap_err().to_string();
        assert!(err.contains("RUST_LOG"), "{err}");
    }
}
