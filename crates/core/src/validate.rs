//! Validation results: every problem with the field path it concerns, all reported at once.
//!
//! Paths use Kuma's notation, relative to the resource's spec: `mtls.backends[0].conf.fromCp.pki`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Field path, e.g. `mtls.backends[0].conf.fromCp.pki`; empty for the whole document.
    pub field: String,
    /// What is wrong and, where it helps, what to write instead.
    pub message: String,
}

/// A non-empty list of violations.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// Every problem found.
    pub violations: Vec<Violation>,
}

/// Collects violations under a moving field path.
#[derive(Debug, Default)]
pub struct Validator {
    prefix: Vec<String>,
    violations: Vec<Violation>,
}

/// A field path under construction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(String);

// === impl Violation ===

impl Violation {
    /// Builds a violation.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

// === impl ValidationError ===

impl ValidationError {
    /// A single violation.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            violations: vec![Violation::new(field, message)],
        }
    }

    /// Prefixes every field path (e.g. with `spec` or a document index).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        for v in &mut self.violations {
            v.field = FieldPath::from(prefix).join(&v.field).into_string();
        }
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

// === impl FieldPath ===

impl FieldPath {
    /// The root path.
    pub fn root() -> Self {
        Self::default()
    }

    /// `self.name` (or `name` at the root). `name` may itself be a path such as `a.b[0]`.
    pub fn field(&self, name: &str) -> Self {
        self.join(name)
    }

    /// `self[index]`.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// Joins a relative path.
    pub fn join(&self, rel: &str) -> Self {
        if rel.is_empty() {
            return self.clone();
        }
        if self.0.is_empty() || rel.starts_with('[') {
            return Self(format!("{}{rel}", self.0));
        }
        Self(format!("{}.{rel}", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<&str> for FieldPath {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl Validator ===

impl Validator {
    /// A validator with no violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation at `path`.
    pub fn violation(&mut self, path: &FieldPath, message: impl Into<String>) {
        let field = FieldPath::root()
            .join(&self.prefix.join("."))
            .join(path.as_str())
            .into_string();
        self.violations.push(Violation::new(field, message));
    }

    /// Records every violation of a nested error under `path`.
    pub fn extend(&mut self, path: &FieldPath, err: ValidationError) {
        for v in err.violations {
            self.violation(&path.join(&v.field), v.message);
        }
    }

    /// Whether nothing was recorded.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// `Ok(())` when nothing was recorded, else every violation.
    pub fn finish(self) -> Result<(), ValidationError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                violations: self.violations,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_like_kuma() {
        let p = FieldPath::root()
            .field("mtls")
            .field("backends")
            .index(0)
            .field("conf.fromCp")
            .field("pki");
        assert_eq!(p.as_str(), "mtls.backends[0].conf.fromCp.pki");
        let mut v = Validator::new();
        v.violation(&p, "must not be empty");
        let err = v.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "mtls.backends[0].conf.fromCp.pki: must not be empty"
        );
        assert_eq!(
            err.prefixed("spec").violations[0].field,
            "spec.mtls.backends[0].conf.fromCp.pki"
        );
    }
}
