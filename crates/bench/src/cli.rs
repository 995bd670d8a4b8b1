//! The command line: one subcommand per benchmark, and how results are printed.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    cluster::Binaries, error::BenchError, global_writes, intermediate, issuance, memory,
    propagation, report::Report, zone_scale,
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
    /// One real zone with many data planes over a Vault-backed Mesh: connect and re-issue
    /// (backend switch), restart with cached certificates, rotation spread, Vault recovery.
    ZoneScale {
        /// Sizes: `small` (~5 min on 2 cores) or `full` (the numbers); the options
        /// below override single values.
        #[arg(long, value_enum, default_value = "small")]
        scale: zone_scale::Scale,
        /// N: data planes connected to the zone.
        #[arg(long)]
        dataplanes: Option<usize>,
        /// M: new data planes waiting while Vault is down.
        #[arg(long)]
        waiting: Option<usize>,
        /// Seconds Vault is down.
        #[arg(long)]
        outage_seconds: Option<u64>,
        /// Lifetime (seconds) of the switched-to backend's certificates, which rotate in the run.
        #[arg(long)]
        lifetime_seconds: Option<u64>,
        /// The zone's `issuer.max_in_flight`.
        #[arg(long)]
        max_in_flight: Option<usize>,
        /// Data planes connecting at once.
        #[arg(long)]
        connect_concurrency: Option<usize>,
        /// Data planes reconnecting at once after the zone's restart.
        #[arg(long)]
        reconnect_concurrency: Option<usize>,
        /// Certificates the direct client issues to measure Vault's throughput.
        #[arg(long)]
        throughput_count: Option<usize>,
    },
}

impl Cli {
    /// Runs the chosen benchmark: its report, or one per phase (`zone-scale`).
    pub async fn run(&self) -> Result<Vec<Report>, BenchError> {
        let reports = match self.run_zone_scale().await {
            Some(r) => r?,
            None => vec![self.run_command().await?],
        };
        Ok(reports.into_iter().map(|r| self.with_variant(r)).collect())
    }

    fn with_variant(&self, mut report: Report) -> Report {
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
        report
    }

    /// `zone-scale`, which reports one table per phase; `None` for the other benchmarks.
    async fn run_zone_scale(&self) -> Option<Result<Vec<Report>, BenchError>> {
        let BenchCommand::ZoneScale {
            scale,
            dataplanes,
            waiting,
            outage_seconds,
            lifetime_seconds,
            max_in_flight,
            connect_concurrency,
            reconnect_concurrency,
            throughput_count,
        } = &self.command
        else {
            return None;
        };
        mosaic_testkit::ensure_crypto_provider();
        let d = zone_scale::Options::for_scale(*scale);
        let opts = zone_scale::Options {
            dataplanes: dataplanes.unwrap_or(d.dataplanes),
            waiting: waiting.unwrap_or(d.waiting),
            outage: outage_seconds.map_or(d.outage, Duration::from_secs),
            lifetime: lifetime_seconds.map_or(d.lifetime, Duration::from_secs),
            max_in_flight: max_in_flight.unwrap_or(d.max_in_flight),
            connect_concurrency: connect_concurrency.unwrap_or(d.connect_concurrency),
            reconnect_concurrency: reconnect_concurrency.unwrap_or(d.reconnect_concurrency),
            throughput_count: throughput_count.unwrap_or(d.throughput_count),
        };
        Some(match Binaries::locate(self.bin_dir.as_deref()) {
            Ok(bins) => zone_scale::run(&bins, &opts).await,
            Err(e) => Err(e),
        })
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
            BenchCommand::ZoneScale { .. } => Err(BenchError::Setup(
                "zone-scale reports one table per phase: run it through Cli::run".into(),
            )),
        }
    }

    /// The reports as this command line asked: markdown (one section each), or JSON (the
    /// report itself when there is one, else an array of them).
    pub fn render(&self, reports: &[Report]) -> String {
        if self.json {
            match reports {
                [one] => one.to_json(),
                many => serde_json::to_string_pretty(many)
                    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
            }
        } else {
            reports
                .iter()
                .map(Report::to_markdown)
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}
