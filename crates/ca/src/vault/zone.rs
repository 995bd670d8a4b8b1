//! What a zone brings to a Vault backend: its name, which `{{ zone }}` expands to in `namespace`,
//! `auth.kubernetes.mountPath`, `auth.kubernetes.role` and `auth.approle.mountPath` (the template
//! engine of `mosaic_core::template`), and the credentials its own config holds for the backend,
//! which replace the Mesh's `auth` in that zone and never leave it.

use mosaic_core::{resource::mesh::VaultFromCp, template::Template};

use super::auth::AuthMethod;

/// The zone a Vault backend is built in. The default is no zone (the global, `mosaicctl`).
#[derive(Clone, Debug, Default)]
pub struct VaultZone {
    /// The zone's name; `None` outside a zone, where `{{ zone }}` cannot expand.
    pub zone: Option<String>,
    /// Credentials from the zone's config for this backend (its `[[vault_auth]]`).
    pub credentials: Option<AuthMethod>,
}

// === impl VaultZone ===

impl VaultZone {
    /// Zone `zone`, using the Mesh's `auth`.
    pub fn named(zone: &str) -> Self {
        Self {
            zone: Some(zone.to_string()),
            credentials: None,
        }
    }

    /// The same zone with its own credentials for the backend.
    pub fn with_credentials(mut self, credentials: Option<AuthMethod>) -> Self {
        self.credentials = credentials;
        self
    }
}

/// `from_cp` as this zone uses it: the zone's own credentials, when it has some, replace `auth`;
/// `{{ zone }}` is expanded in the zone fields. The error names the field (`conf.fromCp.…`).
pub fn expand(from_cp: &VaultFromCp, zone: &VaultZone) -> Result<VaultFromCp, String> {
    let mut out = from_cp.clone();
    if zone.credentials.is_some() {
        out.auth = None;
    }
    let name = zone.zone.as_deref();
    let render = |field: &str, text: &str| -> Result<String, String> {
        Template::parse_zone_field(text)
            .and_then(|t| t.render_zone(name))
            .map_err(|e| format!("conf.fromCp.{field}: {e}"))
    };
    out.namespace = render("namespace", &out.namespace)?;
    if let Some(k) = out.auth.as_mut().and_then(|a| a.kubernetes.as_mut()) {
        k.mount_path = render("auth.kubernetes.mountPath", &k.mount_path)?;
        k.role = render("auth.kubernetes.role", &k.role)?;
    }
    if let Some(r) = out.auth.as_mut().and_then(|a| a.approle.as_mut()) {
        r.mount_path = render("auth.approle.mountPath", &r.mount_path)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::datasource::DataSource;
    use serde_json::json;

    fn from_cp(auth: serde_json::Value, namespace: &str) -> VaultFromCp {
        serde_json::from_value(json!({
            "address": "https://vault:8200", "pki": "pki_int", "role": "example-dot-com",
            "namespace": namespace, "auth": auth,
        }))
        .unwrap()
    }

    #[test]
    fn zone_fields_expand_to_the_zone_name() {
        let f = from_cp(
            json!({"kubernetes": {"mountPath": "{{ zone }}", "role": "pki-{{ zone }}"}}),
            "team/{{ zone }}",
        );
        let e = expand(&f, &VaultZone::named("east")).unwrap();
        let k = e.auth.as_ref().unwrap().kubernetes.as_ref().unwrap();
        assert_eq!(
            (k.mount_path.as_str(), k.role.as_str()),
            ("east", "pki-east")
        );
        assert_eq!(e.namespace, "team/east");
        assert_eq!(e.pki, "pki_int");

        let f = from_cp(
            json!({"approle": {"roleId": "r", "secretId": {"inlineString": "s"}, "mountPath": "approle-{{ zone }}"}}),
            "",
        );
        let e = expand(&f, &VaultZone::named("west")).unwrap();
        assert_eq!(e.auth.unwrap().approle.unwrap().mount_path, "approle-west");
    }

    #[test]
    fn outside_a_zone_the_field_is_named() {
        let f = from_cp(
            json!({"kubernetes": {"mountPath": "{{ zone }}", "role": "r"}}),
            "",
        );
        let e = expand(&f, &VaultZone::default()).unwrap_err();
        assert!(
            e.starts_with("conf.fromCp.auth.kubernetes.mountPath: {{ zone }} expands"),
            "{e}"
        );
        // Without a placeholder nothing needs a zone.
        let f = from_cp(
            json!({"kubernetes": {"mountPath": "east", "role": "r"}}),
            "",
        );
        assert_eq!(expand(&f, &VaultZone::default()).unwrap(), f);
    }

    #[test]
    fn zone_credentials_replace_the_mesh_auth() {
        let f = from_cp(
            json!({"kubernetes": {"mountPath": "{{ zone }}", "role": "r"}}),
            "",
        );
        let zone = VaultZone::named("east").with_credentials(Some(AuthMethod::Token(DataSource {
            file: Some("/etc/mosaic/vault-token".into()),
            ..DataSource::default()
        })));
        let e = expand(&f, &zone).unwrap();
        assert_eq!(e.auth, None);
    }
}
