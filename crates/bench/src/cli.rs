//! The command line: one subcommand per benchmark, and how results are printed.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    cluster::Binaries, error::BenchError, global_writes, intermediate, issuance, memory,
    propagation, report::Report,
};

/// Mosaic's benchmarks. Each prints a markdown table (or JSON with `--json`).
#[derive(Debug, Parser)]
#[command(name = "mosaic-bench", version, about)]
pub struct Cli {
    /// Print the report as JSON instead of markdown.
    #[arg(long, global = true)]
    pub json: bool,
    /// Directory holding `mosaic-global` and `mosaic-zone` (default: next to this binary).
    #[arg(long, global = true, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// A label for this run's variant (e.g. "data dirs on tmpfs"): added to the report's name
    /// and notes.
    #[arg(long, global = true, value_name = "TEXT")]
    pub variant: Option<String>,
    /// The benchmark.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// One benchmark.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Mesh write (API answer) → ACK from every zone, for several zone counts.
    Propagation {
        /// Zone counts (comma-separated); each runs against a fresh single-replica global.
        #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
        zones: Vec<usize>,
        /// Mesh writes per zone count.
        #[arg(long, default_value_t = 30)]
        rounds: usize,
        /// Zones connecting at once.
        #[arg(long, default_value_t = 32)]
        connect_concurrency: usize,
    },
    /// Certificates per second: the zone issuer vs a direct Vault client; sign (EC) vs issue (RSA).
    Issuance {
        /// Requests in flight.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Certificates per EC case.
        #[arg(long, default_value_t = 400)]
        count: usize,
        /// Certificates for the RSA case (default: --count).
        #[arg(long)]
        rsa_count: Option<usize>,
    },
    /// Certificates per second: the zone issuer in `mode: intermediate` vs a direct Vault client.
    IntermediateIssuance {
        /// Requests in flight (both sides).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Certificates for the direct client.
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Certificates for the zone issuer.
        #[arg(long, default_value_t = 5000)]
        zone_count: usize,
    },
    /// Vault calls (OpenBao's audit log, by path) per 1,000 new data planes in `mode: intermediate`.
    IntermediateCalls {
        /// Zones, each with its own intermediate.
        #[arg(long, default_value_t = 2)]
        zones: usize,
        /// New data planes, spread over the zones.
        #[arg(long, default_value_t = 1000)]
        dataplanes: usize,
        /// Requests in flight per zone.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// How long a zone in `mode: intermediate` issues new certificates with Vault stopped,
    /// measured and predicted.
    IntermediateOutage {
        /// `intermediate.ttl`, seconds.
        #[arg(long, default_value_t = 60)]
        intermediate_ttl: u64,
        /// The leaves' lifetime (`dpCert.rotation.expiration`), seconds.
        #[arg(long, default_value_t = 20)]
        leaf_ttl: u64,
        /// Seconds after the intermediate is signed at which Vault is stopped.
        #[arg(long, default_value_t = 5.0)]
        stop_after: f64,
        /// Milliseconds between two new data planes' requests after the stop.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
    },
    /// Write throughput and latency: 3-replica global vs 3-member etcd.
    GlobalWrites {
        /// Concurrent client counts (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,64")]
        clients: Vec<usize>,
        /// Seconds measured per system and client count.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// The `etcd` binary (default: `etcd` on PATH).
        #[arg(long)]
        etcd_bin: Option<PathBuf>,
    },
    /// RSS per connected zone (global) and per data plane (zone).
    Memory {
        /// Connected-zone counts at which the global's RSS is read.
        #[arg(long, value_delimiter = ',', default_value = "0,50,100")]
        zones: Vec<usize>,
        /// Data-plane counts at which the zone's RSS is read.
        #[arg(long, value_delimiter = ',', default_value = "0,500,1000")]
        dataplanes: Vec<usize>,
        /// Milliseconds to wait after each step before reading RSS.
        #[arg(long, default_value_t = 3000)]
        settle_ms: u64,
    },
}

impl Cli {
    /// Runs the chosen benchmark.
    pub async fn run(&self) -> Result<Report, BenchError> {
        let mut report = self.run_command().await?;
        if let Some(v) = &self.variant {
            // A variant explains a result; the aim is judged on the plain run only.
            report.name = format!("{} ({v})", report.name);
            let mut notes = vec![format!(
                "Variant of this run: {v}. The aim is judged on the plain run, not on this one."
            )];
            if !report.verdict_reason.is_empty() {
                notes.push(format!("In short: {}.", report.verdict_reason));
            }
            report.notes.splice(0..0, notes);
            report.verdict = crate::report::Verdict::NoAim;
        }
        Ok(report)
    }

    async fn run_command(&self) -> Result<Report, BenchError> {
        mosaic_testkit::ensure_crypto_provider();
        let bins = || Binaries::locate(self.bin_dir.as_deref());
        match &self.command {
            BenchCommand::Propagation {
                zones,
                rounds,
                connect_concurrency,
            } => {
                propagation::run(
                    &bins()?,
                    &propagation::Options {
                        zones: zones.clone(),
                        rounds: *rounds,
                        connect_concurrency: *connect_concurrency,
                    },
                )
                .await
            }
            BenchCommand::Issuance {
                concurrency,
                count,
                rsa_count,
            } => {
                issuance::run(&issuance::Options {
                    concurrency: *concurrency,
                    count: *count,
                    rsa_count: rsa_count.unwrap_or(*count),
                })
                .await
            }
            BenchCommand::IntermediateIssuance {
                concurrency,
                count,
                zone_count,
            } => {
                intermediate::throughput::run(&intermediate::throughput::Options {
                    concurrency: *concurrency,
                    count: *count,
                    zone_count: *zone_count,
                })
                .await
            }
            BenchCommand::IntermediateCalls {
                zones,
                dataplanes,
                concurrency,
            } => {
                intermediate::calls::run(&intermediate::calls::Options {
                    zones: *zones,
                    dataplanes: *dataplanes,
                    concurrency: *concurrency,
                })
                .await
            }
            BenchCommand::IntermediateOutage {
                intermediate_ttl,
                leaf_ttl,
                stop_after,
                interval_ms,
            } => {
                intermediate::outage::run(&intermediate::outage::Options {
                    intermediate_ttl: Duration::from_secs(*intermediate_ttl),
                    leaf_ttl: Duration::from_secs(*leaf_ttl),
                    stop_after: Duration::try_from_secs_f64(*stop_after).map_err(|e| {
                        BenchError::Setup(format!(
                            "--stop-after {stop_after}: not a number of seconds: {e}"
                        ))
                    })?,
                    interval: Duration::from_millis(*interval_ms),
                })
                .await
            }
            BenchCommand::GlobalWrites {
                clients,
                seconds,
                etcd_bin,
            } => {
                global_writes::run(
                    &bins()?,
                    &global_writes::Options {
                        clients: clients.clone(),
                        seconds: *seconds,
                        etcd_bin: etcd_bin.clone(),
                    },
                )
                .await
            }
            BenchCommand::Memory {
                zones,
                dataplanes,
                settle_ms,
            } => {
                memory::run(
                    &bins()?,
                    &memory::Options {
                        zones: zones.clone(),
                        dataplanes: dataplanes.clone(),
                        settle: Duration::from_millis(*settle_ms),
                    },
                )
                .await
            }
        }
    }

    /// The report as this command line asked: JSON or markdown.
    pub fn render(&self, report: &Report) -> String {
        if self.json {
            report.to_json()
        } else {
            report.to_markdown()
        }
    }
}
