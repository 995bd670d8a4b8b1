//! What the control-plane binaries (`mosaic-global`, `mosaic-zone`) share beyond the skeleton:
//! owner-only files, the `run --config FILE` arguments, and `run` itself (load the configuration,
//! log it, serve on a multi-thread runtime until the shutdown signal).

use std::{fmt, future::Future, marker::PhantomData, path::PathBuf, process::ExitCode};

use clap::Args;

use super::Binary;
use crate::config::{ConfigError, LoadConfig};

#[doc(hidden)]
pub use tracing as __tracing;

/// A control-plane binary as `run` sees it: the configuration it loads, how it talks about it, and
/// the server it runs. Implement it on the binary's own parser type (`Cli`).
pub trait Server {
    /// The configuration `run` loads.
    type Config: LoadConfig;
    /// Why the server failed.
    type Error;
    /// The help text of `run --config`.
    const CONFIG_HELP: &'static str;
    /// What the "effective configuration" line names as its `source` when no `--config` is given.
    const DEFAULT_SOURCE: &'static str;

    /// The zone `config` is for, logged first as `zone`; `None` (the default): no such field.
    fn zone(_config: &Self::Config) -> Option<&dyn fmt::Display> {
        None
    }

    /// Serves `config` until `shutdown` (SIGTERM/SIGINT) completes.
    fn serve(
        config: Self::Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Self::Error>>;
}

/// The arguments of `run`: `-c, --config FILE` (help text: [`Server::CONFIG_HELP`]).
#[derive(Args)]
pub struct RunArgs<S: Server> {
    #[arg(long, short = 'c', value_name = "FILE", help = S::CONFIG_HELP)]
    config: Option<PathBuf>,
    #[arg(skip)]
    loads: PhantomData<fn() -> S>,
}

impl<S: Server> fmt::Debug for RunArgs<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunArgs")
            .field("config", &self.config)
            .finish()
    }
}

/// What the "effective configuration" line says; see [`log_effective_configuration!`](crate::log_effective_configuration).
#[derive(Debug)]
pub struct Effective {
    /// [`Server::zone`].
    pub zone: Option<String>,
    /// The loaded configuration as JSON.
    pub config: String,
    /// The `--config` path, or [`Server::DEFAULT_SOURCE`].
    pub source: String,
}

/// Why `run` failed; every variant prints (and chains) as the error it wraps.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E> {
    /// The configuration did not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration did not serialize for the log line.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The tokio runtime could not be built.
    #[error(transparent)]
    Runtime(#[from] std::io::Error),
    /// The server failed.
    #[error(transparent)]
    Serve(E),
}

/// A control plane's `main`: new files owner-only (stores, keys and tokens under
/// `store.data_dir` are 0600/0700), then [`super::main`].
pub fn main<B: Binary>() -> ExitCode {
    crate::data_dir::restrict_new_files();
    super::main::<B>()
}

/// A control plane's `run`: loads the configuration (`--config`, then `MOSAIC_*`), hands what
/// [`Effective`] says to `log` (give it [`log_effective_configuration!`](crate::log_effective_configuration)),
/// builds a multi-thread tokio runtime and blocks on [`Server::serve`] until SIGTERM/SIGINT.
pub fn run<S: Server>(
    args: RunArgs<S>,
    log: impl FnOnce(&Effective),
) -> Result<(), RunError<S::Error>> {
    let config = S::Config::load(args.config.as_deref())?;
    let source = match &args.config {
        Some(path) => path.display().to_string(),
        None => S::DEFAULT_SOURCE.to_owned(),
    };
    log(&Effective {
        zone: S::zone(&config).map(|zone| zone.to_string()),
        config: serde_json::to_string(&config)?,
        source,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(S::serve(config, crate::process::shutdown_signal()))
        .map_err(RunError::Serve)
}

/// The `log` argument of [`cli::server::run`](crate::cli::server::run): logs "effective
/// configuration" (fields `zone` if any, `config`, `source`) at info, with the calling module as
/// the target (a macro so that the line keeps the binary's target).
#[macro_export]
macro_rules! log_effective_configuration {
    () => {
        |effective: &$crate::cli::server::Effective| {
            $crate::cli::server::__tracing::info!(
                zone = effective
                    .zone
                    .as_deref()
                    .map($crate::cli::server::__tracing::field::display),
                config = %effective.config,
                source = %effective.source,
                "effective configuration"
            )
        }
    };
}
