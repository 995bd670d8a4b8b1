//! The command-line skeleton every Mosaic binary shares: the command line around a binary's
//! subcommands (the global `--log-format` flag, `--version`, `--help`), parsing, telemetry set-up,
//! and what a failed command prints.
//!
//! A binary derives `clap::Subcommand` for its commands, implements [`Binary`] on them (name,
//! about line, the global arguments it adds, how a command runs) and calls [`main`]. Exit codes:
//! 0 ok, 1 runtime error (printed as `error: <chain>`), 2 usage error (clap's message; `--help`
//! and `--version` exit 0).
//!
//! [`server`] (feature `server`): what the control planes add: `run --config FILE` and running a
//! server from its loaded configuration.

use std::{error::Error, fmt::Display, process::ExitCode};

use clap::{
    Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand,
    builder::TypedValueParser as _,
};

use crate::telemetry::{self, LogFormat};

#[cfg(feature = "server")]
pub mod server;

/// The global `--log-format` flag (also `MOSAIC_LOG_FORMAT`).
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

/// No global arguments beyond `--log-format`: [`Binary::Args`] of a binary that adds none.
#[derive(Clone, Copy, Debug, Args)]
#[group(skip)]
pub struct NoArgs {}

/// A binary's whole command line: the global arguments it adds (`A`, listed first in `--help`),
/// `--log-format`, and one of its commands (`C`). [`main`] names it after the binary.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true, about = None, long_about = None)]
pub struct CommandLine<C: Subcommand, A: Args> {
    /// The binary's own global arguments.
    #[command(flatten)]
    pub args: A,
    /// `--log-format`.
    #[command(flatten)]
    pub log: LogArgs,
    /// The command given.
    #[command(subcommand)]
    pub command: C,
}

/// A binary's commands and how they run; implement it on the `clap::Subcommand` enum.
pub trait Binary: Subcommand {
    /// The binary's name (`--version` prints it with the workspace version).
    const NAME: &'static str;
    /// The about line `--help` opens with.
    const ABOUT: &'static str;
    /// The global arguments the binary adds before `--log-format` ([`NoArgs`] for none).
    type Args: Args;
    /// What a failed run returns; printed with `{:#}` (for `anyhow::Error`: the whole chain).
    type Error: Display;

    /// Runs the parsed command.
    fn run(self, args: Self::Args) -> Result<(), Self::Error>;

    /// Whether `err` keeps its line breaks when printed (messages that list one field path a
    /// line); else it is folded onto one line. Default: folded.
    fn keeps_lines(_err: &Self::Error) -> bool {
        false
    }
}

/// Binary `B`'s command line as clap sees it (for `--help` and for tests).
pub fn command<B: Binary>() -> clap::Command {
    CommandLine::<B, B::Args>::command()
        .name(B::NAME)
        .about(B::ABOUT)
}

/// Runs binary `B`: parses its command line (a usage error prints clap's message and exits 2),
/// installs the tracing subscriber in the chosen `--log-format`, runs the command. Success exits
/// 0; a failure (of the set-up or the command) prints `error: <chain>` to stderr and exits 1.
pub fn main<B: Binary>() -> ExitCode {
    let line = parse::<B>(command::<B>().get_matches());
    if let Err(err) = telemetry::init(line.log.log_format) {
        return report(&chain(&err), false);
    }
    match line.command.run(line.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&format!("{err:#}"), B::keeps_lines(&err)),
    }
}

/// Binary `B`'s command line from `matches`; a usage error prints clap's message and exits 2,
/// as `Parser::parse` does.
fn parse<B: Binary>(mut matches: clap::ArgMatches) -> CommandLine<B, B::Args> {
    match CommandLine::from_arg_matches_mut(&mut matches) {
        Ok(line) => line,
        Err(err) => err.format(&mut command::<B>()).exit(),
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

    #[derive(Debug, Subcommand)]
    enum Demo {
        Run,
    }

    impl Binary for Demo {
        const NAME: &str = "demo";
        const ABOUT: &str = "A demo.";
        type Args = NoArgs;
        type Error = std::io::Error;

        fn run(self, _args: NoArgs) -> Result<(), std::io::Error> {
            Ok(())
        }
    }

    #[test]
    fn the_log_format_is_read_wherever_it_was_given() {
        for args in [
            &["demo", "--log-format", "json", "run"][..],
            &["demo", "run", "--log-format", "json"],
        ] {
            let line = parse::<Demo>(command::<Demo>().get_matches_from(args));
            assert_eq!(line.log.log_format, LogFormat::Json, "{args:?}");
            assert!(matches!(line.command, Demo::Run));
        }
        let line = parse::<Demo>(command::<Demo>().get_matches_from(["demo", "run"]));
        assert_eq!(line.log.log_format, LogFormat::Text, "the default");
    }

    #[test]
    fn the_command_line_is_named_after_the_binary() {
        let mut command = command::<Demo>();
        assert_eq!(command.get_name(), "demo");
        assert_eq!(
            command.render_version(),
            format!("demo {}\n", env!("CARGO_PKG_VERSION"))
        );
        let help = command.render_help().to_string();
        assert!(help.starts_with("A demo.\n"), "{help}");
    }

    #[test]
    fn log_format_flag_parses_and_rejects_unknown_formats() {
        let matches =
            command::<Demo>().try_get_matches_from(["demo", "--log-format", "json", "run"]);
        assert_eq!(
            parse::<Demo>(matches.unwrap()).log.log_format,
            LogFormat::Json
        );
        let err = command::<Demo>()
            .try_get_matches_from(["demo", "--log-format", "yaml", "run"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
