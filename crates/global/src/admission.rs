//! Admission: what the API proposes for a resource a user writes.
//!
//! Every resource is shape-validated ([`Resource::validate`]). A Mesh is also checked against the
//! world: the Secrets its backends name must exist; a `builtin` backend gets its CA generated once
//! (stored atomically with the Mesh, never replaced on re-apply); a `provided` backend must load
//! and issue; a `vault` backend must issue a test certificate (unless `mtls.skipValidation`).
//! Vault backends are validated concurrently.
//!
//! The global is no zone, so a vault backend whose auth (or namespace) names `{{ zone }}`, or
//! that sets no `auth` because every zone holds its own credentials (`[[vault_auth]]`), cannot
//! log in here. For such a backend admission checks what it can without credentials (Vault
//! answers `sys/health`, the PKI mount has a CA) and admits the Mesh with a note saying what was
//! and was not checked: each zone tests its own login when it issues and reports it in its CA
//! health (`GET /zones/_overview`, `caHealth`).
//!
//! After a test issuance with the backend's own token, admission reads the role when the token
//! may (`{pki}/roles/{role}`) and, if it stores every certificate (`no_store=false`), admits the
//! Mesh with a note saying so and how to change it (stored certificates slow Vault).
//!
//! MeshIdentities and MeshTrusts: see [`identity`] (a provider is tested as a backend is).

use std::sync::Arc;

use mosaic_ca::builtin;
use mosaic_core::{
    ca::{CaBackend as _, CaError, IssueRequest},
    datasource::SecretSource,
    resource::{
        Resource, ResourceType, SecretSpec, Spec,
        mesh::{BackendConf, BackendType, MeshSpec, MtlsBackend, VaultConf},
    },
    validate::{ValidationError, Violation},
};
use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::store::{Command, ResourceKey, ResourceStore, StoreError, StoreSecrets};

mod identity;

/// Decides what to propose for a written resource.
pub struct Admission {
    store: Arc<dyn ResourceStore>,
}

/// Why a resource was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The resource is invalid: its shape, a missing Secret, or a CA backend that cannot issue.
    /// Every violation names its field (`mtls.backends[0]`, ...).
    #[error("{0}")]
    Invalid(ValidationError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A builtin CA could not be generated (a fault here, not in the request).
    #[error("could not generate the builtin CA: {0}")]
    Generate(CaError),
    /// The write would overwrite what another writer keeps (a MeshTrust a zone made).
    #[error("{0}")]
    Conflict(String),
}

/// What admission decided, and what the user should know about it.
#[derive(Debug)]
pub struct Admitted {
    /// The command to propose.
    pub command: Command,
    /// Notes for the answer (e.g. a vault backend only each zone can test).
    pub notes: Vec<String>,
}

/// What a vault backend's check gave.
enum VaultCheck {
    /// A test certificate was issued; the note, if any, is advice (e.g. the role stores every
    /// certificate it issues).
    Issued(Option<String>),
    /// Only what can be checked without credentials was checked; the note says what.
    Probed(String),
}

/// One backend's problem, before it is turned into a violation.
struct BackendProblem {
    index: usize,
    message: String,
}

// === impl Admission ===

impl Admission {
    /// Admission reading Secrets and existing CAs from `store`.
    pub fn new(store: Arc<dyn ResourceStore>) -> Self {
        Self { store }
    }

    /// Validates `resource` and returns the command to propose, stamped with `now`.
    ///
    /// For a Mesh whose builtin backends have no CA yet this is a [`Command::Batch`] of the Mesh
    /// put followed by the CA Secret puts, each CA Secret put conditional on the Secret still
    /// being absent (or unchanged), so two concurrent first applies cannot both install a CA.
    pub async fn admit(
        &self,
        resource: &Resource,
        now: OffsetDateTime,
    ) -> Result<Command, AdmissionError> {
        self.admit_with_notes(resource, now)
            .await
            .map(|a| a.command)
    }

    /// [`Admission::admit`], with the notes the answer should carry.
    pub async fn admit_with_notes(
        &self,
        resource: &Resource,
        now: OffsetDateTime,
    ) -> Result<Admitted, AdmissionError> {
        resource.validate().map_err(AdmissionError::Invalid)?;
        match &resource.spec {
            Spec::Mesh(spec) => self.admit_mesh(resource, spec, now).await,
            Spec::MeshIdentity(mid) => {
                identity::admit_identity(self, resource, &mid.spec, now).await
            }
            Spec::MeshTrust(_) => identity::admit_trust(self, resource, now),
            _ => Ok(Admitted {
                command: Command::put(resource, now),
                notes: Vec::new(),
            }),
        }
    }

    async fn admit_mesh(
        &self,
        resource: &Resource,
        spec: &MeshSpec,
        now: OffsetDateTime,
    ) -> Result<Admitted, AdmissionError> {
        let mesh = resource.meta.name.as_str();
        self.check_secret_references(mesh, spec)?;

        let secrets: Arc<dyn SecretSource> = Arc::new(StoreSecrets::new(self.store.clone()));
        let mut problems = Vec::new();
        let mut ca_puts = Vec::new();
        let mut vault_checks = JoinSet::new();
        for (index, backend) in spec.backends().iter().enumerate() {
            // Shape validation has already decoded every conf; a failure here cannot happen.
            let Ok(conf) = backend.typed_conf() else {
                continue;
            };
            match conf {
                BackendConf::Builtin(conf) => {
                    match self.builtin_ca(mesh, backend, &conf, secrets.as_ref(), now)? {
                        Ok(puts) => ca_puts.extend(puts),
                        Err(message) => problems.push(BackendProblem { index, message }),
                    }
                }
                BackendConf::Provided(_) => {
                    if let Err(e) = check_backend(mesh, backend, secrets.clone()).await {
                        problems.push(BackendProblem {
                            index,
                            message: e.to_string(),
                        });
                    }
                }
                BackendConf::Vault(conf) => {
                    if spec.skip_validation() {
                        tracing::info!(mesh, backend = %backend.name, "mtls.skipValidation: no test issuance");
                        continue;
                    }
                    let (mesh, backend, secrets) =
                        (mesh.to_string(), backend.clone(), secrets.clone());
                    vault_checks.spawn(async move {
                        let result = check_vault(&mesh, &backend, &conf, secrets).await;
                        (index, result)
                    });
                }
            }
        }
        let mut notes = Vec::new();
        while let Some(joined) = vault_checks.join_next().await {
            match joined {
                Ok((_, Ok(VaultCheck::Issued(None)))) => {}
                Ok((index, Ok(VaultCheck::Issued(Some(note))))) => {
                    tracing::warn!(mesh, note = %note, "vault backend admitted with advice");
                    notes.push((index, note));
                }
                Ok((index, Ok(VaultCheck::Probed(note)))) => {
                    tracing::info!(mesh, note = %note, "vault backend admitted without a test issuance");
                    notes.push((index, note));
                }
                Ok((index, Err(message))) => problems.push(BackendProblem { index, message }),
                Err(e) => {
                    return Err(AdmissionError::Invalid(ValidationError::single(
                        "mtls.backends",
                        format!("the Vault validation task failed ({e}): retry the request"),
                    )));
                }
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.index);
            return Err(AdmissionError::Invalid(ValidationError {
                violations: problems
                    .into_iter()
                    .map(|p| Violation::new(format!("mtls.backends[{}]", p.index), p.message))
                    .collect(),
            }));
        }

        notes.sort_by_key(|(index, _)| *index);
        let notes: Vec<String> = notes
            .into_iter()
            .map(|(index, note)| format!("mtls.backends[{index}]: {note}"))
            .collect();
        let mesh_put = Command::put(resource, now);
        let command = if ca_puts.is_empty() {
            mesh_put
        } else {
            let mut batch = vec![mesh_put];
            batch.extend(ca_puts);
            Command::Batch(batch)
        };
        Ok(Admitted { command, notes })
    }

    /// Every Secret a non-builtin backend names must exist (builtin CA Secrets are generated).
    fn check_secret_references(&self, mesh: &str, spec: &MeshSpec) -> Result<(), AdmissionError> {
        let builtin: Vec<&str> = spec
            .backends()
            .iter()
            .filter(|b| b.backend_type() == Some(BackendType::Builtin))
            .map(|b| b.name.as_str())
            .collect();
        let mut violations = Vec::new();
        let mut mesh_exists = None;
        for r in spec.secret_references(mesh) {
            if builtin.contains(&r.backend.as_str()) {
                continue;
            }
            let key = ResourceKey::new(ResourceType::Secret, Some(mesh), &r.secret);
            if self.store.get(&key)?.is_none() {
                let exists = match mesh_exists {
                    Some(e) => e,
                    None => {
                        *mesh_exists.insert(self.store.get(&ResourceKey::mesh(mesh))?.is_some())
                    }
                };
                // A Secret needs its Mesh: a new Mesh is created without mtls first.
                let first = if exists {
                    String::new()
                } else {
                    format!("create Mesh {mesh:?} without mtls, then ")
                };
                violations.push(Violation::new(
                    format!("{}.secret", r.field),
                    format!(
                        "secret {:?} does not exist in mesh {mesh:?}: {first}create the secret (PUT /meshes/{mesh}/secrets/{}), then apply the Mesh again (`mosaicctl apply -f` of a file holding both does this)",
                        r.secret, r.secret
                    ),
                ));
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(AdmissionError::Invalid(ValidationError { violations }))
        }
    }

    /// The Secret puts that create a builtin backend's CA, or none when it already exists.
    /// The inner error is a problem with the existing CA, for the user.
    fn builtin_ca(
        &self,
        mesh: &str,
        backend: &MtlsBackend,
        conf: &mosaic_core::resource::mesh::BuiltinConf,
        secrets: &dyn SecretSource,
        now: OffsetDateTime,
    ) -> Result<Result<Vec<Command>, String>, AdmissionError> {
        let cert_name = builtin::cert_secret_name(mesh, &backend.name);
        let key_name = builtin::key_secret_name(mesh, &backend.name);
        let cert_key = ResourceKey::new(ResourceType::Secret, Some(mesh), &cert_name);
        let key_key = ResourceKey::new(ResourceType::Secret, Some(mesh), &key_name);
        let cert = self.store.get(&cert_key)?;
        let key = self.store.get(&key_key)?;
        if cert.is_some() && key.is_some() {
            // The CA exists: keep it, but make sure it still loads.
            return Ok(builtin::load(mesh, backend, secrets)
                .map(|_| Vec::new())
                .map_err(|e| {
                    format!(
                        "{e}; the CA lives in secrets {cert_name:?} and {key_name:?}: fix them, or delete both so a new CA is generated"
                    )
                }));
        }
        // Neither half (or only one, which never made a usable CA): generate both.
        let generated = builtin::generate(mesh, backend, conf).map_err(AdmissionError::Generate)?;
        let put = |name: &str, value: &[u8], existing: Option<Resource>| Command::Put {
            resource: Resource::new(
                name,
                Some(mesh),
                Spec::Secret(SecretSpec::from_bytes(value)),
            )
            .to_universal(),
            now,
            expect_version: Some(existing.and_then(|r| r.meta.version).unwrap_or(0)),
        };
        Ok(Ok(vec![
            put(&cert_name, generated.cert_pem.as_bytes(), cert),
            put(&key_name, generated.key_pem.expose().as_bytes(), key),
        ]))
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").finish_non_exhaustive()
    }
}

/// A vault backend's check: a test issuance, or, when only zones can log in, what can be checked
/// without credentials (the error is the user's message).
async fn check_vault(
    mesh: &str,
    backend: &MtlsBackend,
    conf: &VaultConf,
    secrets: Arc<dyn SecretSource>,
) -> Result<VaultCheck, String> {
    check_vault_with(mesh, backend, conf, secrets, None, "conf.fromCp").await
}

/// [`check_vault`] issuing `request` (a MeshIdentity's test SPIFFE ID) instead of the backend's
/// classic test certificate; `fields` is where the vault fields live (`conf.fromCp` of a Mesh
/// backend, `spec.provider.vault` of a MeshIdentity), named in the notes.
async fn check_vault_with(
    mesh: &str,
    backend: &MtlsBackend,
    conf: &VaultConf,
    secrets: Arc<dyn SecretSource>,
    request: Option<IssueRequest>,
    fields: &str,
) -> Result<VaultCheck, String> {
    let Some(from_cp) = conf.from_cp() else {
        return check_backend(mesh, backend, secrets)
            .await
            .map(|()| VaultCheck::Issued(None))
            .map_err(|e| e.to_string());
    };
    let naming_zone = from_cp.fields_naming_zone();
    let why = if from_cp.zones_bring_credentials() {
        format!(
            "{fields}.auth is not set, so every zone must hold its own Vault credentials for this backend (a [[vault_auth]] entry with mesh = {mesh:?} and backend = {:?} in the zone's config)",
            backend.name
        )
    } else if !naming_zone.is_empty() {
        let fields: Vec<String> = naming_zone
            .iter()
            .map(|f| format!("{fields}.{f}"))
            .collect();
        format!(
            "{} {} {{{{ zone }}}}, which expands to each zone's name and not on the global (which is no zone)",
            fields.join(", "),
            if fields.len() == 1 { "names" } else { "name" }
        )
    } else {
        return test_issuance(mesh, backend, conf, secrets, request)
            .await
            .map_err(|e| e.to_string());
    };
    let report = mosaic_ca::vault::probe::probe(mesh, backend, conf, secrets.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    Ok(VaultCheck::Probed(format!(
        "backend {:?}: {why}, so no test certificate was issued here. Checked: {}. Not checked: {}. Each zone tests its own login when it issues and reports it in its CA health (GET /zones/_overview, caHealth)",
        backend.name,
        report.checked.join("; "),
        report.unchecked.join("; "),
    )))
}

/// Builds a vault backend, proves it can issue and, when its token may read the role, advises
/// against a role that stores every certificate (`no_store=false`): a note, never a refusal.
async fn test_issuance(
    mesh: &str,
    backend: &MtlsBackend,
    conf: &VaultConf,
    secrets: Arc<dyn SecretSource>,
    request: Option<IssueRequest>,
) -> Result<VaultCheck, CaError> {
    let ca = mosaic_ca::vault::VaultCa::new(mesh, backend, conf, secrets).await?;
    match &request {
        Some(req) => ca.validate_with(req).await?,
        None => ca.validate().await?,
    }
    Ok(VaultCheck::Issued(
        mosaic_ca::vault::probe::role_storage_note(&ca).await,
    ))
}

/// Builds a backend and proves it can issue.
async fn check_backend(
    mesh: &str,
    backend: &MtlsBackend,
    secrets: Arc<dyn SecretSource>,
) -> Result<(), CaError> {
    let ca = mosaic_ca::build_backend(mesh, backend, secrets).await?;
    ca.validate().await
}
