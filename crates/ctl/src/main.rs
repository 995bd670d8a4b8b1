//! `mosaicctl`: admin CLI over Mosaic's HTTP API (kumactl-like).
//!
//! Commands: `validate` (offline checks and test issuance), `version`, `config-view`; the API
//! commands (`apply`, `get`, `delete`, `inspect`, `generate`) arrive with the global's API.
//! New commands go into [`Command`] and its `match` in [`run`].
//!
//! Module map:
//! - `validate`: `mosaicctl validate -f FILE [--issue]`.
//!
//! Exit codes: 0 ok, 1 runtime error, 2 usage error.

#![deny(warnings)]
#![forbid(unsafe_code)]

mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, builder::TypedValueParser};
use mosaic_common::{
    Sensitive,
    telemetry::{self, LogFormat},
};

/// Default address of the HTTP API (Kuma's port 5681).
const DEFAULT_API: &str = "http://127.0.0.1:5681";

/// Admin CLI for the Mosaic service mesh's HTTP API.
#[derive(Debug, Parser)]
#[command(name = "mosaicctl", version, propagate_version = true)]
struct Cli {
    /// Control plane HTTP API (global or zone).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "MOSAIC_API",
        default_value = DEFAULT_API,
        value_parser = parse_api_url
    )]
    api: url::Url,

    /// Bearer token for the API (the global's `api.admin_token_file` contents).
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "MOSAIC_TOKEN",
        hide_env_values = true,
        value_parser = |s: &str| Ok::<_, std::convert::Infallible>(Sensitive::new(s.to_owned()))
    )]
    token: Option<Sensitive<String>>,

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
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// mosaicctl's commands. Add new ones here and in [`run`].
#[derive(Debug, Subcommand)]
enum Command {
    /// Print mosaicctl's version.
    Version,
    /// Print the resolved API address and whether a token is set (never the token itself).
    ConfigView,
    /// Check resources (Universal or Kubernetes YAML/JSON, several documents) without a control
    /// plane; with --issue, prove each CA backend by issuing a test certificate from here.
    Validate {
        /// File to read, `-` for standard input.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: std::path::PathBuf,
        /// Issue a test certificate from every backend of every Mesh (secrets named by the Mesh
        /// are taken from Secret documents in the same input).
        #[arg(long)]
        issue: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = telemetry::init(cli.log_format) {
        return report(&anyhow::Error::new(err));
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// Prints `error: <chain>` on one line to stderr; runtime errors exit 1.
fn report(err: &anyhow::Error) -> ExitCode {
    let chain = format!("{err:#}");
    let line: Vec<&str> = chain.split_whitespace().collect();
    eprintln!("error: {}", line.join(" "));
    ExitCode::from(1)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            println!("mosaicctl {}", env!("CARGO_PKG_VERSION"));
        }
        Command::Validate { file, issue } => {
            let input = validate::read_input(&file)?;
            mosaic_common::tls::install_crypto_provider();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            if !runtime.block_on(validate::run(&input, issue))? {
                let what = if file.as_os_str() == "-" {
                    "standard input".to_string()
                } else {
                    file.display().to_string()
                };
                anyhow::bail!("{what} did not validate");
            }
        }
        Command::ConfigView => {
            let token = match &cli.token {
                Some(t) if !t.expose().is_empty() => "set",
                _ => "not set",
            };
            println!("api: {}", cli.api.as_str().trim_end_matches('/'));
            println!("token: {token}");
        }
    }
    Ok(())
}

/// `--api`: an `http` or `https` URL with a host.
fn parse_api_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s)
        .map_err(|e| format!("{s:?} is not a URL ({e}); expected e.g. {DEFAULT_API}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{s:?} has scheme {:?}; use http or https",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host; expected e.g. {DEFAULT_API}"));
    }
    Ok(url)
}
