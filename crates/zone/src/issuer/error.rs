//! `IssuerError`: why a data plane got no certificate.

use mosaic_core::ca::CaError;

use crate::store::StoreError;

/// Why the issuer could not produce a certificate.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// The zone store has no such Mesh (yet).
    #[error("mesh {0:?} does not exist in this zone")]
    NoMesh(String),
    /// The Mesh has no `mtls.enabledBackend`.
    #[error("mesh {0:?} has mTLS disabled (no mtls.enabledBackend)")]
    MtlsDisabled(String),
    /// The enabled backend could not be built from its configuration.
    #[error("mesh {mesh:?}, backend {backend:?} is not usable: {reason}")]
    Backend {
        /// The mesh.
        mesh: String,
        /// The backend.
        backend: String,
        /// Why (the CA error's text).
        reason: String,
    },
    /// The backend failed repeatedly; requests are held back until the circuit half-opens.
    #[error(
        "mesh {mesh:?}, backend {backend:?}: not asking the CA for now after repeated failures; last error: {last_error}"
    )]
    CircuitOpen {
        /// The mesh.
        mesh: String,
        /// The backend.
        backend: String,
        /// The failure that opened the circuit.
        last_error: String,
    },
    /// A new certificate is signed by a root the trust bundle does not hold, and the backend's
    /// roots could not be read to add it: it is not served (peers could not verify it).
    #[error(
        "mesh {mesh:?}, backend {backend:?}: the new certificate is signed by a CA the trust bundle does not hold yet, and the backend's roots could not be read to add it ({reason}); the current certificate is kept and issuance retried"
    )]
    UnknownRoot {
        /// The mesh.
        mesh: String,
        /// The backend.
        backend: String,
        /// Why the roots could not be read.
        reason: String,
    },
    /// The data plane's MeshIdentity gives it no valid SPIFFE ID (a label its templates read is
    /// missing, or the rendered ID is not a SPIFFE ID).
    #[error(
        "mesh {mesh:?}, MeshIdentity {identity:?}, data plane {dataplane:?}: no SPIFFE ID: {reason}; fix the MeshIdentity's spiffeID templates or the data plane's labels"
    )]
    Identity {
        /// The mesh.
        mesh: String,
        /// The MeshIdentity.
        identity: String,
        /// The data plane.
        dataplane: String,
        /// Why.
        reason: String,
    },
    /// The CA refused or could not be reached.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The zone store could not be read.
    #[error("zone store: {0}")]
    Store(#[from] StoreError),
    /// The store holds a Mesh record that is not a Mesh.
    #[error("mesh {0:?}: the stored record is not a Mesh")]
    NotAMesh(String),
}
