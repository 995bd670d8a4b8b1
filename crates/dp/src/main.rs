//! `mosaic-dp`: the data-plane agent. It registers a dataplane with its zone and keeps `cert.pem`,
//! `key.pem` and `ca.pem` fresh in `--out-dir`.
//!
//! This build parses and checks the flags; the agent itself lands with the zone issue.
//! Exit codes: 0 ok, 1 runtime error, 2 usage error.

#![deny(warnings)]
#![forbid(unsafe_code)]

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, builder::TypedValueParser};
use mosaic_common::telemetry::{self, LogFormat};

/// Data-plane agent of the Mosaic service mesh.
#[derive(Debug, Parser)]
#[command(name = "mosaic-dp", version, propagate_version = true)]
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
    /// Register the dataplane and keep its certificate files fresh.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Zone control plane's dataplane server (SDS over TLS), e.g. https://zone:5678.
    #[arg(long, value_name = "URL", value_parser = parse_zone_url)]
    zone: url::Url,

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
    check_readable("--ca-cert-file", &args.ca_cert_file)?;
    let token = check_readable("--token-file", &args.token_file)?;
    if token.iter().all(u8::is_ascii_whitespace) {
        anyhow::bail!(
            "--token-file `{}` is empty; put the dataplane token in it",
            args.token_file.display()
        );
    }
    check_readable("--dataplane-file", &args.dataplane_file)?;
    if args.out_dir.exists() && !args.out_dir.is_dir() {
        anyhow::bail!(
            "--out-dir `{}` exists and is not a directory",
            args.out_dir.display()
        );
    }
    tracing::info!(
        zone = %args.zone,
        mesh = %args.mesh,
        name = %args.name,
        ca_cert_file = %args.ca_cert_file.display(),
        dataplane_file = %args.dataplane_file.display(),
        out_dir = %args.out_dir.display(),
        exec_on_rotate = args.exec_on_rotate.as_deref().unwrap_or(""),
        "flags are valid"
    );
    anyhow::bail!(
        "the flags are valid, but the data-plane agent is not implemented in this build yet (it lands \
         with the zone control plane issue)"
    )
}

/// Reads `path` (named by `flag` in errors) to prove it is an existing, readable file.
fn check_readable(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.is_dir() {
        anyhow::bail!("{flag} `{}` is a directory, not a file", path.display());
    }
    fs::read(path).with_context(|| format!("cannot read {flag} `{}`", path.display()))
}

/// `--zone`: an `https` or `grpcs` URL with a host (the dataplane server always speaks TLS).
fn parse_zone_url(s: &str) -> Result<url::Url, String> {
    let example = "expected e.g. https://zone.example:5678";
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e}); {example}"))?;
    if !matches!(url.scheme(), "https" | "grpcs") {
        return Err(format!(
            "{s:?} has scheme {:?}; the dataplane server speaks TLS, use https or grpcs",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host; {example}"));
    }
    Ok(url)
}
