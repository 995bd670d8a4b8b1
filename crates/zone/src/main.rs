//! `mosaic-zone`: the zone control plane (KDS client, dataplane registry, certificate issuance, SDS
//! server).
//!
//! `run` opens the zone store, syncs with the global over KDS, and serves the zone HTTP API and
//! diagnostics, issues data-plane certificates and serves them over SDS until SIGTERM/SIGINT.
//! Exit codes: 0 ok, 1 runtime error, 2 usage error.

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use mosaic_runtime::{
    cli::{self, Binary, LogArgs},
    config::LoadConfig as _,
};
use mosaic_zone::config::ZoneConfig;

/// Zone control plane of the Mosaic service mesh.
#[derive(Debug, Parser)]
#[command(name = "mosaic-zone", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the zone control plane.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// TOML config file. May be omitted when the environment carries the settings:
    /// MOSAIC_* variables override the file and the defaults, e.g. MOSAIC_ZONE=east,
    /// MOSAIC_GLOBAL__ADDRESS=grpcs://global:5685.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Stores, keys and tokens under store.data_dir are owner-only (0600/0700).
    mosaic_runtime::data_dir::restrict_new_files();
    cli::main::<Cli>()
}

impl Binary for Cli {
    type Error = anyhow::Error;

    fn log_args(&self) -> LogArgs {
        self.log
    }

    fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Run(args) => run(args),
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = ZoneConfig::load(args.config.as_deref())?;
    let source = match &args.config {
        Some(path) => path.display().to_string(),
        None => "built-in defaults and environment".to_owned(),
    };
    tracing::info!(
        zone = %config.zone,
        config = %serde_json::to_string(&config)?,
        source = %source,
        "effective configuration"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(mosaic_zone::server::serve(
        config,
        mosaic_zone::server::shutdown_signal(),
    ))?;
    Ok(())
}
