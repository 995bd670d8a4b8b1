//! `mosaic-global`: the global control plane (raft-replicated store, resource API, Vault validation,
//! KDS server).
//!
//! `run` starts one replica: raft on `raft.listen`, the HTTP API on `api.listen`, diagnostics on
//! `diagnostics.listen` (KDS arrives with the KDS issue). No config: a single node in
//! `./mosaic-data/global`.
//! Exit codes: 0 ok, 1 runtime error, 2 usage error.

#![deny(warnings)]
#![forbid(unsafe_code)]

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand, builder::TypedValueParser};
use mosaic_common::{
    config::GlobalConfig,
    telemetry::{self, LogFormat},
};

/// Global control plane of the Mosaic service mesh.
#[derive(Debug, Parser)]
#[command(name = "mosaic-global", version, propagate_version = true)]
struct Cli {
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the global control plane.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// TOML config file. Without it the built-in defaults apply (single node in
    /// ./mosaic-data/global). MOSAIC_* environment variables override both, e.g.
    /// MOSAIC_KDS__LISTEN=0.0.0.0:5685.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = telemetry::init(cli.log_format) {
        return report(&anyhow::Error::new(err));
    }
    let result = match cli.command {
        Command::Run(args) => run(args),
    };
    match result {
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

fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = GlobalConfig::load(args.config.as_deref())?;
    let source = match &args.config {
        Some(path) => path.display().to_string(),
        None => "built-in defaults".to_owned(),
    };
    tracing::info!(
        config = %serde_json::to_string(&config)?,
        source = %source,
        "effective configuration"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(mosaic_global::server::serve(
        config,
        mosaic_global::server::shutdown_signal(),
    ))?;
    Ok(())
}
