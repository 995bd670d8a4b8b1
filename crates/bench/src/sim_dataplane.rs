//! A simulated data plane: the `mosaic-dp` agent's own SDS client (`mosaic_dp::sds_client`)
//! holding one `StreamSecrets` stream to a zone, with a dataplane token from the global and its
//! Dataplane in the node metadata (so the zone registers it and issues its certificate). It
//! ACKs every response and writes no files.

use mosaic_core::Sensitive;
use mosaic_dp::sds_client::{NodeIdentity, SdsStream, ZoneEndpoint, ack_request};
use tokio::task::JoinHandle;

use crate::error::BenchError;

/// One data plane holding its stream; the stream closes when it is dropped.
#[derive(Debug)]
pub struct SimDataplane {
    task: JoinHandle<()>,
}

impl Drop for SimDataplane {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Dataplane of service `svc` in `mesh`, in Universal YAML.
pub fn dataplane_yaml(mesh: &str, name: &str, service: &str) -> String {
    format!(
        "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: {service}\n"
    )
}

impl SimDataplane {
    /// Opens the stream for dataplane `name` of `mesh` (service `service`), waits for its first
    /// response (identity certificate and trust bundle), ACKs it, and keeps the stream open.
    pub async fn connect(
        zone: &ZoneEndpoint,
        mesh: &str,
        name: &str,
        service: &str,
        token: String,
    ) -> Result<Self, BenchError> {
        let node = NodeIdentity {
            mesh: mesh.to_string(),
            name: name.to_string(),
            dataplane_resource: dataplane_yaml(mesh, name, service),
        };
        let fail = |e: &dyn std::fmt::Display| {
            BenchError::Stream(format!("simulated dataplane {mesh}.{name}: {e}"))
        };
        let mut stream = SdsStream::open(zone, &Sensitive::new(token), &node)
            .await
            .map_err(|e| fail(&e))?;
        let first = stream.recv().await.map_err(|e| fail(&e))?;
        if first.resources.len() < 2 {
            return Err(fail(&format!(
                "the first response holds {} secrets, expected the identity certificate and the trust bundle",
                first.resources.len()
            )));
        }
        stream
            .send(ack_request(mesh, &first.version_info, &first.nonce))
            .await
            .map_err(|e| fail(&e))?;
        let mesh = mesh.to_string();
        let task = tokio::spawn(async move {
            while let Ok(r) = stream.recv().await {
                if stream
                    .send(ack_request(&mesh, &r.version_info, &r.nonce))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(Self { task })
    }
}
