//! How much one resource may hold. Every list-valued field has a bound far above what a real mesh
//! uses (Kuma users have a handful of backends, a few inbounds, a dozen tags), so one request
//! cannot make the control planes create or hold an unbounded amount of state: a Mesh with
//! 20,000 `builtin` backends would otherwise make the global generate 40,000 CA Secrets.
//!
//! Each type's `validate()` checks these first and skips the per-item checks of a list that is
//! over its bound, so an oversized request is refused cheaply, before admission generates a CA
//! or asks Vault for a test certificate. A violation names the field and the bound:
//! `mtls.backends: at most 32 backends per Mesh (got 20000): ...`.
//!
//! Sizes are bounded elsewhere: a document is at most
//! [`MAX_DOCUMENT_BYTES`](super::parse::MAX_DOCUMENT_BYTES) (2 MiB), a Secret's or GlobalSecret's
//! decoded `data` at most [`MAX_SECRET_BYTES`](super::secret::MAX_SECRET_BYTES) (1 MiB).

use serde_json::Value;

use crate::validate::{FieldPath, Validator};

/// `mtls.backends` of a Mesh.
pub const MAX_BACKENDS_PER_MESH: usize = 32;
/// `networking.inbound` of a Dataplane.
pub const MAX_INBOUNDS_PER_DATAPLANE: usize = 128;
/// `networking.outbound` of a Dataplane.
pub const MAX_OUTBOUNDS_PER_DATAPLANE: usize = 1024;
/// `tags` of one Dataplane inbound, outbound or gateway; tag names of a dataplane token.
pub const MAX_TAGS: usize = 64;
/// Values of one tag of a dataplane token (`--tag kuma.io/service=a,b,c`).
pub const MAX_TAG_VALUES: usize = 64;
/// `labels` of any resource.
pub const MAX_LABELS: usize = 128;
/// `caHealth` of a ZoneInsight (one entry per mesh and backend).
pub const MAX_CA_HEALTH_ENTRIES: usize = 4096;
/// `subscriptions` of a ZoneInsight (the global keeps the last 10).
pub const MAX_ZONE_SUBSCRIPTIONS: usize = 64;
/// Any list inside a field Mosaic keeps as written without acting on it (a Mesh's `metrics`,
/// `routing`, ...; a Dataplane's `probes`, `networking.transparentProxying`, ...).
pub const MAX_KEPT_LIST_ITEMS: usize = 1024;

/// Records a violation at `path` when `got` is over `max`; `what` is plural (`backends`),
/// `per` the holder (`Mesh`), `fix` what to do. Returns whether the count is within the bound.
pub(crate) fn check_count(
    v: &mut Validator,
    path: &FieldPath,
    got: usize,
    max: usize,
    what: &str,
    per: &str,
    fix: &str,
) -> bool {
    if got <= max {
        return true;
    }
    v.violation(
        path,
        format!("at most {max} {what} per {per} (got {got}): {fix}"),
    );
    false
}

/// Checks every list inside `value` (kept as written) against [`MAX_KEPT_LIST_ITEMS`]; one
/// violation per oversized list, naming its path. Walks without recursion.
pub(crate) fn check_kept_lists(value: &Value, path: &FieldPath, v: &mut Validator) {
    let mut stack = vec![(path.clone(), value)];
    while let Some((p, value)) = stack.pop() {
        match value {
            Value::Array(items)
                if check_count(
                    v,
                    &p,
                    items.len(),
                    MAX_KEPT_LIST_ITEMS,
                    "items",
                    "list",
                    "a real configuration needs far fewer; remove the repeated entries",
                ) =>
            {
                stack.extend(items.iter().enumerate().map(|(i, x)| (p.index(i), x)));
            }
            Value::Object(fields) => {
                stack.extend(fields.iter().map(|(k, x)| (p.field(k), x)));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn counts_name_the_field_and_the_bound() {
        let mut v = Validator::new();
        assert!(check_count(
            &mut v,
            &FieldPath::from("a"),
            3,
            3,
            "xs",
            "Y",
            "z"
        ));
        assert!(!check_count(
            &mut v,
            &FieldPath::from("a"),
            4,
            3,
            "xs",
            "Y",
            "remove some"
        ));
        assert_eq!(
            v.finish().unwrap_err().to_string(),
            "a: at most 3 xs per Y (got 4): remove some"
        );
    }

    #[test]
    fn kept_lists_are_bounded_at_any_depth() {
        let long: Vec<u32> = (0..=MAX_KEPT_LIST_ITEMS as u32).collect();
        let value = json!({"backends": [{"conf": {"tags": long}}], "ok": [1, 2]});
        let mut v = Validator::new();
        check_kept_lists(&value, &FieldPath::from("metrics"), &mut v);
        let err = v.finish().unwrap_err();
        assert_eq!(err.violations.len(), 1, "{err}");
        assert_eq!(err.violations[0].field, "metrics.backends[0].conf.tags");
        assert!(
            err.violations[0].message.starts_with(&format!(
                "at most {MAX_KEPT_LIST_ITEMS} items per list (got"
            )),
            "{err}"
        );
    }
}
