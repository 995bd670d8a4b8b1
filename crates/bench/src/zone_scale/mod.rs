//! `zone-scale`: one real zone with many data planes (issue #17, aims 3, 4 and 5), on real
//! processes: a single-replica `mosaic-global`, a `mosaic-zone`, OpenBao with a Vault-backed
//! Mesh (two backends, issue mode, EC), and N simulated data planes (`mosaic-dp`'s SDS client,
//! own token each) in this process. Vault is reached through a measuring proxy ([`proxy`]).
//!
//! The phases, in the order they run (each is one [`Report`]):
//! 1. [`reissue`] (aim 3): N data planes connect (backend A, 24h certificates): zone RSS, CPU
//!    and connect time; Vault's own throughput for backend B measured straight at OpenBao at
//!    `max_in_flight` concurrency; then the Mesh's enabled backend is switched to B and every
//!    data plane must receive a certificate from B (issuer and chain checked): completion time
//!    against N / throughput, peak in flight at Vault against `max_in_flight`.
//! 2. [`restart`] (aim 4): the zone is stopped (SIGTERM) and started on the same data dir with N
//!    valid cached certificates; Vault calls from the stop on, and the time from the zone
//!    accepting SDS connections to every (reconnected) data plane holding its certificate.
//! 3. [`rotation`] (aim 3): backend B's short lifetime makes every certificate rotate; the
//!    rotation instants as a histogram over the window the zone's schedule allows.
//! 4. [`recovery`] (aim 5): the N data planes leave; Vault "stops" (the proxy refuses
//!    connections) while M new data planes wait; Vault's throughput is measured meanwhile;
//!    when Vault returns: peak in flight and the time until all M are served against
//!    M / throughput.
//!
//! Module map:
//! - [`proxy`]: `VaultProxy`, the measuring proxy (counts by path, in flight, "Vault down").
//! - [`fleet`]: `Fleet`, data planes recording every certificate SDS delivers.
//! - [`setup`]: OpenBao's two PKIs, the Mesh, the global and the zone, tokens, the direct client.
//! - [`reissue`], [`restart`], [`rotation`], [`recovery`]: the phases and their reports.
//! - [`table`]: cells shared by the phases' reports.

pub mod fleet;
pub mod proxy;
pub mod recovery;
pub mod reissue;
pub mod restart;
pub mod rotation;
pub mod setup;
pub mod table;

use std::time::Duration;

use crate::{cluster::Binaries, error::BenchError, procs::ensure_open_files, report::Report};

/// How big a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// A few minutes on 2 cores: 1,000 data planes, 500 waiting, a 30 s outage.
    Small,
    /// The numbers: 10,000 data planes, 2,000 waiting, a 5 min outage.
    Full,
}

/// Options of the run.
#[derive(Clone, Debug)]
pub struct Options {
    /// N: data planes connected to the zone.
    pub dataplanes: usize,
    /// M: new data planes waiting while Vault is down.
    pub waiting: usize,
    /// How long Vault is down.
    pub outage: Duration,
    /// Backend B's certificate lifetime (`dpCert.rotation.expiration`).
    pub lifetime: Duration,
    /// The zone's `issuer.max_in_flight` (set in its config).
    pub max_in_flight: usize,
    /// Data planes connecting at once (first connection).
    pub connect_concurrency: usize,
    /// Data planes reconnecting at once after the restart.
    pub reconnect_concurrency: usize,
    /// Certificates the direct client issues to measure Vault's throughput.
    pub throughput_count: usize,
}

impl Options {
    /// The defaults of `scale`.
    pub fn for_scale(scale: Scale) -> Self {
        match scale {
            Scale::Small => Self {
                dataplanes: 1000,
                waiting: 500,
                outage: Duration::from_secs(30),
                lifetime: Duration::from_secs(60),
                max_in_flight: 16,
                connect_concurrency: 32,
                reconnect_concurrency: 256,
                throughput_count: 500,
            },
            Scale::Full => Self {
                dataplanes: 10_000,
                waiting: 2000,
                outage: Duration::from_secs(300),
                lifetime: Duration::from_secs(600),
                max_in_flight: 16,
                connect_concurrency: 64,
                reconnect_concurrency: 256,
                throughput_count: 2000,
            },
        }
    }

    /// A deadline for something that should take about `expected`: generous, the machine is
    /// shared.
    pub(crate) fn deadline(&self, expected: Duration) -> Duration {
        expected * 10 + Duration::from_secs(120)
    }
}

/// Runs every phase; one report per phase.
pub async fn run(bins: &Binaries, opts: &Options) -> Result<Vec<Report>, BenchError> {
    if opts.dataplanes == 0 || opts.waiting == 0 || opts.max_in_flight == 0 {
        return Err(BenchError::Setup(
            "--dataplanes, --waiting and --max-in-flight must be at least 1".into(),
        ));
    }
    // Each data plane holds a socket here and one in the zone (whose limit is inherited from
    // this process); the N have left before the M connect.
    ensure_open_files(opts.dataplanes.max(opts.waiting) as u64 + 1024)?;
    let world = setup::World::start(bins, opts).await?;
    let identities = world.identities("dp", opts.dataplanes).await?;
    let waiting = world.identities("late", opts.waiting).await?;

    let (fleet, reissued) = reissue::run(&world, opts, identities).await?;
    let mut world = world;
    let (fleet, restarted) = restart::run(&mut world, opts, fleet).await?;
    let rotated = rotation::run(&world, opts, &fleet, &reissued).await?;
    drop(fleet);
    let recovered = recovery::run(&world, opts, waiting).await?;
    Ok(vec![reissued.report, restarted, rotated, recovered])
}
