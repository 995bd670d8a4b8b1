//! `mosaic-zone`: the zone control plane (KDS client, dataplane registry, certificate issuance, SDS
//! server).
//!
//! `run` opens the zone store, syncs with the global over KDS, and serves the zone HTTP API and
//! diagnostics, issues data-plane certificates and serves them over SDS until SIGTERM/SIGINT.
//! Exit codes: 0 ok, 1 runtime error, 2 usage error.

use std::{future::Future, process::ExitCode};

use clap::Subcommand;
use mosaic_runtime::cli::{
    Binary, NoArgs,
    server::{self, RunArgs, Server},
};
use mosaic_zone::config::ZoneConfig;

/// `mosaic-zone`'s commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the zone control plane.
    Run(RunArgs<Command>),
}

fn main() -> ExitCode {
    server::main::<Command>()
}

impl Binary for Command {
    const NAME: &str = "mosaic-zone";
    const ABOUT: &str = "Zone control plane of the Mosaic service mesh.";
    type Args = NoArgs;
    type Error = anyhow::Error;

    fn run(self, _: NoArgs) -> anyhow::Result<()> {
        let Command::Run(args) = self;
        server::run(args, mosaic_runtime::log_effective_configuration!())?;
        Ok(())
    }
}

/// `run --config`'s help, what the "effective configuration" line says without it, the server.
impl Server for Command {
    type Config = ZoneConfig;
    type Error = mosaic_zone::server::ServeError;
    const CONFIG_HELP: &str = "TOML config file. May be omitted when the environment carries the settings: MOSAIC_* variables override the file and the defaults, e.g. MOSAIC_ZONE=east, MOSAIC_GLOBAL__ADDRESS=grpcs://global:5685";
    const DEFAULT_SOURCE: &str = "built-in defaults and environment";

    fn zone(config: &ZoneConfig) -> Option<&dyn std::fmt::Display> {
        Some(&config.zone)
    }

    fn serve(
        config: ZoneConfig,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Self::Error>> {
        mosaic_zone::server::serve(config, shutdown)
    }
}
