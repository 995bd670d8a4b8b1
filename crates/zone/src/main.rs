//! `mosaic-zone`: the zone control plane (KDS client, dataplane registry, certificate issuance, SDS
//! server).
//!
//! `run` opens the zone store, syncs with the global over KDS, and serves the zone HTTP API and
//! diagnostics, issues data-plane certificates and serves them over SDS until SIGTERM/SIGINT.
//! Exit codes: 0 ok, 1 runtime error, 2 usage error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mosaic_runtime::cli::{
    Binary, LogArgs,
    server::{self, RunArgs, Server},
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
    Run(RunArgs<Cli>),
}

fn main() -> ExitCode {
    server::main::<Cli>()
}

impl Binary for Cli {
    type Error = anyhow::Error;

    fn log_args(&self) -> LogArgs {
        self.log
    }

    fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Run(args) => Ok(server::run(
                args,
                mosaic_runtime::log_effective_configuration!(),
                |config| mosaic_zone::server::serve(config, mosaic_zone::server::shutdown_signal()),
            )?),
        }
    }
}

/// `run --config`'s help and what the "effective configuration" line says without it.
impl Server for Cli {
    type Config = ZoneConfig;
    const CONFIG_HELP: &str = "TOML config file. May be omitted when the environment carries the settings: MOSAIC_* variables override the file and the defaults, e.g. MOSAIC_ZONE=east, MOSAIC_GLOBAL__ADDRESS=grpcs://global:5685";
    const DEFAULT_SOURCE: &str = "built-in defaults and environment";

    fn zone(config: &ZoneConfig) -> Option<&dyn std::fmt::Display> {
        Some(&config.zone)
    }
}
