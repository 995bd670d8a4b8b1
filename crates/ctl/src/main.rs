//! `mosaicctl`: admin CLI over Mosaic's HTTP API (kumactl-like).
//!
//! Commands: `apply`, `get`, `delete`, `inspect zones`, `generate zone-token|dataplane-token`,
//! `raft members|add|promote|remove`, `rotate signing-key`, `retire signing-key` (over the HTTP API), `validate` (offline checks and test issuance), `version`, `config-view`.
//! New commands go into [`Command`] and its `match` in [`run`].
//!
//! Module map:
//! - `output`: `out!`/`outln!`, stdout writes that end quietly when the pipe closes.
//! - `config`: API address and token: flag > `MOSAIC_API`/`MOSAIC_TOKEN`/`MOSAIC_ADMIN_TOKEN_FILE`
//!   > `ctl.toml` > default (the token: `./mosaic-data/global/admin-token`, loopback APIs only).
//! - `client`: the HTTP client, Kuma paths per type, errors (unreachable, server `ApiError`).
//! - `apply`: `apply -f FILE|DIR|- [-v NAME=VALUE] [--dry-run]` (secrets, then meshes, then the rest).
//! - `template`: `-v` placeholders (kumactl's mustache subset).
//! - `get`: `get ...` tables/YAML/JSON and `delete ...`.
//! - `inspect`: `inspect zones` (online state, CA health per mesh).
//! - `generate`: `generate zone-token|dataplane-token`.
//! - `raft`: `raft members|add|promote|remove`, the global's raft membership.
//! - `signing_keys`: `get signing-keys`, `rotate signing-key`, `retire signing-key`.
//! - `table`: kumactl-style tables and ages.
//! - `validate`: `mosaicctl validate -f FILE [--issue]`.
//!
//! Exit codes: 0 ok, 1 runtime error, 2 usage error.

#[macro_use]
mod output;
mod apply;
mod client;
mod config;
mod generate;
mod get;
mod inspect;
mod raft;
mod signing_keys;
mod table;
mod template;
mod validate;

use std::{future::Future, process::ExitCode};

use clap::{Args, Subcommand};
use mosaic_core::{Sensitive, duration::KumaDuration};
use mosaic_runtime::cli::{self, Binary};

use crate::{
    client::{Client, ClientError},
    get::{DeleteKind, GetKind, Output},
};

/// Default address of the HTTP API (Kuma's port 5681).
const DEFAULT_API: &str = "http://127.0.0.1:5681";

/// mosaicctl's global arguments (beside `--log-format`).
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Control plane HTTP API (global or zone). Else $MOSAIC_API, else `api` in
    /// $XDG_CONFIG_HOME/mosaic/ctl.toml (~/.config/mosaic/ctl.toml), else http://127.0.0.1:5681.
    #[arg(long, global = true, value_name = "URL", value_parser = parse_api_url)]
    api: Option<url::Url>,

    /// Bearer token for the API (the server's `api.admin_token_file` contents or its generated
    /// `<data_dir>/admin-token`). Else $MOSAIC_TOKEN, else the file $MOSAIC_ADMIN_TOKEN_FILE
    /// names, else `token` in the config file, else (for an API on a loopback IP address only)
    /// ./mosaic-data/global/admin-token if it exists.
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        value_parser = |s: &str| Ok::<_, std::convert::Infallible>(Sensitive::new(s.to_owned()))
    )]
    token: Option<Sensitive<String>>,

    /// PEM file of the CA an https:// API's certificate is checked against (kumactl's
    /// --ca-cert-file; a control plane's generated one is <data_dir>/api-server-ca.pem). Else
    /// $MOSAIC_CA_CERT_FILE, else `ca_cert_file` in the config file, else the system's roots.
    #[arg(long, global = true, value_name = "FILE")]
    ca_cert_file: Option<std::path::PathBuf>,
}

/// mosaicctl's commands. Add new ones here and in [`run`].
#[derive(Debug, Subcommand)]
enum Command {
    /// Print mosaicctl's version.
    Version,
    /// Print the resolved API address and whether a token is set and where it came from (never
    /// the token itself).
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
        /// Refuse fields Mosaic does not know (by default they are ignored with a warning, as
        /// Kuma ignores them): for CI pipelines, where a typo must fail.
        #[arg(long)]
        strict: bool,
    },
    /// Create or update resources (Universal or Kubernetes YAML/JSON, several documents):
    /// Secrets first, then Meshes, then the rest; stops at the first refusal.
    Apply {
        /// File or directory to apply (a directory: its .yaml, .yml and .json files, by name;
        /// not its subdirectories); `-` for standard input.
        #[arg(short = 'f', long = "file", value_name = "FILE|DIR|-")]
        file: std::path::PathBuf,
        /// Variable to replace in the input: fills `{{ NAME }}` placeholders (unset ones become
        /// empty); repeat, or give NAME=VALUE,NAME2=VALUE2.
        #[arg(short = 'v', long = "var", value_name = "NAME=VALUE", value_parser = template::parse_vars)]
        vars: Vec<Vec<(String, String)>>,
        /// Fill in the variables and print the resources (YAML) without applying them.
        #[arg(long)]
        dry_run: bool,
        /// Refuse fields Mosaic does not know, sending nothing (by default they are dropped
        /// with a warning, as Kuma drops them).
        #[arg(long)]
        strict: bool,
    },
    /// List resources, or show one.
    Get {
        /// What to list.
        #[arg(value_enum)]
        kind: GetKind,
        /// Show only this one.
        name: Option<String>,
        /// Mesh of secrets and dataplanes.
        #[arg(short = 'm', long, default_value = "default")]
        mesh: String,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Maximum number of elements to return (one page of the list; the table then says the
        /// --offset of the next page). Unset: every element.
        #[arg(long, value_name = "N", conflicts_with = "name")]
        size: Option<u32>,
        /// The offset that indicates the starting element of the list to retrieve (from the
        /// previous page's footer or `next`).
        #[arg(long, value_name = "OFFSET", conflicts_with = "name")]
        offset: Option<String>,
    },
    /// Delete a resource.
    Delete {
        /// What to delete.
        #[arg(value_enum)]
        kind: DeleteKind,
        /// Its name.
        name: String,
        /// Mesh of a secret or dataplane.
        #[arg(short = 'm', long, default_value = "default")]
        mesh: String,
        /// Delete a Mesh even though zones report data planes in it.
        #[arg(long)]
        force: bool,
    },
    /// Show state the control plane has gathered.
    Inspect {
        #[command(subcommand)]
        what: Inspect,
    },
    /// Ask the global for a token.
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
    /// The global's raft membership: list it, add a replica as a learner, promote it, remove a
    /// member (replacing a dead replica: add, promote, remove).
    Raft {
        #[command(subcommand)]
        what: RaftCommand,
    },
    /// Add the next token signing key: it signs every new token, the older keys keep verifying.
    Rotate {
        #[command(subcommand)]
        what: Rotate,
    },
    /// Retire an older token signing key: tokens it signed are refused, their connections end.
    Retire {
        #[command(subcommand)]
        what: Retire,
    },
}

/// `rotate` targets.
#[derive(Debug, Subcommand)]
enum Rotate {
    /// The signing key of zone tokens, or of a mesh's dataplane tokens.
    SigningKey {
        /// Whose key: zone or dataplane.
        #[arg(value_enum)]
        purpose: signing_keys::KeyPurpose,
        /// The mesh (dataplane keys).
        #[arg(short = 'm', long, default_value = "default")]
        mesh: String,
    },
}

/// `retire` targets.
#[derive(Debug, Subcommand)]
enum Retire {
    /// A signing key of zone tokens, or of a mesh's dataplane tokens, by serial (see
    /// `mosaicctl get signing-keys zone|dataplane`); the newest cannot be retired.
    SigningKey {
        /// Whose key: zone or dataplane.
        #[arg(value_enum)]
        purpose: signing_keys::KeyPurpose,
        /// The key's serial.
        serial: u32,
        /// The mesh (dataplane keys).
        #[arg(short = 'm', long, default_value = "default")]
        mesh: String,
    },
}

/// `raft` commands.
#[derive(Debug, Subcommand)]
enum RaftCommand {
    /// Every member: role, leader, how far behind the leader it is.
    Members {
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Add a replica (started with `raft.join = true`) as a learner; it receives the log but does
    /// not vote.
    Add {
        /// Its `raft.node_id`.
        id: u64,
        /// Its `raft.advertise`, host:port.
        address: String,
    },
    /// Make a learner that has caught up a voter.
    Promote {
        /// The learner's node id.
        id: u64,
    },
    /// Remove a voter or learner (not the leader, not the last voter).
    Remove {
        /// The member's node id.
        id: u64,
    },
}

/// `inspect` targets.
#[derive(Debug, Subcommand)]
enum Inspect {
    /// Zones: KDS online state, version, CA health per mesh (Connected/Unknown).
    Zones,
    /// Data planes: tags, state (Online while it holds an unexpired certificate), certificate.
    Dataplanes {
        /// Only this mesh's (default: every mesh).
        #[arg(short = 'm', long)]
        mesh: Option<String>,
        /// Only data planes with this tag, KEY=VALUE (the value matches by substring, `*` any);
        /// repeat to require several on one inbound.
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_inspect_tag)]
        tags: Vec<(String, String)>,
        /// Only gateway data planes.
        #[arg(long)]
        gateway: bool,
    },
    /// Meshes: data planes online/total, services, secrets, certificate backends.
    Meshes,
    /// One data plane: its tags, inbounds, state and mTLS certificate.
    Dataplane {
        /// The data plane's name.
        name: String,
        /// Its mesh.
        #[arg(short = 'm', long, default_value = "default")]
        mesh: String,
    },
}

/// `--tag KEY=VALUE` of `inspect dataplanes`.
fn parse_inspect_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!(
            "{s:?} is not KEY=VALUE: write e.g. --tag kuma.io/service=backend"
        )),
    }
}

/// `generate` targets.
#[derive(Debug, Subcommand)]
enum Generate {
    /// A zone token (for the zone's `global.token_file`, which needs scope cp); default validity
    /// 8760h.
    ZoneToken(generate::ZoneTokenArgs),
    /// A dataplane token (for `mosaic-dp run --token-file`); default validity 24h.
    DataplaneToken(generate::DataplaneTokenArgs),
}

/// An error whose lines (field paths) are worth keeping apart when printed.
#[derive(Debug)]
struct Listed(String);

impl std::fmt::Display for Listed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Listed {}

fn main() -> ExitCode {
    cli::main::<Command>()
}

impl Binary for Command {
    const NAME: &str = "mosaicctl";
    const ABOUT: &str = "Admin CLI for the Mosaic service mesh's HTTP API.";
    type Args = GlobalArgs;
    type Error = anyhow::Error;

    fn run(self, args: GlobalArgs) -> anyhow::Result<()> {
        run(self, args)
    }

    /// Errors that carry field paths (a server's `ApiError` or invalid documents) keep one line
    /// each; the rest are printed on one line.
    fn keeps_lines(err: &anyhow::Error) -> bool {
        err.chain().any(|e| {
            e.is::<Listed>() || matches!(e.downcast_ref::<ClientError>(), Some(ClientError::Api(_)))
        })
    }
}

/// Runs `fut` on a fresh single-threaded runtime.
fn block_on<F: Future>(fut: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(fut))
}

fn run(command: Command, args: GlobalArgs) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let settings = || {
        let flags = config::Flags {
            api: args.api.clone(),
            token: args.token.clone(),
            ca_cert_file: args.ca_cert_file.clone(),
        };
        config::resolve_flags(
            flags,
            &env,
            config::config_path(&env).as_deref(),
            std::path::Path::new("."),
        )
    };
    let client = || -> anyhow::Result<Client> {
        let s = settings()?;
        tracing::debug!(api = %s.api, api_source = ?s.api_source, token_source = ?s.token_source, token = %s.token_origin, "settings");
        let ca = match &s.ca_cert_file {
            Some((path, source)) => Some(config::read_ca_cert_file(path, *source)?),
            None => None,
        };
        Ok(Client::new(s.api, s.token, ca.as_deref())?)
    };
    match &command {
        Command::Version => {
            outln!("mosaicctl {}", env!("CARGO_PKG_VERSION"));
        }
        Command::Validate {
            file,
            issue,
            strict,
        } => {
            let input = validate::read_input(file)?;
            mosaic_runtime::tls::install_crypto_provider();
            if !block_on(validate::run(&input, *issue, *strict))?? {
                let what = if file.as_os_str() == "-" {
                    "standard input".to_string()
                } else {
                    file.display().to_string()
                };
                anyhow::bail!("{what} did not validate");
            }
        }
        Command::ConfigView => {
            let s = settings()?;
            outln!("api: {}", s.api.as_str().trim_end_matches('/'));
            outln!("token: {}", s.token_origin);
            if let Some((path, _)) = &s.ca_cert_file {
                outln!("ca-cert-file: {}", path.display());
            }
        }
        Command::Apply {
            file,
            vars,
            dry_run,
            strict,
        } => {
            let inputs = apply::read_inputs(file)?;
            let vars = vars.iter().flatten().cloned().collect();
            let resources = apply::plan_inputs(&inputs, &vars, *strict)?;
            if *dry_run {
                apply::dry_run(&resources)?;
            } else {
                let client = client()?;
                block_on(apply::run(&client, &resources))??;
            }
        }
        Command::Get {
            kind: GetKind::SigningKeys,
            name,
            mesh,
            output,
            ..
        } => {
            let purpose = signing_keys::parse_purpose(name.as_deref())?;
            let client = client()?;
            block_on(signing_keys::list(&client, purpose, mesh, *output))??;
        }
        Command::Get {
            kind,
            name,
            mesh,
            output,
            size,
            offset,
        } => {
            let client = client()?;
            let page = get::Page {
                size: *size,
                offset: offset.clone(),
            };
            block_on(get::run(
                &client,
                *kind,
                name.as_deref(),
                mesh,
                *output,
                &page,
            ))??;
        }
        Command::Delete {
            kind,
            name,
            mesh,
            force,
        } => {
            let client = client()?;
            block_on(get::delete(&client, *kind, name, mesh, *force))??;
        }
        Command::Inspect { what } => {
            let client = client()?;
            match what {
                Inspect::Zones => block_on(inspect::zones(&client))??,
                Inspect::Dataplanes {
                    mesh,
                    tags,
                    gateway,
                } => {
                    let query = inspect::DataplaneQuery {
                        mesh: mesh.clone(),
                        tags: tags.clone(),
                        gateway: *gateway,
                    };
                    block_on(inspect::dataplanes(&client, &query))??;
                }
                Inspect::Meshes => block_on(inspect::meshes(&client))??,
                Inspect::Dataplane { name, mesh } => {
                    block_on(inspect::dataplane(&client, mesh, name))??;
                }
            }
        }
        Command::Generate { what } => {
            let client = client()?;
            match what {
                Generate::ZoneToken(args) => {
                    block_on(generate::zone_token(&client, args))??;
                }
                Generate::DataplaneToken(args) => {
                    block_on(generate::dataplane_token(&client, args))??;
                }
            }
        }
        Command::Raft { what } => {
            let client = client()?;
            match what {
                RaftCommand::Members { output } => block_on(raft::members(&client, *output))??,
                RaftCommand::Add { id, address } => block_on(raft::add(&client, *id, address))??,
                RaftCommand::Promote { id } => block_on(raft::promote(&client, *id))??,
                RaftCommand::Remove { id } => block_on(raft::remove(&client, *id))??,
            }
        }
        Command::Rotate {
            what: Rotate::SigningKey { purpose, mesh },
        } => {
            let client = client()?;
            block_on(signing_keys::rotate(&client, *purpose, mesh))??;
        }
        Command::Retire {
            what:
                Retire::SigningKey {
                    purpose,
                    serial,
                    mesh,
                },
        } => {
            let client = client()?;
            block_on(signing_keys::retire(&client, *purpose, mesh, *serial))??;
        }
    }
    Ok(())
}

/// `--valid-for`: a Kuma duration.
fn parse_duration(s: &str) -> Result<KumaDuration, String> {
    s.parse::<KumaDuration>().map_err(|e| e.to_string())
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
