//! Kuma's `SecureDataSource` (the MeshIdentity Bundled provider's `ca.certificate` and
//! `ca.privateKey`): `type` (`Secret`, `File`, `EnvVar`, `InsecureInline`) and the one matching
//! field (`secretRef: {kind: Secret, name}`, `file.path`, `envVar.name`, `insecureInline.value`).

use serde::{Deserialize, Serialize};

use crate::validate::{FieldPath, Validator};

/// Kuma's `SecureDataSource`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecureDataSource {
    /// `Secret`, `File`, `EnvVar` or `InsecureInline`.
    #[serde(rename = "type", default)]
    pub source_type: String,
    /// A Secret of the mesh (`type: Secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// A file on the control plane (`type: File`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileRef>,
    /// An environment variable of the control plane (`type: EnvVar`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_var: Option<EnvVarRef>,
    /// The value itself (`type: InsecureInline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_inline: Option<InlineValue>,
}

/// `secretRef`: a Secret of the resource's mesh.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Always `Secret`.
    #[serde(default)]
    pub kind: String,
    /// The Secret's name.
    #[serde(default)]
    pub name: String,
}

/// `file`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// An absolute path.
    #[serde(default)]
    pub path: String,
}

/// `envVar`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVarRef {
    /// The variable's name.
    #[serde(default)]
    pub name: String,
}

/// `insecureInline`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineValue {
    /// The value.
    #[serde(default)]
    pub value: String,
}

impl std::fmt::Debug for InlineValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineValue")
            .field("value", &"<redacted>")
            .finish()
    }
}

// === impl SecureDataSource ===

impl SecureDataSource {
    /// A reference to the mesh Secret `name`.
    pub fn secret(name: impl Into<String>) -> Self {
        Self {
            source_type: "Secret".into(),
            secret_ref: Some(SecretRef {
                kind: "Secret".into(),
                name: name.into(),
            }),
            ..Self::default()
        }
    }

    /// Kuma's checks (`ValidateSecureDataSource`): the field `type` names is set and not empty.
    pub fn validate(&self, path: &FieldPath, v: &mut Validator) {
        match self.source_type.as_str() {
            "Secret" => match &self.secret_ref {
                None => v.violation(&path.field("secretRef"), "must be defined"),
                Some(r) => {
                    if r.name.is_empty() {
                        v.violation(
                            &path.field("secretRef").field("name"),
                            "must be defined: the name of a Secret of this mesh",
                        );
                    }
                    if r.kind != "Secret" {
                        v.violation(
                            &path.field("secretRef").field("kind"),
                            format!("{:?} must be one of [Secret]", r.kind),
                        );
                    }
                }
            },
            "File" => match &self.file {
                None => v.violation(&path.field("file"), "must be defined"),
                Some(f) if f.path.is_empty() => {
                    v.violation(&path.field("file").field("path"), "must be defined")
                }
                Some(f) if !f.path.starts_with('/') || f.path.contains("..") => v.violation(
                    &path.field("file").field("path"),
                    format!("{:?} must be an absolute path without '..'", f.path),
                ),
                Some(_) => {}
            },
            "EnvVar" => match &self.env_var {
                None => v.violation(&path.field("envVar"), "must be defined"),
                Some(e) if e.name.is_empty() => {
                    v.violation(&path.field("envVar").field("name"), "must be defined")
                }
                Some(_) => {}
            },
            "InsecureInline" => match &self.insecure_inline {
                None => v.violation(&path.field("insecureInline"), "must be defined"),
                Some(i) if i.value.is_empty() => v.violation(
                    &path.field("insecureInline").field("value"),
                    "must be defined",
                ),
                Some(_) => {}
            },
            other => v.violation(
                &path.field("type"),
                format!("{other:?} must be one of [Secret, File, EnvVar, InsecureInline]"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &SecureDataSource) -> Vec<String> {
        let mut v = Validator::new();
        s.validate(&FieldPath::from("ca.certificate"), &mut v);
        match v.finish() {
            Ok(()) => vec![],
            Err(e) => e.violations.into_iter().map(|v| v.field).collect(),
        }
    }

    #[test]
    fn each_type_needs_its_field() {
        assert!(check(&SecureDataSource::secret("ca-cert")).is_empty());
        let mut s = SecureDataSource::secret("");
        assert_eq!(check(&s), ["ca.certificate.secretRef.name"]);
        s.source_type = "File".into();
        assert_eq!(check(&s), ["ca.certificate.file"]);
        s.source_type = "Vault".into();
        assert_eq!(check(&s), ["ca.certificate.type"]);
        let inline = SecureDataSource {
            source_type: "InsecureInline".into(),
            insecure_inline: Some(InlineValue {
                value: "secret".into(),
            }),
            ..SecureDataSource::default()
        };
        assert!(check(&inline).is_empty());
        assert!(!format!("{inline:?}").contains("secret\""));
    }
}
