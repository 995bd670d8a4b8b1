//! What can be checked of a Vault backend without its credentials: on the global, when the
//! backend's auth names `{{ zone }}` (each zone logs in at its own mount) or the Mesh sets no
//! `auth` at all (each zone brings its own credentials). Vault answers at `address` and is
//! initialized and unsealed (`sys/health`), and, unless the namespace itself names `{{ zone }}`,
//! the PKI mount has a CA (`{pki}/cert/ca_chain`, which Vault serves without a token). Neither
//! call needs a token, so no test certificate is issued: each zone tests its own login when it
//! issues and reports the outcome in its CA health.
//!
//! With the backend's own token (issue and sign modes, on the global after a test issuance),
//! [`role_storage_note`] reads the role and says when it stores every certificate issued
//! (`no_store=false`), which slows Vault once tens of thousands pile up.

use reqwest::Method;
use serde_json::Value;

use super::{
    VaultCa,
    client::VaultClient,
    error::{Operation, VaultError},
    read_roots,
};
use mosaic_core::{
    ca::{CaError, CaErrorKind},
    datasource::SecretSource,
    resource::mesh::{MtlsBackend, VaultConf, VaultMode},
    template::Template,
};

/// What [`probe`] checked, one sentence per check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeReport {
    /// E.g. `Vault at http://…:8200 answers (initialized, unsealed)`.
    pub checked: Vec<String>,
    /// What could not be checked here and why.
    pub unchecked: Vec<String>,
}

/// Checks what can be checked without logging in (see the module docs).
pub async fn probe(
    mesh: &str,
    backend: &MtlsBackend,
    conf: &VaultConf,
    secrets: &dyn SecretSource,
) -> Result<ProbeReport, CaError> {
    let err = |k: CaErrorKind| CaError::new(mesh, &backend.name, k);
    let from_cp = conf
        .from_cp()
        .ok_or_else(|| err(CaErrorKind::Config("conf.fromCp must be set".into())))?;
    let tls = super::client_tls(mesh, backend, from_cp, secrets)?;
    let root = VaultClient::new(&from_cp.address, None, &tls, backend.request_timeout())
        .await
        .map_err(|e| err(e.into()))?;
    let mut report = ProbeReport::default();

    let health = health(&root).await.map_err(|e| err(e.into()))?;
    report.checked.push(format!(
        "Vault at {} answers sys/health ({health})",
        root.address()
    ));

    let namespace = Template::parse_zone_field(&from_cp.namespace)
        .map_err(|e| err(CaErrorKind::Config(format!("conf.fromCp.namespace: {e}"))))?;
    if namespace.names_zone() {
        report.unchecked.push(format!(
            "the PKI mount {:?}: conf.fromCp.namespace names {{{{ zone }}}}, so it lives in each zone's namespace",
            from_cp.pki_path()
        ));
    } else {
        let ns = namespace.render_zone(None).unwrap_or_default();
        let client = root.with_namespace(Some(ns.as_str()));
        let roots = read_roots(&client, from_cp.pki_path())
            .await
            .map_err(|e| err(e.into()))?;
        report.checked.push(format!(
            "PKI mount {:?} has a CA ({} certificate{} in its chain)",
            from_cp.pki_path(),
            roots.len(),
            if roots.len() == 1 { "" } else { "s" }
        ));
    }
    let what = match from_cp.vault_mode() {
        VaultMode::Issue => format!(
            "issuing at {}/issue/{}",
            from_cp.pki_path(),
            from_cp.role.trim()
        ),
        VaultMode::Sign => format!(
            "issuing at {}/sign/{}",
            from_cp.pki_path(),
            from_cp.role.trim()
        ),
        VaultMode::Intermediate => format!(
            "signing a zone intermediate at {}",
            from_cp.intermediate_ca_path()
        ),
    };
    report.unchecked.push(format!(
        "logging in and {what}: only a zone holds the credentials"
    ));
    Ok(report)
}

/// `sys/health` (a standby counts as healthy); the state in words.
async fn health(client: &VaultClient) -> Result<String, VaultError> {
    let resp = client
        .call(
            Method::GET,
            "sys/health?standbyok=true&perfstandbyok=true",
            None,
            None,
            &Operation::Health,
        )
        .await?;
    let flag = |k: &str| resp.get(k).and_then(Value::as_bool);
    if flag("initialized") == Some(false) || flag("sealed") == Some(true) {
        return Err(VaultError::Status {
            addr: client.address().to_string(),
            op: Operation::Health,
            status: 503,
            errors: vec![resp.to_string()],
            hint: "initialize and unseal Vault".to_string(),
        });
    }
    let mut state = vec!["initialized", "unsealed"];
    if flag("standby") == Some(true) {
        state.push("standby");
    }
    Ok(state.join(", "))
}

/// Reads the backend's role (`{pki}/roles/{role}`, with the backend's token) and, when it stores
/// every certificate issued (`no_store` false), returns a note saying so and what to do. `None`
/// when the role does not store them, when this mode uses no role, or when the role cannot be
/// read (a policy granting only issue or sign, as Kong Mesh's does: logged at debug level only).
pub async fn role_storage_note(ca: &VaultCa) -> Option<String> {
    if !matches!(ca.mode, VaultMode::Issue | VaultMode::Sign) || ca.role.is_empty() {
        return None;
    }
    let answer = ca.read_role().await;
    let no_store = match answer {
        Ok(resp) => resp.pointer("/data/no_store").and_then(Value::as_bool),
        Err(e) => {
            tracing::debug!(mesh = %ca.mesh, backend = %ca.backend, error = %e, "role not readable; no_store not checked");
            return None;
        }
    };
    match no_store {
        Some(false) => Some(storage_note(&ca.backend, &ca.pki, &ca.role)),
        Some(true) => None,
        None => {
            tracing::debug!(mesh = %ca.mesh, backend = %ca.backend, "the role's answer has no no_store; not checked");
            None
        }
    }
}

/// The note for a role with `no_store=false` (ASCII: it travels in a `Warning` header).
fn storage_note(backend: &str, pki: &str, role: &str) -> String {
    format!(
        "backend {backend:?}: role {role:?} of {pki} has no_store=false, so Vault stores every certificate issued with it (one per data plane per rotation, kept until tidied). Vault's PKI performance considerations say 50k-100k stored certificates become a problem, and Consul filled a mount with 500k in a day (hashicorp/consul#4475). Mosaic never reads a stored certificate back: run `vault patch {pki}/roles/{role} no_store=true` (or `vault write {pki}/roles/{role} no_store=true` with the role's other parameters repeated: a write replaces the whole role)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_note_names_the_role_the_numbers_and_the_fix() {
        let note = storage_note("vault-1", "pki", "dp");
        for want in [
            "backend \"vault-1\"",
            "role \"dp\" of pki has no_store=false",
            "stores every certificate issued",
            "50k-100k",
            "500k in a day",
            "vault write pki/roles/dp no_store=true",
        ] {
            assert!(note.contains(want), "{want:?} missing from {note}");
        }
        assert!(note.is_ascii(), "it travels in a Warning header");
    }
}
