//! `mosaic-dp`: the data-plane agent. It registers a dataplane with its zone and keeps `cert.pem`,
//! `key.pem` and `ca.pem` fresh in `--out-dir` (see the library's module map in `lib.rs`).
//!
//! This file is the binary's edge: flags, the runtime, SIGTERM/SIGINT (exit 0). Logging and
//! errors printed as one `error: ...` line come from `mosaic_runtime::cli`. Exit codes: 0 ok,
//! 1 runtime error, 2 usage error.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use mosaic_dp::{
    agent::{Agent, AgentConfig},
    backoff::Backoff,
    inputs,
    sds_client::{NodeIdentity, ZoneAddress},
};
use mosaic_runtime::{
    cli::{self, Binary, NoArgs},
    process::shutdown_signal,
};

/// `mosaic-dp`'s commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Register the dataplane and keep its certificate files fresh.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Zone control plane's dataplane server (SDS over TLS), e.g. https://zone:5678.
    #[arg(long, value_name = "URL", value_parser = parse_zone_url)]
    zone: ZoneAddress,

    /// PEM file of the CA that signs the zone's dataplane-server certificate.
    #[arg(long, value_name = "PEM")]
    ca_cert_file: PathBuf,

    /// Mesh the dataplane belongs to.
    #[arg(long, value_name = "MESH", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    mesh: String,

    /// Dataplane name.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    name: String,

    /// File holding the dataplane token (`mosaicctl generate dataplane-token`).
    #[arg(long, value_name = "FILE")]
    token_file: PathBuf,

    /// Dataplane resource (Kuma YAML or JSON) to register.
    #[arg(long, value_name = "FILE")]
    dataplane_file: PathBuf,

    /// Directory receiving cert.pem (leaf + chain), key.pem (0600) and ca.pem (trust bundle).
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,

    /// Shell command run after every rotation of the files.
    #[arg(long, value_name = "CMD", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    exec_on_rotate: Option<String>,
}

fn main() -> ExitCode {
    cli::main::<Command>()
}

impl Binary for Command {
    const NAME: &str = "mosaic-dp";
    const ABOUT: &str = "Data-plane agent of the Mosaic service mesh.";
    type Args = NoArgs;
    type Error = anyhow::Error;

    fn run(self, _: NoArgs) -> anyhow::Result<()> {
        match self {
            Command::Run(args) => run(args),
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    mosaic_runtime::tls::install_crypto_provider();
    // Read every file first so that a missing one is named before any content is judged.
    let ca_pem = inputs::read_file("--ca-cert-file", &args.ca_cert_file)?;
    let token = inputs::read_file("--token-file", &args.token_file)?;
    let dataplane = inputs::read_file("--dataplane-file", &args.dataplane_file)?;
    inputs::check_ca(&args.ca_cert_file, &ca_pem)?;
    let token = inputs::token(&args.token_file, &token)?;
    let dataplane_resource =
        inputs::dataplane(&args.dataplane_file, &dataplane, &args.mesh, &args.name)?;
    if args.out_dir.exists() && !args.out_dir.is_dir() {
        anyhow::bail!(
            "--out-dir `{}` exists and is not a directory",
            args.out_dir.display()
        );
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        zone = %args.zone.url,
        node_id = %mosaic_core::sds::node_id(&args.mesh, &args.name),
        ca_cert_file = %args.ca_cert_file.display(),
        dataplane_file = %args.dataplane_file.display(),
        out_dir = %args.out_dir.display(),
        exec_on_rotate = args.exec_on_rotate.as_deref().unwrap_or(""),
        "mosaic-dp starting"
    );
    let config = AgentConfig {
        zone: args.zone,
        ca_pem,
        node: NodeIdentity {
            mesh: args.mesh,
            name: args.name,
            dataplane_resource,
        },
        token_file: args.token_file,
        token,
        out_dir: args.out_dir,
        exec_on_rotate: args.exec_on_rotate,
        backoff: Backoff::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let agent = Agent::new(config)?;
        tokio::select! {
            result = agent.run() => match result {
                Ok(never) => match never {},
                Err(e) => Err(e.into()),
            },
            () = shutdown_signal() => {
                tracing::info!("mosaic-dp stopped");
                Ok(())
            }
        }
    })
}

/// `--zone`: an `https` or `grpcs` URL with a host (the dataplane server always speaks TLS).
fn parse_zone_url(s: &str) -> Result<ZoneAddress, String> {
    ZoneAddress::parse(s)
}
