//! The command-line skeleton every Mosaic binary shares: the global `--log-format` flag, parsing,
//! telemetry set-up, and what a failed command prints.
//!
//! A binary derives its `clap::Parser`, flattens [`LogArgs`] into it, implements [`Binary`] and
//! calls [`main`]. Exit codes: 0 ok, 1 runtime error (printed as `error: <chain>`), 2 usage error
//! (clap's message; `--help` and `--version` exit 0).
//!
//! [`server`] (feature `server`): what the control planes add: `run --config FILE` and running a
//! server from its loaded configuration.

use std::{error::Error, fmt::Display, process::ExitCode};

use clap::{Args, Parser, builder::TypedValueParser as _};

use crate::telemetry::{self, LogFormat};

#[cfg(feature = "server")]
pub mod server;

/// The global `--log-format` flag (also `MOSAIC_LOG_FORMAT`); `#[command(flatten)]` it into a
/// binary's command line.
#[derive(Clone, Copy, Debug, Args)]
#[group(skip)]
pub struct LogArgs {
    /// Log line format on stderr (filter with RUST_LOG, default `info`).
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        env = "MOSAIC_LOG_FORMAT",
        default_value = "text",
        value_parser = clap::builder::PossibleValuesParser::new(LogFormat::VARIANTS)
            .try_map(|s| s.parse::<LogFormat>())
    )]
    pub log_format: LogFormat,
}

/// A binary's parsed command line and how it runs.
pub trait Binary: Parser {
    /// What a failed run returns; printed with `{:#}` (for `anyhow::Error`: the whole chain).
    type Error: Display;

    /// The `--log-format` flag it flattened in.
    fn log_args(&self) -> LogArgs;

    /// Runs the parsed command.
    fn run(self) -> Result<(), Self::Error>;

    /// Whether `err` keeps its line breaks when printed (messages that list one field path a
    /// line); else it is folded onto one line. Default: folded.
    fn keeps_lines(_err: &Self::Error) -> bool {
        false
    }
}

/// Runs binary `B`: parses its command line (a usage error prints clap's message and exits 2),
/// installs the tracing subscriber in the chosen `--log-format`, runs the command. Success exits
/// 0; a failure (of the set-up or the command) prints `error: <chain>` to stderr and exits 1.
pub fn main<B: Binary>() -> ExitCode {
    let cli = B::parse();
    if let Err(err) = telemetry::init(cli.log_args().log_format) {
        return report(&chain(&err), false);
    }
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&format!("{err:#}"), B::keeps_lines(&err)),
    }
}

/// Prints `error: <message>` to stderr, folded onto one line unless `keep_lines`; exit code 1.
fn report(message: &str, keep_lines: bool) -> ExitCode {
    eprintln!("error: {}", error_text(message, keep_lines));
    ExitCode::from(1)
}

/// What follows `error: `: `message` without trailing white space, or with every run of white
/// space (line breaks included) folded to one space.
fn error_text(message: &str, keep_lines: bool) -> String {
    if keep_lines {
        message.trim_end().to_owned()
    } else {
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// `err` and its sources, joined by `: ` (as `anyhow` prints a chain with `{:#}`).
fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_joins_sources_like_anyhow() {
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&err), "outer: inner");
        assert_eq!(chain(&std::io::Error::other("alone")), "alone");
    }

    #[test]
    fn error_text_folds_white_space_unless_lines_are_kept() {
        let message = "bad config:\n  kds.lisen: unknown key\n";
        assert_eq!(
            error_text(message, false),
            "bad config: kds.lisen: unknown key"
        );
        assert_eq!(
            error_text(message, true),
            "bad config:\n  kds.lisen: unknown key"
        );
    }

    #[derive(Debug, Parser)]
    #[command(name = "demo")]
    struct Demo {
        #[command(flatten)]
        log: LogArgs,
    }

    #[test]
    fn log_format_flag_parses_and_rejects_unknown_formats() {
        let demo = Demo::try_parse_from(["demo", "--log-format", "json"]).unwrap();
        assert_eq!(demo.log.log_format, LogFormat::Json);
        let err = Demo::try_parse_from(["demo", "--log-format", "yaml"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
