//! `mosaic-global`: the global control plane (raft-replicated store, resource API, Vault validation,
//! KDS server).
//!
//! `run` starts one replica: raft on `raft.listen`, the HTTP API on `api.listen`, diagnostics on
//! `diagnostics.listen` (KDS arrives with the KDS issue). No config: a single node in
//! `./mosaic-data/global`.
//! Exit codes: 0 ok, 1 runtime error, 2 usage error.

use std::{future::Future, path::PathBuf, process::ExitCode};

use clap::Subcommand;
use mosaic_global::config::GlobalConfig;
use mosaic_runtime::cli::{
    Binary, NoArgs,
    server::{self, RunArgs, Server},
};

/// `mosaic-global`'s commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the global control plane.
    Run(RunArgs<Command>),
    /// Generate the raft cluster's TLS material (see the operator guide, "Raft between replicas").
    #[command(subcommand)]
    Generate(GenerateCommand),
}

#[derive(Debug, Subcommand)]
enum GenerateCommand {
    /// A new raft cluster CA: writes DIR/raft-ca.pem and DIR/raft-ca-key.pem (0600). Run it once
    /// per cluster; give both files to every replica (raft.ca_cert, raft.ca_key), or keep the key
    /// off the replicas and issue each one a certificate with `generate raft-cert`.
    RaftCa {
        /// Directory to write the files into (created if missing; existing files are kept and
        /// the command fails).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// A raft certificate for one replica from the cluster CA: writes
    /// DIR/raft-node-<ID>.pem and DIR/raft-node-<ID>-key.pem (0600), for raft.tls_cert and
    /// raft.tls_key.
    RaftCert {
        /// The cluster CA certificate (raft-ca.pem).
        #[arg(long, value_name = "FILE")]
        ca_cert: PathBuf,
        /// The cluster CA key (raft-ca-key.pem).
        #[arg(long, value_name = "FILE")]
        ca_key: PathBuf,
        /// The replica's raft.node_id.
        #[arg(long, value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
        node_id: u64,
        /// Directory to write the files into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    server::main::<Command>()
}

impl Binary for Command {
    const NAME: &str = "mosaic-global";
    const ABOUT: &str = "Global control plane of the Mosaic service mesh.";
    type Args = NoArgs;
    type Error = anyhow::Error;

    fn run(self, _: NoArgs) -> anyhow::Result<()> {
        match self {
            Command::Run(args) => Ok(server::run(
                args,
                mosaic_runtime::log_effective_configuration!(),
            )?),
            Command::Generate(command) => generate(command),
        }
    }
}

fn generate(command: GenerateCommand) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use mosaic_global::raft::tls::generate as files;
    match command {
        GenerateCommand::RaftCa { out } => {
            let (cert, key) = files::raft_ca(&out)
                .with_context(|| format!("generating a raft CA in {}", out.display()))?;
            println!("{}", cert.display());
            println!("{}", key.display());
        }
        GenerateCommand::RaftCert {
            ca_cert,
            ca_key,
            node_id,
            out,
        } => {
            let (cert, key) = files::raft_cert(&ca_cert, &ca_key, node_id, &out)
                .with_context(|| format!("issuing a raft certificate for node {node_id}"))?;
            println!("{}", cert.display());
            println!("{}", key.display());
        }
    }
    Ok(())
}

/// `run --config`'s help, what the "effective configuration" line says without it, the server.
impl Server for Command {
    type Config = GlobalConfig;
    type Error = mosaic_global::server::ServeError;
    const CONFIG_HELP: &str = "TOML config file. Without it the built-in defaults apply (single node in ./mosaic-data/global). MOSAIC_* environment variables override both, e.g. MOSAIC_KDS__LISTEN=0.0.0.0:5685";
    const DEFAULT_SOURCE: &str = "built-in defaults";

    fn serve(
        config: GlobalConfig,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Self::Error>> {
        mosaic_global::server::serve(config, shutdown)
    }
}
