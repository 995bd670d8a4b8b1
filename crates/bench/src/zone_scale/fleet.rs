//! `Fleet`: simulated data planes that record what SDS delivers. Each is `mosaic-dp`'s own SDS
//! client (one TLS connection and `StreamSecrets` stream, its own dataplane token, its Dataplane
//! in the node metadata), decodes every response with `mosaic-dp`'s checks, ACKs it (NACKs what
//! fails them), and records each new identity certificate: when it arrived, its serial, its
//! issuer and the chain. Unlike [`crate::sim_dataplane::SimDataplane`] it does not wait for a
//! first certificate to connect (a data plane may wait for one while Vault is down), and the
//! bench reconnects a fleet whose zone restarted by opening new streams with the same names and
//! tokens.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use mosaic_core::Sensitive;
use mosaic_dp::{
    sds_client::{NodeIdentity, SdsStream, ZoneEndpoint, ack_request, nack_request},
    secrets::decode_response,
};
use tokio::task::JoinHandle;

use crate::{cluster, error::BenchError, sim_dataplane::dataplane_yaml};

/// One certificate a data plane received.
#[derive(Clone, Debug)]
pub struct Received {
    /// When the response holding it arrived.
    pub at: Instant,
    /// Its serial.
    pub serial: String,
    /// Its issuer's distinguished name.
    pub issuer: String,
}

/// What one data plane saw on its current stream.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every new identity certificate, in order of arrival.
    pub received: Vec<Received>,
    /// The last identity's chain (PEM, leaf first).
    pub last_chain: String,
    /// The last trust bundle (PEM).
    pub last_bundle: String,
    /// Responses NACKed (they failed `mosaic-dp`'s checks).
    pub nacks: usize,
    /// Why the stream ended, once it has.
    pub ended: Option<String>,
}

/// A data plane's name and token (kept across reconnects).
#[derive(Clone, Debug)]
pub struct Identity {
    /// The Dataplane's name.
    pub name: String,
    /// Its `kuma.io/service`.
    pub service: String,
    /// Its dataplane token.
    pub token: String,
}

/// One connected data plane.
#[derive(Debug)]
pub struct Member {
    /// Who it is.
    pub identity: Identity,
    /// What it saw.
    pub seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Many data planes of one mesh.
#[derive(Debug, Default)]
pub struct Fleet {
    /// The data planes, in order.
    pub members: Vec<Member>,
}

// === impl Member ===

impl Member {
    /// Opens the stream of `identity` in `mesh` and starts recording.
    pub async fn connect(
        zone: &ZoneEndpoint,
        mesh: &str,
        identity: Identity,
    ) -> Result<Self, BenchError> {
        let node = NodeIdentity {
            mesh: mesh.to_string(),
            name: identity.name.clone(),
            dataplane_resource: dataplane_yaml(mesh, &identity.name, &identity.service),
        };
        let mut stream = SdsStream::open(zone, &Sensitive::new(identity.token.clone()), &node)
            .await
            .map_err(|e| {
                BenchError::Stream(format!("simulated dataplane {mesh}.{}: {e}", identity.name))
            })?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = seen.clone();
        let mesh = mesh.to_string();
        let task = tokio::spawn(async move {
            let mut accepted = String::new();
            let ended = loop {
                let response = match stream.recv().await {
                    Ok(r) => r,
                    Err(e) => break e.to_string(),
                };
                let at = Instant::now();
                let reply = match decode_response(&response, &mesh) {
                    Ok(set) => {
                        let mut s = record.lock().unwrap_or_else(PoisonError::into_inner);
                        if let Some(id) = set.identity {
                            let new = s.received.last().is_none_or(|r| r.serial != id.leaf.serial);
                            if new {
                                s.received.push(Received {
                                    at,
                                    serial: id.leaf.serial.clone(),
                                    issuer: id.leaf.issuer.clone(),
                                });
                            }
                            s.last_chain = id.cert_chain;
                        }
                        if let Some(b) = set.trust_bundle {
                            s.last_bundle = b.pem;
                        }
                        accepted = response.version_info.clone();
                        ack_request(&mesh, &response.version_info, &response.nonce)
                    }
                    Err(e) => {
                        record.lock().unwrap_or_else(PoisonError::into_inner).nacks += 1;
                        nack_request(&mesh, &accepted, &response.nonce, &e.to_string())
                    }
                };
                if let Err(e) = stream.send(reply).await {
                    break e.to_string();
                }
            };
            record.lock().unwrap_or_else(PoisonError::into_inner).ended = Some(ended);
        });
        Ok(Self {
            identity,
            seen,
            task,
        })
    }

    /// The `i`-th certificate this member received on its current stream, if any.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Reads what it saw.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === impl Fleet ===

impl Fleet {
    /// Connects every identity (at most `concurrency` connecting at once); each records from
    /// then on.
    pub async fn connect(
        zone: &ZoneEndpoint,
        mesh: &str,
        identities: Vec<Identity>,
        concurrency: usize,
    ) -> Result<Self, BenchError> {
        let zone = zone.clone();
        let mesh = mesh.to_string();
        let members = cluster::concurrent(identities, concurrency, move |identity| {
            let zone = zone.clone();
            let mesh = mesh.clone();
            async move { Member::connect(&zone, &mesh, identity).await }
        })
        .await?;
        Ok(Self { members })
    }

    /// The identities, in order (to reconnect them).
    pub fn identities(&self) -> Vec<Identity> {
        self.members.iter().map(|m| m.identity.clone()).collect()
    }

    /// How many members hold a certificate for which `pred` holds (on their current stream).
    pub fn count(&self, pred: impl Fn(&Seen) -> bool) -> usize {
        self.members.iter().filter(|m| pred(&m.lock())).count()
    }

    /// Waits until every member satisfies `pred`, polling every `every`; fails after `deadline`
    /// saying how many did.
    pub async fn wait_all(
        &self,
        what: &str,
        deadline: Duration,
        every: Duration,
        pred: impl Fn(&Seen) -> bool,
    ) -> Result<Instant, BenchError> {
        let started = Instant::now();
        loop {
            let done = self.count(&pred);
            if done == self.members.len() {
                return Ok(Instant::now());
            }
            if started.elapsed() > deadline {
                let ended: Vec<String> = self
                    .members
                    .iter()
                    .filter_map(|m| m.lock().ended.clone())
                    .take(3)
                    .collect();
                return Err(BenchError::Stream(format!(
                    "after {deadline:?} only {done} of {} data planes had {what}{}",
                    self.members.len(),
                    if ended.is_empty() {
                        String::new()
                    } else {
                        format!("; streams ended: {ended:?}")
                    }
                )));
            }
            tokio::time::sleep(every).await;
        }
    }
}
